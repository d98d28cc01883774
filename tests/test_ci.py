"""`autograder check --ci`'s pieces and the workflow each homework ships. A real `check --ci`
run, failing and passing, in a fresh virtualenv with the wheel: tests/test_wheel.py."""

from pathlib import Path

import yaml

from autograder.engine.course import load_course, parse_course
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.release.install import TORCH_INSTALL
from autograder.release.workflow import JUNIT_FILE, WORKFLOW_PATH, workflow
from autograder.reports.ci import annotations, publish, step_summary

ROOT = Path(__file__).resolve().parent.parent


def test_outside_github_actions_only_the_summary_file_if_one_is_named(tmp_path, capsys):
    result = SubmissionResult("hw1", "local", [CheckResult("activations.Sigmoid.forward", 0, 0.125, "failed", "off", "public")])
    publish(result, {})
    publish(result, {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    assert capsys.readouterr().out == "" and "### activations.Sigmoid.forward (failed)" in (tmp_path / "summary.md").read_text()


def test_annotations_stay_one_line_and_point_at_the_line_that_raised():
    message = "Sigmoid.forward raised ValueError at activations.py:17 in forward: 100% wrong\n  File \"./activations.py\", line 17"
    result = SubmissionResult("hw1", "local", [CheckResult("activations.Sigmoid.forward", 0, 0.125, "error", message, "public"),
                                               CheckResult("activations.Tanh.forward", 0.125, 0.125, "passed", "", "public")])
    assert annotations(result, Path("hw1")) == [
        "::error file=hw1/activations.py,line=17,title=activations.Sigmoid.forward (error%2C 0 / 0.125)::"
        "Sigmoid.forward raised ValueError at activations.py:17 in forward: 100%25 wrong%0A  File \"./activations.py\", line 17"]
    assert "| activations.Sigmoid.forward | public | error | 0 / 0.125 |" in step_summary(result)


def test_the_released_workflow_installs_the_course_package_and_runs_check_ci():
    released = yaml.safe_load((ROOT / "assignments" / "hw1" / WORKFLOW_PATH).read_text())
    steps = [step.get("run", step.get("uses")) for step in released["jobs"]["check"]["steps"]]
    torch, package = steps.index(TORCH_INSTALL), steps.index(f'pip install "{load_course(ROOT).package}"')
    assert torch < package < steps.index(f"autograder check hw1 . --ci --junit {JUNIT_FILE}")
    assert "--index-url https://download.pytorch.org/whl/cpu" in TORCH_INSTALL  # the CPU build, first
    course = parse_course({"release": {"package": "dl-autograder @ git+https://github.com/a-course/ag@v1"}})
    assert yaml.safe_load(workflow("hw1", course.package))["jobs"]["check"]["steps"][3]["run"] == \
        'pip install "dl-autograder @ git+https://github.com/a-course/ag@v1"'
