"""The namespace sandbox when part of the Python runtime lives under /tmp (a checkout
or a package folder there, as on CI): the jail's own /tmp must not hide it, neither
from the worker nor from a check's process, which gets a fresh /tmp of its own."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sandboxing import require

ROOT = Path(__file__).resolve().parent.parent


def test_packages_under_tmp_stay_importable_in_every_check(tmp_path):
    require("namespace")
    assert str(tmp_path).startswith("/tmp/"), "this test needs its folder under /tmp"
    packages = tmp_path / "site-packages"  # extra package folders on PYTHONPATH are bound into the jail
    packages.mkdir()
    (packages / "late_import.py").write_text("FACTOR = 2\n")
    submission = tmp_path / "student"
    submission.mkdir()
    (submission / "scale.py").write_text(
        "def double(x):\n"
        "    import late_import  # first imported inside the check, from the folder under /tmp\n"
        "    open('/tmp/scratch', 'w').write('a check may write its own /tmp')\n"
        "    return late_import.FACTOR * x\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{packages}"}
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "tiny", str(submission), "--root", str(ROOT / "tests" / "fixtures" / "tinycourse"),
         "--sandbox", "namespace", "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["sandbox"] == "namespace"
    assert [(c["id"], c["status"]) for c in result["checks"]] == [("scale.double.values", "passed"), ("scale.double.random", "passed")], result
