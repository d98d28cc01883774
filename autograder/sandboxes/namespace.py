"""The `namespace` sandbox: Linux namespaces, a private root, cgroups and rlimits.

Process model (the one place it is written down; jail.py holds the kernel calls):

  grader (host)
    └─ outer          jail.py outer: joins the template's cgroup, makes a user namespace
         │            (the grader, as root, maps jail uid 0 -> host uid Z and 1000 -> C;
         │            not root: jail uid 0 -> the grader's own uid), then new mount,
         │            pid, net, ipc and uts namespaces
         └─ init      pid 1 of the jail's namespaces: builds a tmpfs root holding only
              │       the staging folder, the Python runtime and its packages, and the
              │       worker's own modules (all read-only), /dev/{null,zero,random,
              │       urandom}, a size-limited /tmp and its own /proc; pivots into it,
              │       drops the old root; reaps orphans
              └─ template   jail uid 0 (host uid Z, or the grader's): no capability on
                   │        the host, no_new_privs, cleared environment, only its
                   │        protocol socket and its log open; imports torch once, and is
                   │        kept warm for one submission after another (template.py);
                   │        pid 1 of a pid namespace of its own, reaping orphans
                   └─ zygote   one per submission, forked: a mount namespace of its own
                        │      where /submission is that submission's staged copy and
                        │      the staging folder is covered (jail.py enter_submission)
                        └─ check   one per check (or per unit: engine/runner.py), forked
                                   as pid 1 of new pid namespace, then new mount, net, ipc
                                   and uts namespaces: fresh /tmp and /proc, jail uid 1000
                                   (host uid C) with no capability, or, not root, every
                                   capability dropped; rlimits; a session keyring of its
                                   own; the seccomp filter below; imports student code

* One slot per template (a lock file): the slot gives the host uids Z and C,
  so two students' checks running side by side never share a uid. A
  template serves one submission at a time: the grader stages the next one
  only once the last one's zygote, and with it every check, is dead.
* The submission the jail sees is a staged copy (slots.stage) in the
  template's staging folder, which only root and the slot can enter: root's,
  group C, mode 0750 (the template has C as supplementary group); not root,
  the grader's own, 0700. No other local
  user reads a submission, nor the reference's solution files that the race
  worker of timed checks is given (those alone: never the checks, hidden
  checks or the course secret; engine/runner.py).
* Seccomp (jail.py `seccomp_program`, built with libseccomp, so every
  architecture's numbers are right; where libseccomp.so.2 is missing the
  checks run without it and the grader warns once). Each refused call fails
  with EPERM, an OSError the student can read; nothing is killed:
    - keyrings: add_key, request_key, keyctl. The user keyring is one per
      uid, shared by every check of a worker, and keys outlive processes: a
      channel from a public check to a hidden one. (Each check also joins a
      new anonymous session keyring before the filter is installed.)
    - other processes: ptrace, process_vm_readv, process_vm_writev,
      process_madvise, pidfd_getfd, kcmp. A check sees no other process
      (its own pid namespace), and never needs to read or trace one.
    - namespaces and mounts, the jail's business and never a check's:
      unshare, setns, clone with any CLONE_NEW* flag, mount, umount2,
      pivot_root, chroot, the new mount API (open_tree, move_mount, fsopen,
      fsconfig, fsmount, fspick, mount_setattr), and file handles
      (open_by_handle_at, name_to_handle_at), which reach files past the
      mounts. clone3 fails with ENOSYS instead (a filter cannot read its
      flags; the C library then falls back to clone, which it can).
    - kernel attack surface no check uses: bpf, perf_event_open,
      userfaultfd, io_uring_setup, io_uring_enter, io_uring_register,
      modify_ldt, iopl, ioperm, syslog (the kernel's log), uselib,
      lookup_dcookie.
    - the machine's own settings: kexec_load, kexec_file_load,
      init_module, finit_module, delete_module, reboot, swapon, swapoff,
      acct, quotactl, quotactl_fd, settimeofday, clock_settime.
    - personality with a flag that switches off address randomisation,
      maps page zero or makes data executable (the query, 0xffffffff, and
      the plain personalities stay allowed: some C libraries ask).
    - another architecture's calls (i386's int 0x80, x32 on x86_64).
  Threads, fork, subprocesses, signals, files, sockets within the jail's
  empty network, and everything torch does stay allowed.
* Limits: the worker's cgroup caps memory (swap included), process count and
  CPU (`cpus` CPUs at most, and a weight equal to every other worker's, so a
  submission's busy processes cannot starve another's checks) for all its
  processes; checks are the memory killer's first choice; the check's rlimits
  cap CPU time, file size, open files, processes (as root), core dumps (none)
  and, as a generous backstop, address space. The grader enforces every
  call's time limits by the group's CPU time, with a wall-clock backstop
  (protocol/limits.py).
* Cleaning up: at a check's end the zygote kills the check's process group;
  the check, pid 1 of its namespaces, takes every process it started with it,
  and its /tmp and mounts vanish with its mount namespace. When a submission
  is done, the template kills its zygote, whose checks die with it, and
  answers once it has reaped it. When the grader stops its templates (at its
  exit), or dies (every process here dies with its parent), the same happens
  one level up, and the grader kills what is left in the cgroup and removes
  it; a later grader removes groups of graders that were killed.
* Nothing comes back but protocol frames on the socket and the zygote's own
  log; the grader never opens a path inside the jail.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
from functools import cache
from pathlib import Path

import autograder
from autograder.sandboxes import template
from autograder.sandboxes.base import Sandbox, SandboxUnavailable
from autograder.sandboxes.cgroups import Cgroup, CgroupUnavailable
from autograder.sandboxes.slots import Slot, stage, staging_folder

PACKAGE = Path(autograder.__file__).resolve().parent
JAIL = PACKAGE / "sandboxes" / "jail.py"
GiB = 1 << 30


class NamespaceSandbox(Sandbox):
    name = "namespace"

    def __init__(
        self,
        memory_bytes: int = 4 * GiB,
        pids: int = 128,
        tmp_bytes: int = 64 << 20,
        file_bytes: int = 32 << 20,
        cpu_seconds: int = 300,
        address_space_bytes: int = 32 * GiB,
        cpus: float = 1.0,
    ):
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.tmp_bytes = tmp_bytes
        self.file_bytes = file_bytes
        self.cpu_seconds = cpu_seconds
        self.address_space_bytes = address_space_bytes
        self.cpus = cpus  # the CPU share of each worker's cgroup
        self.warnings: list[str] = []  # said once per sandbox, on stderr, by whoever starts workers
        self._pool: template.Pool | None = None

    def unavailable(self) -> str | None:
        return probe()

    def start(self, submission: Path, cuda: bool = False):
        submission = Path(submission).resolve()
        if not submission.is_dir():
            raise SandboxUnavailable(f"{submission} is not a directory")
        log = tempfile.TemporaryFile()
        return self._templates().open(lambda warm: self._prepare(warm, submission, log), log)

    def _templates(self) -> template.Pool:
        """The pool of sandboxes that would build the same jail (worked out, and _seccomp's warning said,
        on this sandbox's first start, not on every submission's)."""
        if self._pool is None:
            jail = json.dumps(self.config(Path("/"), None, go=-1), sort_keys=True)
            self._pool = template.pool((type(self), jail, self.memory_bytes, self.pids, self.cpus), self._launch)
        return self._pool

    def _prepare(self, warm: template.TemplateProcess, submission: Path, log):
        """The submission staged into warm's staging folder: its zygote sees that copy alone, as /submission."""
        staged = stage(submission, log, warm.slot, into=warm.staging)
        return staged, staged.name, None, lambda: shutil.rmtree(staged, ignore_errors=True)

    def _launch(self) -> template.TemplateProcess:
        """A template in a jail of its own, with its slot, cgroup and staging folder (see the process model)."""
        log = tempfile.TemporaryFile()
        slot = Slot.take() if os.geteuid() == 0 else None
        cgroup, staging = None, None

        def cleanup() -> None:
            if cgroup:
                cgroup.destroy()
            if slot:
                slot.release()
            if staging:
                shutil.rmtree(staging, ignore_errors=True)  # only ever mounted read-only in the jail

        try:
            staging = staging_folder(slot)
            cgroup = self._cgroup()
            proc = self._start_jail(self.config(staging, slot, go=-1), cgroup, log)
        except BaseException:
            cleanup()
            raise
        cpu_seconds = cgroup.cpu_seconds if cgroup else None
        return template.TemplateProcess(proc, proc.channel, log, cleanup, cpu_seconds, slot=slot, staging=staging, cgroup=cgroup)

    def _start_jail(self, config: dict, cgroup: Cgroup | None, log) -> subprocess.Popen:
        ours, theirs = socket.socketpair()
        go_r, go_w = os.pipe()
        config["go"] = go_r
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(JAIL), "outer", json.dumps(config)],
                stdin=theirs,
                stdout=theirs,
                stderr=log,
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                pass_fds=(go_r,),
                start_new_session=True,
            )
        finally:
            theirs.close()
            os.close(go_r)
        proc.channel = ours
        try:
            if cgroup:  # before the jail makes a single process, all of which must be in the group
                cgroup.add(proc.pid)
            os.write(go_w, b"g")
        except OSError:
            pass  # the template's start then fails, with the jail's own message in its log
        finally:
            os.close(go_w)
        return proc

    def _cgroup(self) -> Cgroup | None:
        try:
            cgroup = Cgroup.create(self.memory_bytes, self.pids, self.cpus)
        except CgroupUnavailable as exc:
            self._warn(f"no cgroup limits ({exc}); memory and processes are limited by rlimits only, CPU not at all")
            return None
        for missing in cgroup.unlimited:
            self._warn(f"no {missing} for the workers: a submission's busy processes can slow down others' checks")
        return cgroup

    def _seccomp(self) -> bool:
        """Whether the jail can build its seccomp filter (it loads the same libraries as we do)."""
        missing = libseccomp_missing()
        if missing:
            self._warn(f"no seccomp filter for the checks ({missing}): they can use keyrings, ptrace, bpf and the like")
        return not missing

    def _warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)
            print(f"autograder: warning: {warning}", file=sys.stderr)

    def config(self, staging: Path, slot: "Slot | None", go: int) -> dict:
        check_limits = {
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_FSIZE": self.file_bytes,
            "RLIMIT_NOFILE": 256,
            "RLIMIT_CORE": 0,
        }
        if slot:  # the check's host uid is its own: the process count is the check's alone
            check_limits["RLIMIT_NPROC"] = self.pids
        gpus = cuda_devices()
        if not gpus:  # CUDA reserves far more address space than any limit worth setting
            check_limits["RLIMIT_AS"] = self.address_space_bytes
        return {
            "python": sys.executable,
            "binds": runtime_binds(staging),
            "links": runtime_links(),
            "pythonpath": extra_packages(),
            "devices": ["null", "zero", "random", "urandom", *gpus],
            "uids": list(slot.uids) if slot else None,
            "tmp_bytes": self.tmp_bytes,
            "seccomp": self._seccomp(),
            "zygote_limits": {"RLIMIT_CORE": 0, "RLIMIT_NOFILE": 1024},
            "check_limits": check_limits,
            "go": go,
        }


