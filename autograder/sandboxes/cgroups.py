"""Memory, pids, a CPU share and CPU accounting for one sandboxed worker through cgroups, v1 or v2.

Groups are made below the grader's own cgroup (so they stay inside whatever
limits the host gives the grader) and named `autograder-<grader pid>-<n>`;
groups left by a grader that was killed are removed by the next one. On a v2
host the grader's own cgroup usually holds processes and cannot delegate
controllers; set AUTOGRADER_CGROUP to a cgroup directory you delegated to the
grader (systemd `Delegate=yes`, or a container's own cgroup namespace).

The CPU share: every worker's group may use `cpus` CPUs at most (a CFS quota)
and weighs the same as any other when CPUs are scarce, however many processes
it runs, so one submission's busy processes cannot starve another's checks.
Without a cpu controller the group is still made; `unlimited` says what is
missing, for the sandbox to warn about.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpuacct")  # the group is not made without these
V1_OPTIONAL = ("cpu",)  # without these it is, with a warning
V2_CONTROLLERS, V2_OPTIONAL = ("memory", "pids"), ("cpu",)
CPU_PERIOD_US = 100_000  # the quota's period: the kernel's default
CPU_WEIGHT_V1, CPU_WEIGHT_V2 = 1024, 100  # the same weight for every worker (the kernels' defaults)
PREFIX = "autograder-"
CPU_FILE_BYTES = 4096  # read of cpu.stat (v2: six short lines) or cpuacct.usage (v1: one number)
_numbers = itertools.count()
_parent_paths: dict[str, str] | None = None  # set by make_groups_here: where groups go, whatever group the caller is in


class CgroupUnavailable(RuntimeError):
    pass


class Cgroup:
    """One worker's group: every process of the sandbox is in it, and dies with it."""

    def __init__(self, groups: dict[str, Path], version: int):
        self.groups = groups  # controller -> the group's directory in its hierarchy (v2: one for all)
        self.version = version
        self.unlimited: list[str] = []  # what this host's cgroups could not limit
        self._cpu: CpuCounter | None = None

    @property
    def directories(self) -> list[Path]:
        """Each directory once (v1 may mount cpu and cpuacct together)."""
        return list(dict.fromkeys(self.groups.values()))

    @classmethod
    def create(cls, memory_bytes: int, pids: int, cpus: float = 1.0) -> "Cgroup":
        version, bases = _bases()
        name = f"{PREFIX}{os.getpid()}-{next(_numbers)}"
        for base in dict.fromkeys(bases.values()):
            _sweep(base)
        made = cls({controller: base / name for controller, base in bases.items()}, version)
        try:
            for directory in made.directories:
                directory.mkdir()
            made.set_limits(memory_bytes, pids)
        except OSError as exc:
            made.destroy()
            raise CgroupUnavailable(f"cannot set up a cgroup in {next(iter(bases.values()))}: {exc}") from None
        made.set_cpu_share(cpus)
        return made

    def set_limits(self, memory_bytes: int, pids: int) -> None:
        if self.version == 2:
            group = self.groups["memory"]
            _write(group / "memory.max", memory_bytes)
            _write(group / "memory.swap.max", 0, optional=True)
            _write(group / "pids.max", pids)
            return
        _write(self.groups["memory"] / "memory.limit_in_bytes", memory_bytes)
        _write(self.groups["memory"] / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)  # no swapping around it
        _write(self.groups["pids"] / "pids.max", pids)

    def set_cpu_share(self, cpus: float) -> None:
        """At most `cpus` CPUs, and the same weight as every other worker; noted in `unlimited` where it cannot be."""
        group = self.groups.get("cpu")
        if group is None:
            self.unlimited.append("CPU share (no cpu controller)")
            return
        quota = max(1000, round(cpus * CPU_PERIOD_US))
        try:
            if self.version == 2:
                _write(group / "cpu.max", f"{quota} {CPU_PERIOD_US}")
                _write(group / "cpu.weight", CPU_WEIGHT_V2)
            else:
                _write(group / "cpu.cfs_period_us", CPU_PERIOD_US)
                _write(group / "cpu.cfs_quota_us", quota)
                _write(group / "cpu.shares", CPU_WEIGHT_V1)
        except OSError as exc:
            self.unlimited.append(f"CPU share ({exc.strerror or exc})")

    def add(self, pid: int) -> None:
        for directory in self.directories:
            _write(directory / "cgroup.procs", pid)

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the group, from the kernel's accounting."""
        if self._cpu is None:
            directory = self.groups["memory"] if self.version == 2 else self.groups["cpuacct"]
            self._cpu = CpuCounter(directory, self.version)
        return self._cpu()

    def oom_kills(self) -> int:
        """How many of the group's processes the kernel's memory killer has killed (0 where the kernel does not say)."""
        events = self.groups["memory"] / ("memory.events" if self.version == 2 else "memory.oom_control")
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def destroy(self) -> None:
        """Kill every process in the group, then remove it."""
        if self._cpu is not None:
            self._cpu.close()
        for directory in self.directories:
            _empty_and_remove(directory)


