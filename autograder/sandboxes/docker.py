"""The `docker` sandbox: one container per worker, speaking the protocol on stdin/stdout.

The container holds the worker's modules and the Python runtime (the image
built from docker/Dockerfile) and the submission, mounted read-only; the
grader, the reference and the checks stay outside. No network, a read-only
root, a size-limited /tmp, no capability, no_new_privs, limits on memory
(swap included), processes and CPUs, and an unprivileged uid per slot. The
zygote relays the checks' frames over the pipes (there is no socket to hand
over), and at every check's end kills the check's process group.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from autograder.sandboxes.base import Sandbox, SandboxUnavailable

IMAGE = os.environ.get("AUTOGRADER_IMAGE", "autograder-worker:latest")
WORKER_UID = 65534  # nobody: the image's files are world-readable, it owns none of them
GiB = 1 << 30
_numbers = itertools.count()


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(
        self,
        image: str = IMAGE,
        memory_bytes: int = 4 * GiB,
        pids: int = 128,
        tmp_bytes: int = 64 << 20,
        cpus: float = 1.0,
        gpus: bool = False,
    ):
        self.image = image
        self.memory_bytes = memory_bytes
        self.pids = pids
        self.tmp_bytes = tmp_bytes
        self.cpus = cpus
        self.gpus = gpus

    @classmethod
    def unavailable(cls) -> str | None:
        return probe(IMAGE)

    def command(self, submission: Path, name: str) -> list[str]:
        """The `docker run` command line for one worker (its container's name given)."""
        command = [
            "docker", "run", "-i", "--rm",
            "--name", name,
            "--label", "autograder.worker=1",
            "--network", "none",
            "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmp_bytes},mode=1777",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--pids-limit", str(self.pids),
            "--memory", str(self.memory_bytes),
            "--memory-swap", str(self.memory_bytes),  # equal to --memory: no swap
            "--cpus", f"{self.cpus:g}",
            "--ulimit", "core=0",
            "--ulimit", "nofile=256:256",
            "--user", f"{WORKER_UID}:{WORKER_UID}",
            "--mount", f"type=bind,source={submission},target=/submission,readonly",
            "--workdir", "/submission",
            "--env", "HOME=/tmp",
        ]
        if self.gpus:
            command += ["--gpus", "all"]
        return command + [self.image, "python", "-m", "autograder.protocol.worker", "/submission"]

    def start(self, submission: Path) -> subprocess.Popen:
        submission = Path(submission).resolve()
        if shutil.which("docker") is None:
            raise SandboxUnavailable("the docker command is not installed")
        name = f"autograder-{os.getpid()}-{next(_numbers)}"
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            self.command(submission, name),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            bufsize=0,
            start_new_session=True,
        )
        proc.log = log

        def cleanup() -> None:
            # Killing the docker client does not stop its container.
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)

        proc.cleanup = cleanup
        return proc


@cache
def probe(image: str) -> str | None:
    """Why the docker sandbox cannot run here, or None when it can."""
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
        return f"the grading image {image} is not built; build it with `docker build -t {image} -f docker/Dockerfile .`"
    return None
