"""The `process` sandbox: a separate process and nothing more (a student's own machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import autograder
from autograder.sandboxes.base import Sandbox

PACKAGE_PARENT = str(Path(autograder.__file__).resolve().parent.parent)


class ProcessSandbox(Sandbox):
    name = "process"

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
        proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.protocol.worker", str(submission)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=submission,
            env=env,
            bufsize=0,
            start_new_session=True,
        )
        proc.log = log  # the zygote's own stderr, read back when it dies
        return proc
