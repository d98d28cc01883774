"""The namespace sandbox started by a user who is not root.

Run as root, the test creates a user for itself and grades reference hw1 as
that user with the system's Python (the venv's packages on PYTHONPATH):
the jail is then a user namespace of that one uid, checks drop every
capability, and memory is limited by rlimits (no cgroup to write to).
It skips, saying why, where it cannot: not root, no useradd, or a checkout
or packages that other users cannot read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER = "agsandboxtest"
SCRIPT = """
import json, sys
from pathlib import Path
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.protocol.client import Worker
from autograder.sandboxes.namespace import NamespaceSandbox

root, probe = Path(sys.argv[1]), Path(sys.argv[2])
sandbox = NamespaceSandbox()
result = grade(load_reference("hw1", root / "reference" / "hw1"), root / "reference" / "hw1", sandbox, "alice")
with Worker(sandbox, probe) as worker:
    session = worker.session(seed=0, forbid=[], call_timeout=60, check_timeout=120)
    inside = session.student.probe.look()
    session.end()
print(json.dumps({"score": result.score, "max_score": result.max_score, "sandbox": result.sandbox, "inside": inside}))
"""
PROBE = """
import os, socket
def look():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    try:
        socket.create_connection(("127.0.0.1", 22), timeout=1)
        network = "reached"
    except OSError:
        network = "unreachable"
    return {"uid": os.getuid(), "caps": status["CapEff"].strip(), "bounding": status["CapBnd"].strip(),
            "root": sorted(os.listdir("/")), "network": network, "reference": os.path.exists(%r)}
"""


def unprivileged_python() -> str:
    """A Python of this version the test user can run: the venv's own interpreter may live under /root."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for folder in (Path(sys.base_prefix) / "bin", Path("/usr/bin"), Path("/usr/local/bin")):
        if as_user("test", "-x", str(folder / version)).returncode == 0:
            return str(folder / version)
    pytest.skip(f"no {version} that an unprivileged user can run")


def as_user(*command: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", *command], **options)


@pytest.fixture(scope="module")
def user():
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv to create and become a test user")
    created = subprocess.run(["id", USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", USER], check=True)
    yield USER
    if created:
        subprocess.run(["userdel", USER], check=False)


def test_grading_as_another_user_is_sandboxed(user):
    python = unprivileged_python()
    packages = sysconfig.get_paths()["purelib"]
    for needed in (packages, str(ROOT / "reference" / "hw1" / "activations.py")):
        if as_user("test", "-r", needed).returncode != 0:
            pytest.skip(f"{needed} is not readable by another user here")
    probe = Path(tempfile.mkdtemp(prefix="agprobe-"))  # pytest's own folders are root's alone
    try:
        probe.chmod(0o755)
        (probe / "probe.py").write_text(PROBE % str(ROOT / "reference"))
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{packages}", "HOME": "/nonexistent"}
        done = as_user(python, "-c", SCRIPT, str(ROOT), str(probe), capture_output=True, text=True, env=env, timeout=600)
    finally:
        shutil.rmtree(probe)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["score"], result["max_score"], result["sandbox"]) == (15.0, 15.0, "namespace")
    inside = result["inside"]
    assert inside["caps"] == "0000000000000000" and inside["bounding"] == "0000000000000000"
    assert inside["network"] == "unreachable" and not inside["reference"]
    assert "home" not in inside["root"], inside["root"]
    assert "no cgroup limits" in done.stderr  # said, not silently skipped
