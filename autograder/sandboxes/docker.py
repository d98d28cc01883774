"""The `docker` sandbox: one container per worker, speaking the protocol on stdin/stdout.

The container holds the worker's modules and the Python runtime (the image
built from docker/Dockerfile) and the submission, mounted read-only; the
grader, the reference and the checks stay outside. No network, a read-only
root, a size-limited /tmp, no capability, no_new_privs, limits on memory
(swap included), processes and CPUs, and the check uid of a slot (slots.py;
the grader's own uid when it is not root), with a staged copy of the
submission that only that uid and root can read. The
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
from autograder.sandboxes.slots import Slot, stage

IMAGE = os.environ.get("AUTOGRADER_IMAGE", "autograder-worker:latest")
WORKER_UID = 65534  # without a slot: nobody. The image's files are world-readable, no worker owns any
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

    def command(self, submission: Path, name: str, uid: int = WORKER_UID) -> list[str]:
        """The `docker run` command line for one worker: its container's name, the uid it runs as."""
        command = [
            "docker", "run", "-i", "--rm",
            "--init",  # a pid 1 that reaps orphans: unreaped zombies would use up --pids-limit
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
            "--user", f"{uid}:{uid}",
            "--mount", f"type=bind,{csv_field(f'source={submission}')},target=/submission,readonly",
            "--workdir", "/submission",
            "--env", "HOME=/tmp",
        ]
        if self.gpus:
            command += ["--gpus", "all"]
        # -P: the working directory (the submission) is not on sys.path while the zygote starts,
        # so a student's copy.py or torch.py cannot stand in for the modules it imports.
        return command + [self.image, "python", "-P", "-m", "autograder.protocol.worker", "/submission"]

    def start(self, submission: Path) -> subprocess.Popen:
        submission = Path(submission).resolve()
        if shutil.which("docker") is None:
            raise SandboxUnavailable("the docker command is not installed")
        name = f"autograder-{os.getpid()}-{next(_numbers)}"
        log = tempfile.TemporaryFile()
        slot = Slot.take()
        try:
            staged = stage(submission, log, slot)
        except BaseException:
            slot.release()
            raise
        # Not root, the staged copy is ours alone (0700, slots.stage): the container runs as our uid then.
        uid = slot.uids[1] if os.geteuid() == 0 else os.getuid()
        proc = subprocess.Popen(
            self.command(staged, name, uid=uid),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            bufsize=0,
            start_new_session=True,
        )
        proc.log = log

        def cleanup() -> None:
            try:  # killing the docker client does not stop its container
                subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
            finally:
                slot.release()
                shutil.rmtree(staged, ignore_errors=True)

        proc.cleanup = cleanup
        return proc


def csv_field(text: str) -> str:
    """text as one field of --mount's comma-separated list (a path may hold a comma or a quote)."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


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
