"""Memory, pids and CPU accounting for one sandboxed worker through cgroups, v1 or v2.

Groups are made below the grader's own cgroup (so they stay inside whatever
limits the host gives the grader) and named `autograder-<grader pid>-<n>`;
groups left by a grader that was killed are removed by the next one. On a v2
host the grader's own cgroup usually holds processes and cannot delegate
controllers; set AUTOGRADER_CGROUP to a cgroup directory you delegated to the
grader (systemd `Delegate=yes`, or a container's own cgroup namespace).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpuacct")
PREFIX = "autograder-"
_numbers = itertools.count()


class CgroupUnavailable(RuntimeError):
    pass


class Cgroup:
    """One worker's group: every process of the sandbox is in it, and dies with it."""

    def __init__(self, directories: list[Path], version: int):
        self.directories = directories
        self.version = version

    @classmethod
    def create(cls, memory_bytes: int, pids: int) -> "Cgroup":
        version, bases = _bases()
        name = f"{PREFIX}{os.getpid()}-{next(_numbers)}"
        for base in bases:
            _sweep(base)
        made = cls([base / name for base in bases], version)
        try:
            for directory in made.directories:
                directory.mkdir()
            made.set_limits(memory_bytes, pids)
        except OSError as exc:
            made.destroy()
            raise CgroupUnavailable(f"cannot set up a cgroup in {bases[0]}: {exc}") from None
        return made

    def set_limits(self, memory_bytes: int, pids: int) -> None:
        if self.version == 2:
            (group,) = self.directories
            _write(group / "memory.max", memory_bytes)
            _write(group / "memory.swap.max", 0, optional=True)
            _write(group / "pids.max", pids)
            return
        memory, pid_group, _ = self.directories
        _write(memory / "memory.limit_in_bytes", memory_bytes)
        _write(memory / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)  # no swapping around it
        _write(pid_group / "pids.max", pids)

    def add(self, pid: int) -> None:
        for directory in self.directories:
            _write(directory / "cgroup.procs", pid)

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the group, from the kernel's accounting."""
        try:
            if self.version == 2:
                for line in (self.directories[0] / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) / 1e6
                return None
            return int((self.directories[2] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def destroy(self) -> None:
        """Kill every process in the group, then remove it."""
        for directory in self.directories:
            _empty_and_remove(directory)


def _bases() -> tuple[int, list[Path]]:
    delegated = os.environ.get("AUTOGRADER_CGROUP")
    own = _own_paths()
    if (ROOT / "cgroup.controllers").exists() or delegated:
        base = Path(delegated) if delegated else ROOT / own.get("", "/").lstrip("/")
        _enable_v2_controllers(base)
        return 2, [base]
    missing = [c for c in V1_CONTROLLERS if not (ROOT / c / "cgroup.procs").exists()]
    if missing:
        raise CgroupUnavailable(f"no cgroup v2 and no v1 {', '.join(missing)} controller mounted under {ROOT}")
    return 1, [ROOT / c / own.get(c, "/").lstrip("/") for c in V1_CONTROLLERS]


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path in it ("" is the v2 hierarchy)."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _enable_v2_controllers(base: Path) -> None:
    enabled = (base / "cgroup.subtree_control").read_text().split()
    wanted = [c for c in ("memory", "pids", "cpu") if c not in enabled]
    try:
        if wanted:
            _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    except OSError as exc:
        raise CgroupUnavailable(
            f"cannot enable the memory and pids controllers below {base} ({exc.strerror}); "
            "set AUTOGRADER_CGROUP to a cgroup delegated to the grader"
        ) from None


def _sweep(base: Path) -> None:
    """Remove groups left behind by graders that no longer run."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir():
            owner = entry.name[len(PREFIX) :].split("-")[0]
            if owner.isdigit() and not _alive(int(owner)):
                _empty_and_remove(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


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
