"""The `process` sandbox: a separate process and nothing more (a student's own machine)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import autograder
from autograder.sandboxes.base import Sandbox

PACKAGE_PARENT = str(Path(autograder.__file__).resolve().parent.parent)


class ProcessSandbox(Sandbox):
    """link="socket": grader and worker share a Unix socket, so each check's
    process is handed to the grader directly; "pipes": plain stdin/stdout, the
    worker relays (what a docker worker does)."""

    name = "process"
    shares_pids = True

    def __init__(self, link: str = "socket"):
        if link not in ("socket", "pipes"):
            raise ValueError(f"link must be 'socket' or 'pipes', not {link!r}")
        self.link = link

    def start(self, submission: Path) -> subprocess.Popen:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": PACKAGE_PARENT,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "HOME": tempfile.gettempdir(),
        }
        log = tempfile.TemporaryFile()
        ours, theirs = socket.socketpair() if self.link == "socket" else (None, None)
        proc = subprocess.Popen(
            # -P: the submission (the working directory) is not on sys.path while the zygote starts,
            # so a student's copy.py or torch.py cannot stand in for a module it imports.
            [sys.executable, "-P", "-m", "autograder.protocol.worker", str(submission)],
            stdin=theirs or subprocess.PIPE,
            stdout=theirs or subprocess.PIPE,
            stderr=log,
            cwd=submission,
            env=env,
            bufsize=0,
            start_new_session=True,
        )
        proc.log = log  # the zygote's own stderr, read back when it dies
        if theirs is not None:
            theirs.close()
            proc.channel = ours
        return proc
