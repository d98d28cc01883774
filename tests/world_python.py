"""A Python every user can run, with this environment's packages: what the process sandbox started as
root needs to run its worker as an unprivileged uid (sandboxes/process.py).

Gradescope's image has one (setup.sh: a venv on the system's Python). A test environment whose Python
lies in a folder only root enters (pyenv in /root) has not, and the sandbox would keep root: this builds
the image's kind of venv, on the system's Python of this version, seeing this environment's site-packages
and the checkout."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"


def world_runnable_venv(venv: Path) -> Path:
    """A venv at venv (its folder must be one every user can enter) with bin/python, bin/python3 and
    bin/autograder; skips the test where no system Python fits. Returns venv."""
    base = shutil.which(VERSION, path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        pytest.skip(f"no system {VERSION} for the unprivileged uid to run (the process sandbox as root needs one)")
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    site_packages = next(venv.glob("lib/python*/site-packages"))
    (site_packages / "this-environment.pth").write_text("\n".join([str(CHECKOUT), *site.getsitepackages()]) + "\n")
    script = venv / "bin" / "autograder"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom autograder.cli import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return venv


def world_enterable_folder(prefix: str) -> Path:
    """A new folder in the system's temporary folder that every user can enter (pytest's are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder
