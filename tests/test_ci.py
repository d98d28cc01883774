"""`autograder check --ci` as a GitHub Actions job runs it, and the workflow each homework ships."""

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from autograder.engine.course import parse_course
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.release.workflow import JUNIT_FILE, WORKFLOW_PATH, workflow
from autograder.reports.ci import annotations, step_summary
from hw1_variants import VARIANTS
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


@pytest.fixture(scope="module")
def repositories(tmp_path_factory):
    """Two students' repositories made from assignments/hw1: one correct, one with a Sigmoid bug."""
    made = {}
    for name in ("correct", "buggy"):
        repository = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path_factory.mktemp(name) / "repo")
        for file in HW1_FILES:
            shutil.copy(ROOT / "reference" / "hw1" / file, repository / file)
        made[name] = repository
    apply(next(v for v in VARIANTS if v.name == "sigmoid_wrong_derivative"), made["buggy"])
    return made


def ci_check(repository: Path, summary: Path) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(repository), "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    return subprocess.run([sys.executable, "-m", "autograder", "check", "hw1", ".", "--ci"], cwd=repository,
                          capture_output=True, text=True, timeout=300, env=environment)


def test_a_failing_public_check_fails_the_job_with_a_summary_annotations_and_junit(repositories, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step's summary\n")
    run = ci_check(repositories["buggy"], summary)
    assert run.returncode == 1, run.stderr
    text = summary.read_text()
    assert text.startswith("earlier step's summary\n## hw1: 7.875 / 8 points, 1 public check(s) to fix")  # appended
    assert "| activations.Sigmoid.backward | public | failed | 0 / 0.125 |" in text
    assert "### activations.Sigmoid.backward (failed)" in text and "| neurons.threshold_neuron.output | public | passed |" in text
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(
        "::error file=activations.py,title=activations.Sigmoid.backward (failed%2C 0 / 0.125)::")
    suite = ET.parse(repositories["buggy"] / JUNIT_FILE).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("41", "1", "0")


def test_a_passing_run_succeeds_and_says_so(repositories, tmp_path):
    run = ci_check(repositories["correct"], tmp_path / "summary.md")
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "summary.md").read_text().startswith("## hw1: 8 / 8 points, all public checks pass")
    assert "::error" not in run.stdout and (repositories["correct"] / JUNIT_FILE).is_file()


def test_outside_github_actions_nothing_but_the_table_and_the_junit_file(repositories, tmp_path):
    run = subprocess.run([sys.executable, "-m", "autograder", "check", "hw1", ".", "--junit", str(tmp_path / "out.xml")],
                         cwd=repositories["buggy"], capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 1 and "::error" not in run.stdout and "activations.Sigmoid.backward" in run.stdout
    assert ET.parse(tmp_path / "out.xml").getroot().find("testsuite").get("failures") == "1"


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
    course = parse_course({"release": {"package": "autograder @ git+https://example.org/ag@v1"}})
    assert yaml.safe_load(workflow("hw1", course.package))["jobs"]["check"]["steps"][3]["run"] == \
        'pip install "autograder @ git+https://example.org/ag@v1"'
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in steps
    assert f"autograder check hw1 . --ci --junit {JUNIT_FILE}" in steps
    unset = yaml.safe_load(workflow("hw2", ""))["jobs"]["check"]["steps"][3]["run"]
    assert "[release] package in course.toml" in unset and unset.rstrip().endswith("exit 1")  # fails, saying why
