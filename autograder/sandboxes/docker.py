"""The `docker` sandbox: one container per slot, serving one submission after another.

Process model (the one place it is written down for docker; protocol/worker.py has the worker's):

  grader (host) ══Unix socket══> template   pid 1 of the container (protocol/container.py): root of
    ║                              │        the container with setuid, setgid and kill alone; torch
    ║                              │        imported once, student code never; non-dumpable
    ║                              └─ zygote   one per submission, forked, as the check uid C, on
    ║                                   │      /submission
    ║                                   └─ check   one per check (or per unit), forked
    ╚══ each check's socket, handed over by its zygote ══╝

* The container holds the worker's modules and the Python runtime (the image
  built from docker/Dockerfile); the grader, the reference and the checks stay
  outside. No network, a read-only root, a size-limited /tmp, no_new_privs,
  limits on memory (swap included), processes and CPUs, its cgroup files
  hidden. Zygotes and checks run as the check uid C of its slot (slots.py; the
  grader's own uid when it is not root) with no capability, in the container's
  one pid namespace (no capability means no namespaces of their own).
* The template is the container's root, with the capabilities to make its
  zygotes C and to kill C's processes and no other (not root, the grader also
  gives it DAC_READ_SEARCH, to enter its folders, which are the grader's own).
  A check therefore cannot change it: another uid's limits (prlimit), nice
  value, scheduling, affinity and I/O priority are not a check's to set, nor
  its memory or its tracing (it is non-dumpable, worker.connect_to_grader);
  and as pid 1 it gets only the signals it handles, and it ignores SIGINT.
* /submission is the slot's staging folder, bound read-only, which only C and
  root can read. The grader stages a submission into it
  (slots.stage(fill=...)) only while no zygote runs, and empties it once that
  submission's zygote is closed.
* Nothing of one submission reaches the next. Each zygote is a fresh fork of a
  template that never ran student code. When the grader closes a zygote, the
  template kills every other process in the container and reaps them; then a
  child of it, as C, removes what C could have left: the contents of /tmp,
  /dev/shm and /dev/mqueue and the System V IPC objects, and it finds no
  socket left on the loopback (a closed TCP connection waits a minute in
  TIME_WAIT; container.scrub). Only then does the
  template answer, and only then is the next submission staged. A template
  that cannot scrub ends, and the grader starts a fresh container. Docker's
  seccomp profile refuses keyrings; the network namespace saves no TCP
  metrics. Left shared between the submissions of a slot: counters, which a
  check can read and its predecessors could move, as a fresh container would
  not have them: pid numbers, inode numbers in /tmp, System V IPC ids.
* The link: the grader listens on a Unix socket in a folder of its own (as
  root 0750, root's and the slot's group's; otherwise 0700, the grader's,
  whose uid the container runs as), bound read-only into the container at
  /run/autograder; the template connects to it (`--connect`), the grader
  accepts that one connection, then closes and removes the listening socket,
  so nothing else in the container can connect. A socket passes descriptors
  across the container's boundary: the grader passes each zygote's socket and
  log to the template, and the zygote hands each check's socket to the grader,
  as in the process and namespace sandboxes (no relay through the docker
  client's stdin and stdout: a request costs what it costs in the jail).
* The grader reads the container's CPU time from its cgroup (ContainerCpu): a
  check's time is the difference between two readings, and one submission runs
  in a container at a time.
* The containers of one configuration wait in a pool (template.py) and end
  when the grader closes their socket (at its exit), or dies.

The image must hold this checkout's worker: `autograder build-image` (image.py) labels it
with a hash of the worker's modules, and `probe` refuses an image whose label is missing or differs.

GPUs: `--gpus all` is on a container's command line when its checks ask for CUDA (`start(cuda=True)`,
where the host has a CUDA device and the assignment CUDA checks) and `gpus` is not False; `gpus=True`
gives them to every container.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from autograder.protocol import CONNECT_FLAG
from autograder.protocol.limits import START_TIMEOUT
from autograder.sandboxes import cgroups, template
from autograder.sandboxes.base import Sandbox, SandboxUnavailable
from autograder.sandboxes.slots import Slot, empty, stage, staging_folder

DEFAULT_IMAGE = "autograder-worker:latest"
# The checkout (or site-packages) holding the package: the worker's modules are hashed from here.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
# What docker/Dockerfile copies into the image (their .py files): the worker imports nothing else of the package.
WORKER_MODULES = ("autograder/__init__.py", "autograder/protocol")
LABEL = "autograder.worker-modules"
LINK_FOLDER = "/run/autograder"  # in the container: the grader's listening socket, read-only
LINK_SOCKET = "grader.sock"
GiB = 1 << 30
_numbers = itertools.count()


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        memory_bytes: int = 4 * GiB,
        pids: int = 128,
        tmp_bytes: int = 64 << 20,
        cpus: float = 1.0,
        gpus: bool | None = None,
    ):
        self.image = image or default_image()
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.tmp_bytes = tmp_bytes
        self.cpus = cpus
        self.gpus = gpus

    def unavailable(self) -> str | None:
        return probe(self.image)

    @staticmethod
    def template_capabilities() -> list[str]:
        """What the template needs: to make its zygotes the check uid, and to kill that uid's processes.
        Where the grader is not root, its folders are its own (0700): also to enter them."""
        return ["SETUID", "SETGID", "KILL", *([] if os.geteuid() == 0 else ["DAC_READ_SEARCH"])]

    def command(self, staging: Path, name: str, *, link: Path, cuda: bool = False) -> list[str]:
        """The `docker run` command line for one slot's container: its name, the host folders bound at
        /submission (the staging folder) and LINK_FOLDER (holding the grader's socket, LINK_SOCKET),
        whether its checks ask for CUDA."""
        command = [
            "docker", "run", "--rm",
            "--name", name,
            "--label", "autograder.worker=1",
            "--network", "none",
            # A finished loopback TCP connection would leave its peer's metrics in the kernel's cache (ip tcp_metrics),
            # which outlives the submission, as the network namespace does.
            "--sysctl", "net.ipv4.tcp_no_metrics_save=1",
            "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmp_bytes},mode=1777",
            # The template is the container's root with these alone; its zygotes become the check uid.
            "--user", "0:0",
            "--cap-drop", "ALL",
            *[option for capability in self.template_capabilities() for option in ("--cap-add", capability)],
            "--security-opt", "no-new-privileges",
            "--pids-limit", str(self.pids),
            "--memory", str(self.memory_bytes),
            "--memory-swap", str(self.memory_bytes),  # equal to --memory: no swap
            "--cpus", f"{self.cpus:g}",
            "--ulimit", "core=0",
            "--ulimit", "nofile=256:256",
            "--mount", f"type=bind,{csv_field(f'source={staging}')},target=/submission,readonly",
            "--mount", f"type=bind,{csv_field(f'source={link}')},target={LINK_FOLDER},readonly",
            # The container's cgroup counters would outlive a submission (a check can set the memory peak).
            "--tmpfs", "/sys/fs/cgroup:ro,size=4k",
            "--workdir", "/",
            "--env", "HOME=/tmp",
        ]
        if self.gives_gpus(cuda):
            command += ["--gpus", "all"]
        # No --init: the template is pid 1 (it reaps orphans, and kills every process between submissions).
        # -P: the working directory is not on sys.path while the template starts.
        return command + [self.image, "python", "-P", "-m", "autograder.protocol.container",
                          CONNECT_FLAG, f"{LINK_FOLDER}/{LINK_SOCKET}"]

    def start(self, submission: Path, cuda: bool = False) -> template.Zygote:
        submission = Path(submission).resolve()
        if not submission.is_dir():
            raise SandboxUnavailable(f"{submission} is not a directory")
        log = tempfile.TemporaryFile()
        return self._templates(self.gives_gpus(cuda)).open(lambda warm: self._prepare(warm, submission, log), log)

    def gives_gpus(self, cuda: bool) -> bool:
        """Whether a container gets the GPUs: gpus=True always, False never, None when its checks ask for CUDA."""
        return bool(self.gpus or (cuda and self.gpus is None))

    def _templates(self, gpus: bool) -> template.Pool:
        """The pool of this configuration's containers, with or without the GPUs."""
        key = (type(self), self.image, self.memory_bytes, self.pids, self.tmp_bytes, self.cpus, gpus)
        return template.pool(key, lambda: self._launch(gpus))

    @staticmethod
    def _prepare(warm: template.TemplateProcess, submission: Path, log):
        """The submission staged into warm's staging folder itself, which its container sees as
        /submission, for a zygote running as the check uid."""
        stage(submission, log, warm.slot, fill=warm.staging)
        return warm.staging, "/submission", warm.check_uid, lambda: empty(warm.staging)

    def _launch(self, gpus: bool) -> template.TemplateProcess:
        """A container for one slot, its template connected (see the process model)."""
        if shutil.which("docker") is None:
            raise SandboxUnavailable("the docker command is not installed")
        name = f"autograder-{os.getpid()}-{next(_numbers)}"
        log = tempfile.TemporaryFile()
        slot = Slot.take()
        staging = link = listener = proc = cpu = None

        def cleanup() -> None:
            try:
                if cpu is not None:
                    cpu.close()
                if proc is not None:  # killing the docker client does not stop its container
                    subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
            finally:
                slot.release()
                for folder in (staging, link):
                    if folder:
                        shutil.rmtree(folder, ignore_errors=True)

        try:
            staging = staging_folder(slot)
            link = staging_folder(slot)
            listener = listen(link / LINK_SOCKET, slot)
            proc = subprocess.Popen(
                self.command(staging, name, cuda=gpus, link=link),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
            channel = accept(listener, proc, START_TIMEOUT)
            cpu = ContainerCpu(name)
        except BaseException as exc:
            if proc is not None:
                proc.kill()
                proc.wait()
            cleanup()
            if isinstance(exc, SandboxUnavailable):
                log.seek(0)
                tail = log.read()[-2000:].decode("utf-8", errors="replace").strip()
                raise SandboxUnavailable(f"{exc}{f'; docker said: {tail}' if tail else ''}") from None
            raise
        finally:
            if listener is not None:
                listener.close()
            if link is not None:
                (link / LINK_SOCKET).unlink(missing_ok=True)
        # Not root, the staging folder is ours alone (0700, slots.staging_folder): the checks run as our uid then.
        check_uid = slot.uids[1] if os.geteuid() == 0 else os.getuid()
        return template.TemplateProcess(proc, channel, log, cleanup, cpu, slot=slot, staging=staging, check_uid=check_uid)


def listen(path: Path, slot: Slot) -> socket.socket:
    """A socket listening at path for one connection, that the slot's check group may connect to."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    if os.geteuid() == 0:
        os.chown(path, 0, slot.uids[1])
    # The template, the container's root, connects. Not root, we cannot make it the socket's owner: its
    # folder, ours alone (0700), keeps everyone else out instead.
    path.chmod(0o660 if os.geteuid() == 0 else 0o666)
    listener.listen(1)
    return listener


def accept(listener: socket.socket, proc: subprocess.Popen, seconds: float) -> socket.socket:
    """The container's connection, once its worker has started; SandboxUnavailable where the container
    ends first or it does not connect within seconds."""
    deadline = time.monotonic() + seconds
    listener.settimeout(0.2)
    while True:
        try:
            connection, _ = listener.accept()
            connection.settimeout(None)
            return connection
        except TimeoutError:
            if proc.poll() is not None:
                raise SandboxUnavailable(f"the worker's container ended before its worker started (docker run: exit {proc.returncode})") from None
            if time.monotonic() > deadline:
                raise SandboxUnavailable(f"the worker's container did not connect within {seconds:g} s") from None


class ContainerCpu:
    """The CPU time of every process of a container (its cgroup, read by the grader), so that timed checks
    and CPU limits count CPU time as in the namespace sandbox rather than wall-clock time; None where
    this host's cgroups do not show the container's. Found on first use: the container has started by
    then (its zygote said ready)."""

    def __init__(self, name: str):
        self.name = name
        self.counter = None
        self.looked = False

    def __call__(self) -> float | None:
        if not self.looked:
            self.looked = True
            try:
                found = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}} {{.Id}}", self.name],
                                       capture_output=True, text=True, timeout=30)
                pid, container = found.stdout.split() if found.returncode == 0 else ("0", "")
                pid = int(pid)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pid, container = 0, ""
            # The pid is the engine's: where the grader sees other pids (itself in a container), the group
            # found is another's, and its path does not name the container.
            self.counter = cgroups.cpu_counter_of(pid, naming=container) if pid > 0 and container else None
        return self.counter() if self.counter else None

    def close(self) -> None:
        if self.counter:
            self.counter.close()


def csv_field(text: str) -> str:
    """text as one field of --mount's comma-separated list (a path may hold a comma or a quote)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def default_image() -> str:
    return os.environ.get("AUTOGRADER_IMAGE", DEFAULT_IMAGE)


def worker_module_files(root: Path = PACKAGE_PARENT) -> list[str]:
    """The worker's modules under root (the .py files of WORKER_MODULES), as sorted relative POSIX paths."""
    files = set()
    for module in WORKER_MODULES:
        path = root / module
        found = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        files |= {p.relative_to(root).as_posix() for p in found}
    return sorted(files)


def worker_modules_digest(root: Path = PACKAGE_PARENT) -> str:
    """The image label's value: a SHA-256 of the worker's modules' relative paths and contents, in sorted
    order (no times or modes: a fresh clone of the same commit gives the same digest)."""
    digest = hashlib.sha256()
    for relative in worker_module_files(root):
        content = (root / relative).read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def dockerfile(root: Path = PACKAGE_PARENT) -> Path:
    return root / "docker" / "Dockerfile"


def build_advice(image: str, root: Path = PACKAGE_PARENT, verb: str = "build") -> str:
    """How to build image with root's worker: the command, or where to run it."""
    if dockerfile(root).is_file():
        return f"{verb} it with `autograder build-image --image {shlex.quote(image)}`"
    from autograder import __version__

    return (f"{root} has no docker/Dockerfile (an installed package): {verb} it in a checkout of autograder "
            f"{__version__} with `autograder build-image --image {shlex.quote(image)}`")


def probe(image: str) -> str | None:
    """Why the docker sandbox cannot run image here, or None when it can. Asked anew at each call: an
    image is rebuilt under the same name, and an answer for one image says nothing of another."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20)
        if info.returncode != 0:
            return f"no Docker engine answers (`docker info`: {(info.stderr or info.stdout).strip()[-300:]})"
        found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if found.returncode != 0:
        return f"the grading image {image} is not built; {build_advice(image)}"
    return mismatch(image, found.stdout)


def mismatch(image: str, inspected: str, root: Path = PACKAGE_PARENT) -> str | None:
    """Why image, as `docker image inspect` describes it, does not hold root's worker; None when it does."""
    try:
        labels = json.loads(inspected)[0]["Config"]["Labels"] or {}
    except (ValueError, LookupError, TypeError) as exc:
        return f"cannot read the labels of the grading image {image} from `docker image inspect` ({exc!r}: {inspected[:200]!r})"
    found, expected = labels.get(LABEL), worker_modules_digest(root)
    if found == expected:
        return None
    if found is None:
        why = (f"has no {LABEL} label, so nothing says it holds the worker of {root} (built without "
               f"`autograder build-image`, by an older autograder, or a foreign image)")
    else:
        why = (f"is stale: it was built from other worker modules than those of {root} "
               f"({LABEL} {found[:12]}..., this checkout's {expected[:12]}...)")
    return f"the grading image {image} {why}; {build_advice(image, root, 'rebuild')}"
