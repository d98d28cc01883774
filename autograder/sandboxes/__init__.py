"""How a worker is started. Every sandbox starts the same worker program
(`python -m autograder.protocol.worker`) speaking the protocol on its stdin and
stdout: a warm template that forks a zygote per submission where descriptors
can be passed to it (process, namespace: template.py), else one worker per
submission (docker). They differ only in what the worker can see and do."""

from __future__ import annotations

import os

from autograder.sandboxes.base import Sandbox, SandboxUnavailable
from autograder.sandboxes.docker import DockerSandbox
from autograder.sandboxes.namespace import NamespaceSandbox
from autograder.sandboxes.process import ProcessSandbox

SANDBOXES = {"process": ProcessSandbox, "namespace": NamespaceSandbox, "docker": DockerSandbox}
NOT_ISOLATED = (
    "WARNING: student code is NOT isolated (the process sandbox): it can read and write whatever "
    "this user can. Grade on a host where Linux namespaces or a Docker engine are available."
)
NOT_ISOLATED_AS_ROOT = (
    "WARNING: student code is NOT isolated (the process sandbox): started as root, it runs student code as an "
    "unprivileged uid of its own, which still reads what any local user can and reaches the network. Grade on a "
    "host where Linux namespaces or a Docker engine are available."
)


def choose(name: str) -> tuple[Sandbox, list[str]]:
    """The sandbox called name, and what to tell the user about the choice (on stderr).

    `auto` takes the strongest available: docker, then namespace, then process."""
    if name != "auto":
        if name not in SANDBOXES:
            raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of: auto, {', '.join(SANDBOXES)}")
        sandbox = SANDBOXES[name]()
        reason = sandbox.unavailable()
        if reason:
            raise SandboxUnavailable(f"the {name} sandbox is not available on this host: {reason}")
        return sandbox, []
    passed_over = []
    for candidate in ("docker", "namespace"):
        sandbox = SANDBOXES[candidate]()
        reason = sandbox.unavailable()
        if reason is None:
            because = f" (not docker: {passed_over[0]})" if passed_over else ""
            return sandbox, [f"sandbox: {candidate}{because}"]
        passed_over.append(reason)
    because = f" (not docker: {passed_over[0]}; not namespace: {passed_over[1]})"
    return ProcessSandbox(), [f"sandbox: process{because}", NOT_ISOLATED_AS_ROOT if os.geteuid() == 0 else NOT_ISOLATED]


def get_sandbox(name: str) -> Sandbox:
    return choose(name)[0]


__all__ = ["Sandbox", "SandboxUnavailable", "choose", "get_sandbox", "SANDBOXES", "NOT_ISOLATED", "NOT_ISOLATED_AS_ROOT"]
