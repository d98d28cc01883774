from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from pathlib import Path


class SandboxUnavailable(RuntimeError):
    """The requested sandbox cannot run on this host."""


class Sandbox(ABC):
    name: str
    # Whether the worker's process ids are the grader's too (no pid namespace between them):
    # the grader then reads a check's CPU time from the kernel for timed checks.
    shares_pids: bool = False

    def unavailable(self) -> str | None:
        """Why this sandbox, as configured (the docker sandbox: its image), cannot run on this host, or None when it can."""
        return None

    @abstractmethod
    def start(self, submission: Path, cuda: bool = False) -> subprocess.Popen:
        """Start the worker on submission, speaking the protocol to the grader. cuda: its
        checks will use CUDA (a sandbox that hides the host's GPUs by default gives them then).

        The returned process has a `log` attribute (a file holding the worker's
        stderr) and either `channel`, a Unix socket connected to the worker
        (checks' processes are then handed over directly), or
        binary, unbuffered `stdin`/`stdout` pipes (the worker relays). It may
        have `cleanup`, called once the worker is dead, and `cpu_seconds`, the
        kernel's count of the CPU time all the worker's processes used.
        """
