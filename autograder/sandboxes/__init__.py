"""How a worker is started. Every sandbox starts the same worker program
(`python -m autograder.protocol.worker SUBMISSION`) speaking the protocol on
its stdin/stdout; they differ only in what the worker can see and do."""

from __future__ import annotations

from autograder.sandboxes.base import Sandbox, SandboxUnavailable
from autograder.sandboxes.process import ProcessSandbox

SANDBOXES = {"process": ProcessSandbox}


def get_sandbox(name: str) -> Sandbox:
    """The sandbox called name; `auto` is the strongest available here."""
    if name == "auto":
        for candidate in reversed(list(SANDBOXES.values())):
            if candidate.available():
                return candidate()
    if name not in SANDBOXES:
        raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of: auto, {', '.join(SANDBOXES)}")
    sandbox = SANDBOXES[name]
    if not sandbox.available():
        raise SandboxUnavailable(f"the {name} sandbox is not available on this host")
    return sandbox()


__all__ = ["Sandbox", "SandboxUnavailable", "get_sandbox", "SANDBOXES"]
