"""The `process` sandbox: a separate process and nothing more (a student's own machine).

Process model (protocol/worker.py has the template's and zygote's side). Started by an
ordinary user, the worker is that user's, on the submission itself:

  grader ══socket══> template (torch imported once, kept warm for the next submission)
                       └─ zygote (one per submission: a new session, cwd the submission)
                            └─ check (one per check)

Started as root (Gradescope's containers, or any host without namespaces), the template
is root's, like the grader, and never runs student code; what it forks is nobody's but a
slot's (the template holds the slot while it lives):

  grader (root)
    └─ template   root, a new session, a cleared environment; torch imported once
         └─ zygote     one per submission, forked, then at once host uid C of the slot
              │        (slots.py), gid C, no supplementary groups, umask 077, a new
              │        session; it reads a staged copy of the submission that only root
              │        and the slot's uids can enter, never the original
              └─ check one per check, forked by the zygote: the same uid, a process group
                       of its own (killed at the check's end)

* What uid C cannot do: read or write root's files that are not world-readable or
  world-writable (the Gradescope package makes its source, results and metadata root-only
  before grading: release/gradescope_package.py), signal or trace the grader, or any
  other slot's processes. What it can do: whatever any local user can. It sees the file
  system as others do, writes world-writable folders (/tmp), reaches the network, and has
  no memory, process or CPU limit beyond the checks' time limits. The namespace sandbox
  is the one that takes those away.
* Cleaning up, when a submission's zygote closes (grading ended, or a worker replaced), before
  the template serves the next submission: every process
  of uid C is killed by a child set to uid C that calls kill(-1, SIGKILL) until the kernel
  finds no process of that uid left. kill(-1) from an unprivileged process reaches every
  process of its uid, and only those, in one pass inside the kernel, so nothing can fork
  its way out. Killing process groups is not enough: a check that forks and calls
  setsid() leaves both its group and the zygote's, and lives on unseen (such a daemon
  rewrote Gradescope's results.json after grading). Then what the uid left at the top of
  the world-writable folders is removed, then the staged copy. The template is root's: the
  kill leaves it alone. A slot's uid is its holder's alone: processes of a grader killed
  before cleaning up are killed by the slot's next holder before its template starts.
* The uid must be able to run the worker's Python (Gradescope's image: a venv on the
  system's Python). Where it cannot (a Python inside a folder only root enters, such as
  pyenv's in /root), the sandbox says so on stderr and its zygotes stay root, as before.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import autograder
from autograder.protocol import TEMPLATE_FLAG
from autograder.sandboxes import template
from autograder.sandboxes.base import Sandbox
from autograder.sandboxes.slots import Slot, stage

PACKAGE_PARENT = str(Path(autograder.__file__).resolve().parent.parent)
KILL_SECONDS = 10.0  # for every process of a slot's uid to be gone; past it, a warning names what is left
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # where a slot's uid can leave files, cleaned after it
WORKER_UMASK = 0o077  # what the worker creates (its bytecode cache in /tmp) is its own alone

# Run as the slot's uid: kill(-1) then reaches exactly that uid's processes. Zombies still count
# for kill(-1) until their parent reaps them, but run nothing: the loop ends when only they are left.
KILLER = """\
import os, signal, sys, time
me, deadline = os.getuid(), time.monotonic() + float(sys.argv[1])

def running():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        real, _, saved = fields["Uid"].split()[:3]
        if int(pid) != os.getpid() and me in (int(real), int(saved)) and fields["State"].split()[0] not in "ZX":
            found.append(f"{pid} {fields['Name'].strip()}")
    return found

while True:
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        sys.exit(0)
    if not (left := running()):
        sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit("still running: " + ", ".join(left[:20]))
    time.sleep(0.001)
