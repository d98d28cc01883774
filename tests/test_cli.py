"""The fixed command line: output channels and exit codes, run as a user would."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from autograder.cli import main

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


SCREEN = (40, 100)  # lines, columns: what `check` on untouched stubs may fill at most


def check_in(folder: Path, monkeypatch) -> tuple[int, str]:
    """`autograder check hw1` in folder, as in a terminal SCREEN wide (rich wraps at COLUMNS): its exit code and
    what it printed, on stdout and stderr."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("COLUMNS", str(SCREEN[1]))
    run = CliRunner().invoke(main, ["check", "hw1"])
    return run.exit_code, run.output


def test_check_on_the_stubs_lists_what_is_not_written_yet_in_a_screenful(tmp_path, monkeypatch):
    student = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "hw1")
    code, output = check_in(student, monkeypatch)
    assert code == 1
    lines = output.splitlines()
    assert len(lines) <= SCREEN[0], output
    assert "Traceback" not in output and "File \"" not in output
    assert "not written yet, so 41 check(s) worth 8 point(s) score 0: these still raise NotImplementedError" in lines
    listed = " ".join(output.split())
    assert "neurons.py: threshold_neuron, perceptron_fit," in listed and "SGD (step), AdaGrad (step)" in listed
    assert "Sigmoid (forward, backward)" in listed and "0 / 8 points; 0 of 41 checks passed" in lines
    assert "hidden" not in output  # a solution passing it: tests/test_wheel.py


def test_check_shows_a_real_failure_among_stubs_in_full(tmp_path, monkeypatch):
    student = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "hw1")
    stub = (student / "activations.py").read_text()
    raising = '        raise NotImplementedError("Sigmoid.forward: write your solution here")\n'
    assert raising in stub
    (student / "activations.py").write_text(stub.replace(raising, "        self.y = 1 / (1 + torch.exp(x))  # sign of x wrong\n"
                                                                      "        return self.y\n"))
    code, output = check_in(student, monkeypatch)
    assert code == 1 and len(output.splitlines()) <= SCREEN[0], output
    shown = " ".join(output.split())
    assert "activations.Sigmoid.forward (failed)" in shown
    assert re.search(r"activations\.Sigmoid\(\)\.forward\(float64\[4, 5\]\): wrong values in 20 of 20 elements .* "
                     r"worst at index \(\d, \d\): expected 0\.\d+, got 0\.\d+ .* expected: \[.*\] got: \[.*\]", shown), shown
    # Sigmoid.backward runs the wrong forward first: its own failure, not a stub's
    assert "activations.Sigmoid.backward (failed)" in shown
    assert "not written yet, so 39 check(s) worth 7.75 point(s) score 0" in shown and "Sigmoid (backward), Tanh (forward, backward)" in shown


def test_unknown_homework_names_list_the_known_ones(tmp_path, monkeypatch):
    invoke = lambda *args: CliRunner().invoke(main, list(args))  # noqa: E731
    for command in (("check", "hw7"), ("grade", "hw7", "."), ("batch", "hw9", ".")):
        run = invoke(*command)
        assert run.exit_code == 1 and "the homeworks there are hw1, hw2" in run.output, (command, run.output)
    released = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "hw1")
    monkeypatch.chdir(released)
    run = invoke("check", "hw2")
    assert run.exit_code == 1 and "holds the public checks of 'hw1', not of 'hw2'" in run.output


def test_grade_and_batch_without_a_course_repository_are_for_instructors(tmp_path):
    released = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "hw1")  # a student's folder: no reference/
    for command in ("grade", "batch"):
        run = CliRunner().invoke(main, [command, "hw1", str(released), "--root", str(released)])
        said = " ".join(run.output.split())
        assert run.exit_code == 1 and f"`autograder {command}` is for instructors" in said, run.output
        assert "use `autograder check hw1` in your copy of the hw1 folder" in said and "cannot find" not in said
