"""What students install: the built wheel holds no reference solution, and with it alone
a copy of assignments/hw1 checks itself (no reference/ anywhere, a fresh virtualenv), as
the homework's GitHub Actions workflow runs it (`check --ci`)."""

import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from autograder.release.gradescope_package import build_wheel, project_metadata
from autograder.release.release import BEGIN, END
from autograder.release.workflow import JUNIT_FILE
from hw1_variants import VARIANTS
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(project_metadata(ROOT / "pyproject.toml"), tmp_path_factory.mktemp("wheel"))


def solution_lines(path: Path) -> list[str]:
    """The lines inside the solution regions of a reference file that say something (not blank, not `return x`)."""
    inside, lines = False, []
    for line in path.read_text().splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and len(line.strip()) > 25:
            lines.append(line.strip())
    return lines


def test_the_wheel_holds_the_package_and_no_course_material(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        text = "\n".join(archive.read(name).decode("utf-8", "replace") for name in names)
    assert "autograder/cli.py" in names and "autograder/submission/notebook.py" in names
    assert not [n for n in names if n.split("/")[0] in ("reference", "assignments", "tests", "examples")]
    assert not [n for n in names if n.endswith(("public_checks.py", "hidden_checks.py"))]
    reference_files = sorted((ROOT / "reference").glob("*/*.py"))
    leaked = [(f.name, line) for f in reference_files for line in solution_lines(f) if line in text]
    assert sum(len(solution_lines(f)) for f in reference_files) > 100  # the scan has something to find
    assert leaked == []


@pytest.fixture(scope="module")
def student_env(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the wheel installed. Its dependencies (torch & co.) come from this
    environment's site-packages through a .pth line: the same packages, without downloading them again."""
    env = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    subprocess.run([str(env / "bin" / "pip"), "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, timeout=120)
    site = next((env / "lib").glob("python3*/site-packages"))
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env


def check_hw1(env: Path, folder: Path) -> subprocess.CompletedProcess:
    """`autograder check hw1 . --ci` as the homework's workflow runs it in GitHub Actions."""
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(folder / "summary.md")}
    return subprocess.run([str(env / "bin" / "autograder"), "check", "hw1", ".", "--ci"], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(folder), **github})


def test_a_copy_of_the_released_homework_checks_itself_with_the_wheel_alone(student_env, tmp_path):
    where = subprocess.run([str(student_env / "bin" / "python"), "-c", "import autograder; print(autograder.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert where.stdout.startswith(str(student_env)), where.stdout  # not this checkout's package
    correct = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "correct" / "hw1")
    for name in HW1_FILES:
        shutil.copy(ROOT / "reference" / "hw1" / name, correct / name)
    buggy = shutil.copytree(correct, tmp_path / "buggy" / "hw1")
    apply(next(v for v in VARIANTS if v.name == "sigmoid_wrong_derivative"), buggy)

    passing = check_hw1(student_env, correct)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "41 of 41 checks passed" in passing.stdout and "::error" not in passing.stdout
    assert (correct / "summary.md").read_text().startswith("## hw1: 8 / 8 points, all public checks pass")
    assert ET.parse(correct / JUNIT_FILE).getroot().find("testsuite").get("failures") == "0"

    failing = check_hw1(student_env, buggy)  # the job fails, with the summary, an annotation and the JUnit file
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "activations.Sigmoid.backward (failed)" in failing.stdout and "40 of 41 checks passed" in failing.stdout
    summary = (buggy / "summary.md").read_text()
    assert summary.startswith("## hw1: 7.875 / 8 points, 1 public check(s) to fix")
    assert "| activations.Sigmoid.backward | public | failed | 0 / 0.125 |" in summary
    assert "### activations.Sigmoid.backward (failed)" in summary
    errors = [line for line in failing.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and errors[0].startswith(
        "::error file=activations.py,title=activations.Sigmoid.backward (failed%2C 0 / 0.125)::")
    suite = ET.parse(buggy / JUNIT_FILE).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("41", "1", "0")