"""


class ProcessSandbox(Sandbox):
    """link="socket": grader and worker share a Unix socket, so each check's
    process is handed to the grader directly; "pipes": plain stdin/stdout, the
    worker relays (what a docker worker does)."""

    name = "process"
    shares_pids = True

    def __init__(self, link: str = "socket", python: str = sys.executable):
        """python: the interpreter the worker runs (the grader's own by default); as root, the slot's
        uid must be able to run it, with torch and this package, else student code runs as root."""
        if link not in ("socket", "pipes"):
            raise ValueError(f"link must be 'socket' or 'pipes', not {link!r}")
        self.link = link
        self.python = python
        self.warnings: list[str] = []  # said once per sandbox, on stderr

    def start(self, submission: Path, cuda: bool = False):
        submission = Path(submission).resolve()
        log = tempfile.TemporaryFile()
        if self.link == "pipes":  # no descriptors to pass: a worker of its own for this submission
            return self._popen(submission, log, [str(submission)])
        templates = template.pool((type(self), self.python), self._launch)
        return templates.open(lambda warm: self._prepare(warm, submission, log), log)

    def _launch(self) -> template.TemplateProcess:
        """A template: as root, for a slot whose uid its zygotes become (root's, with a warning, when that
        uid cannot run self.python); otherwise the grader's own."""
        log = tempfile.TemporaryFile()
        slot = Slot.take() if os.geteuid() == 0 else None
        if slot:
            try:  # a killed grader's leftovers, should it have held this slot; and a try of the uid's rights
                kill_every_process_of(slot.uids[1], log, self.python)
            except PermissionError as exc:
                slot.release()
                slot = None
                self._warn(
                    f"student code runs as root: the process sandbox's unprivileged uid cannot run {self.python} "
                    f"({exc.strerror}: a folder on its way is closed to other users). Install Python where every "
                    "user can run it, or grade with the namespace sandbox"
                )
            except BaseException:
                slot.release()
                raise
        try:
            proc = self._popen(Path("/"), log, [TEMPLATE_FLAG])
        except BaseException:
            if slot:
                slot.release()
            raise
        return template.TemplateProcess(proc, proc.channel, log, cleanup=slot.release if slot else None, slot=slot)

    def _prepare(self, warm: template.TemplateProcess, submission: Path, log):
        """The submission as warm's zygote gets it: as root, a staged copy its slot's uid alone reads,
        and afterwards every process and file of that uid gone."""
        if warm.slot is None:
            return submission, str(submission), None, lambda: None
        uid = warm.slot.uids[1]
        staged = stage(submission, log, warm.slot)

        def undo() -> None:
            try:
                if kill_every_process_of(uid, log, self.python):  # a live process could still write what is removed
                    remove_files_of(uid)
            finally:
                shutil.rmtree(staged, ignore_errors=True)

        return staged, str(staged), uid, undo

    def _warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)
            print(f"autograder: warning: {warning}", file=sys.stderr)

    def _popen(self, cwd: Path, log, arguments: list[str]) -> subprocess.Popen:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": PACKAGE_PARENT,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "HOME": tempfile.gettempdir(),
        }
        ours, theirs = socket.socketpair() if self.link == "socket" else (None, None)
        try:
            proc = subprocess.Popen(
                # -P: the working directory is not on sys.path while the worker starts,
                # so a student's copy.py or torch.py cannot stand in for a module it imports.
                [self.python, "-P", "-m", "autograder.protocol.worker", *arguments],
                stdin=theirs or subprocess.PIPE,
                stdout=theirs or subprocess.PIPE,
                stderr=log,
                cwd=cwd,
                env=env,
                bufsize=0,
                start_new_session=True,
            )
        finally:
            if theirs is not None:
                theirs.close()
        proc.log = log  # the worker's own stderr, read back when it dies
        if ours is not None:
            proc.channel = ours
        return proc


def kill_every_process_of(uid: int, log, python: str = sys.executable) -> bool:
    """Kill every process whose real or saved uid is uid; False (and a line in log) if some survived.
    PermissionError: uid cannot run python."""
    done = subprocess.run(
        [python, "-I", "-S", "-c", KILLER, str(KILL_SECONDS)],
        user=uid, group=uid, extra_groups=[], cwd="/", env={}, capture_output=True, text=True,
    )
    if done.returncode == 0:
        return True
    said = done.stderr.strip()[-1000:] or f"exit status {done.returncode}"
    message = f"autograder: the processes of uid {uid} could not all be killed in {KILL_SECONDS:g} s: {said}\n"
    log.write(message.encode())
    print(message, end="", file=sys.stderr)
    return False


def remove_files_of(uid: int) -> None:
    """Remove what uid left at the top of the world-writable folders. Below it, the uid can create
    files only inside what it created there, or in a world-writable subfolder (those are left)."""
    for folder in WORLD_WRITABLE:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # never follows a symbolic link inside (fd-based on Linux)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