class CpuCounter:
    """The CPU time every process of one cgroup has used, from the kernel's accounting (v2: cpu.stat's
    usage_usec; v1: cpuacct.usage); None once it cannot be read. Its file is opened once: the grader
    reads it several times per request (limits.py)."""

    def __init__(self, directory: Path, version: int):
        self.path = directory / ("cpu.stat" if version == 2 else "cpuacct.usage")
        self.version = version
        self._file: int | None = None

    def __call__(self) -> float | None:
        try:
            if self._file is None:
                self._file = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            text = os.pread(self._file, CPU_FILE_BYTES, 0)  # the kernel writes it anew for each read at 0
            if self.version == 2:
                for line in text.splitlines():
                    key, _, value = line.partition(b" ")
                    if key == b"usage_usec":
                        return int(value) / 1e6
                return None
            return int(text) / 1e9
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None


def cpu_counter_of(pid: int, naming: str = "") -> CpuCounter | None:
    """A CpuCounter of the cgroup pid is in (a container's, made by its engine), or None where this
    host's cgroups do not show it to us, or its path does not contain naming (a container's id)."""
    try:
        paths = _paths_of(str(pid))
    except (OSError, ValueError):
        return None
    paths = {controller: path for controller, path in paths.items()
             if naming in path and ".." not in path.split("/")}
    if (ROOT / "cgroup.controllers").exists() and "" in paths:
        counter = CpuCounter(ROOT / paths[""].lstrip("/"), 2)
    elif "cpuacct" in paths and (ROOT / "cpuacct").exists():
        counter = CpuCounter(Path(os.path.realpath(ROOT / "cpuacct")) / paths["cpuacct"].lstrip("/"), 1)
    else:
        return None
    return counter if counter() is not None else None


def _bases() -> tuple[int, dict[str, Path]]:
    """The cgroup version, and for each controller the directory the worker's groups are made in."""
    delegated = os.environ.get("AUTOGRADER_CGROUP")
    own = _parent_paths or _own_paths()
    if (ROOT / "cgroup.controllers").exists() or delegated:
        base = Path(delegated) if delegated else ROOT / own.get("", "/").lstrip("/")
        return 2, {controller: base for controller in _enable_v2_controllers(base)}
    missing = [c for c in V1_CONTROLLERS if not (ROOT / c / "cgroup.procs").exists()]
    if missing:
        raise CgroupUnavailable(f"no cgroup v2 and no v1 {', '.join(missing)} controller mounted under {ROOT}")
    mounted = V1_CONTROLLERS + tuple(c for c in V1_OPTIONAL if (ROOT / c / "cgroup.procs").exists())
    # cpu and cpuacct are often one hierarchy (cpu,cpuacct, linked as both): its path is read once.
    return 1, {c: Path(os.path.realpath(ROOT / c)) / own.get(c, "/").lstrip("/") for c in mounted}


def make_groups_here() -> None:
    """Make later groups (of this process and of the processes it forks) beside this process's own
    groups: a batch's graders each run in a group of their own, and their workers' groups must not
    be inside it, charged to the grader's memory."""
    global _parent_paths
    _parent_paths = _own_paths()


def sweep() -> None:
    """Remove the groups left behind by processes that no longer run (a killed batch's graders, their workers)."""
    try:
        _, bases = _bases()
    except (CgroupUnavailable, OSError):
        return  # no cgroups here: nothing was left either
    for base in dict.fromkeys(bases.values()):
        _sweep(base)


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in it ("" is the v2 hierarchy)."""
    return _paths_of("self")


def _paths_of(pid: str) -> dict[str, str]:
    """controller -> pid's cgroup path in it ("" is the v2 hierarchy)."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _enable_v2_controllers(base: Path) -> list[str]:
    """Enable the controllers the worker's groups need below base; the ones now enabled.

    memory and pids are required; cpu is optional (one that is missing, or that
    the kernel refuses, e.g. for a realtime process, is left out)."""
    available = (base / "cgroup.controllers").read_text().split()
    enabled = (base / "cgroup.subtree_control").read_text().split()
    for controller in V2_CONTROLLERS + V2_OPTIONAL:
        if controller in enabled:
            continue
        required = controller in V2_CONTROLLERS
        try:
            if controller not in available:
                raise OSError(0, f"{base} does not offer the {controller} controller")
            _write(base / "cgroup.subtree_control", f"+{controller}")
            enabled.append(controller)
        except OSError as exc:
            if required:
                raise CgroupUnavailable(
                    f"cannot enable the memory and pids controllers below {base} ({exc.strerror}); "
                    "set AUTOGRADER_CGROUP to a cgroup delegated to the grader"
                ) from None
    return [c for c in V2_CONTROLLERS + V2_OPTIONAL if c in enabled]


def _sweep(base: Path) -> None:
    """Remove groups left behind by graders that no longer run."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir():
            owner = entry.name[len(PREFIX) :].split("-")[0]
            if owner.isdigit() and not alive(int(owner)):
                _empty_and_remove(entry)


def alive(pid: int) -> bool:
    """Whether pid still runs. A zombie does not: a killed batch's graders are orphans, which some
    containers' init never reaps."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # unreadable (hidepid): counted as running, never swept by mistake
    return state not in ("Z", "X")


def _empty_and_remove(directory: Path) -> None:
    deadline = time.monotonic() + 5.0
    while directory.exists():
        try:
            _write(directory / "cgroup.kill", 1, optional=True)  # v2: all at once, forks included
            for pid in (directory / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            directory.rmdir()
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # killed processes leave the group once the kernel has reaped them


def _write(path: Path, value, optional: bool = False) -> None:
    if optional and not path.exists():  # cgroupfs refuses to create a file: EACCES, not ENOENT
        return
    try:
        with open(path, "w") as control:
            control.write(str(value))
    except FileNotFoundError:
        if not optional:
            raise
