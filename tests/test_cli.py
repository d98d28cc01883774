"""The fixed command line: output channels and exit codes, run as a user would."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"


def autograder(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_grade_json_prints_exactly_one_object_even_when_the_student_prints(tmp_path):
    for name in ("neurons.py", "activations.py", "backprop.py", "optimizers.py"):
        shutil.copy(REFERENCE / name, tmp_path / name)
    source = (tmp_path / "activations.py").read_text()
    (tmp_path / "activations.py").write_text("print('hello from import')\n" + source.replace(
        "return grad_out * self.y * (1 - self.y)", "print('debug', grad_out.shape)\n        return grad_out * (1 - self.y)"))
    run = autograder("grade", "hw1", str(tmp_path), "--student", "s1", "--format", "json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)  # nothing else on stdout
    assert set(result) == {"assignment", "student", "score", "max_score", "sandbox", "notes", "submitted_at", "submitted_at_source", "checks"}
    assert result["student"] == "s1" and result["max_score"] == 15
    assert {tuple(sorted(c)) for c in result["checks"]} == {("id", "max_score", "message", "score", "status", "visibility")}
    failed = {c["id"]: c for c in result["checks"] if c["status"] != "passed"}
    assert failed and all(k.startswith("activations.Sigmoid.") for k in failed)
    public = failed["activations.Sigmoid.backward"]["message"]
    assert "debug" in public and "output of your code" in public
    hidden = [c["message"] for c in failed.values() if c["visibility"] == "hidden"]
    assert hidden and not any("debug" in m for m in hidden)  # student output could leak hidden inputs


def test_grade_exit_codes_when_grading_cannot_run(tmp_path):
    unknown = autograder("grade", "hw9", str(REFERENCE))
    assert unknown.returncode != 0 and "hw9" in unknown.stderr and unknown.stdout == ""
    missing = autograder("grade", "hw1", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_check_runs_public_checks_from_the_bundle(tmp_path):
    student = tmp_path / "hw1"
    shutil.copytree(ROOT / "assignments" / "hw1", student)
    failing = autograder("check", "hw1", cwd=student)
    assert failing.returncode == 1 and "NotImplementedError" in failing.stdout
    assert "hidden" not in failing.stdout  # a solution passing it: tests/test_wheel.py