def runtime_binds(staging: Path) -> list[list[str]]:
    """What the jail sees, read-only: the staging folder, Python and its packages, the worker's modules."""
    binds = [[str(staging), "/staging", "ro"]]
    system = ["/usr", "/etc/ld.so.cache"]
    runtime = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages(), *extra_packages()}
    runtime |= {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    for path in sorted(system) + sorted(_outermost(runtime)):
        if os.path.exists(path) and not os.path.islink(path):
            binds.append([os.path.realpath(path), path, "ro"])
    for name in ("__init__.py", "protocol"):  # the worker's modules, none of the grader's
        binds.append([str(PACKAGE / name), f"/grader/autograder/{name}", "ro"])
    binds.append([str(JAIL), "/grader/jail.py", "ro"])
    return [b for i, b in enumerate(binds) if not any(_inside(b[1], other[1]) for other in binds[:i])]


def extra_packages() -> list[str]:
    """Package folders on the grader's sys.path beyond its own site's (PYTHONPATH, pip --target):
    the worker gets them too. Only folders named like one, never the course repository."""
    own = set(site.getsitepackages())
    return [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and p not in own and os.path.isdir(p)]


def runtime_links() -> list[list[str]]:
    """Top-level symlinks such as /lib -> usr/lib (merged /usr), so the loader finds its libraries."""
    return [[f"/{name}", os.readlink(f"/{name}")] for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
            if os.path.islink(f"/{name}")]


def _outermost(paths: set[str]) -> list[str]:
    kept = sorted({os.path.normpath(p) for p in paths if p})
    return [p for p in kept if not any(_inside(p, other) for other in kept if other != p)]


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def cuda_devices() -> list[str]:
    """The NVIDIA device nodes a check needs for CUDA, when this host has them."""
    return sorted(p.name for p in Path("/dev").glob("nvidia*") if p.is_char_device())


@cache
def libseccomp_missing() -> str | None:
    """Why libseccomp cannot be loaded here, or None when it can."""
    try:
        ctypes.CDLL("libseccomp.so.2")
    except OSError as exc:
        return str(exc)
    return None


@cache
def probe() -> str | None:
    """Why the namespace sandbox cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "Linux namespaces need Linux"
    test = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"if libc.unshare({0x10000000 | 0x00020000 | 0x20000000 | 0x40000000 | 0x08000000 | 0x04000000}) != 0:\n"
        "    raise SystemExit(os.strerror(ctypes.get_errno()))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", test], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot probe for namespaces: {exc}"
    if done.returncode != 0:
        return f"this host does not allow user, mount, pid, net, ipc and uts namespaces ({done.stderr.strip()[-200:]})"
    return None
