"""What students install: the built wheel holds no reference solution, and with it alone a copy of
assignments/hw1 checks itself (no reference/ anywhere, a fresh virtualenv), installed as its README's
Install section says and checked as it says, then as the homework's GitHub Actions workflow runs it
(`check --ci`)."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

import autograder
from autograder.engine.course import load_course
from autograder.release.gradescope_package import build_wheel, project_metadata
from autograder.release.install import install_commands
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


def install_section(readme: str) -> tuple[str, str]:
    """The code blocks of a README's "## Install" section: what installs, and what checks it worked."""
    section = re.search(r"^## Install\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert section, "the README has no '## Install' section"
    install, check = re.findall(r"^```sh\n(.*?)^```", section[1], re.M | re.S)
    return install, check


class FollowedReadme:
    """A copy of assignments/hw1 alone, and the virtualenv its README's install commands made."""

    def __init__(self, folder: Path, home: Path, check: str):
        self.folder, self.home, self.check = folder, home, check
        self.env = next(home.rglob("pyvenv.cfg")).parent

    def run(self, script: str, folder: Path | None = None) -> subprocess.CompletedProcess:
        """script run by bash from folder (the copy by default), as a student with the venv activated."""
        return subprocess.run(["bash", "-euc", f". {self.env}/bin/activate\n{script}"], cwd=folder or self.folder,
                              capture_output=True, text=True, timeout=300, env=student_environment(self.home))


def student_environment(home: Path) -> dict:
    """No autograder on PATH, a python3 of this Python's version (the .pth below needs the same one)."""
    python = home.parent / "python"
    python.mkdir(exist_ok=True)
    if not (python / "python3").exists():
        (python / "python3").symlink_to(sys.executable)
    return {"PATH": f"{python}:/usr/bin:/bin", "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8")}


@pytest.fixture(scope="module")
def followed_readme(wheel, tmp_path_factory) -> FollowedReadme:
    """The released README's install commands, run from a copy of assignments/hw1 alone with a home of
    its own, as written but for the two that download: torch's CPU index cannot be reached here (torch
    and the other dependencies come from this environment's site-packages through a .pth line instead,
    the same packages without downloading them again), and the course's package is not published here
    (the wheel built from this checkout stands for it)."""
    work = tmp_path_factory.mktemp("student")
    folder = shutil.copytree(ROOT / "assignments" / "hw1", work / "hw1")
    home = work / "home"
    home.mkdir()
    install, check = install_section((folder / "README.md").read_text())
    torch_line, package_line = install_commands(load_course(ROOT).package)
    lines = install.splitlines()
    assert torch_line in lines and package_line in lines, f"the README's install commands:\n{install}"
    dependencies = sysconfig.get_paths()["purelib"]
    site_packages = """$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"""  # the new venv's
    substitutes = {
        torch_line: f'echo {dependencies} > "{site_packages}/zz_dependencies.pth"',
        # --no-deps: they are met through the .pth, but pip would hold torch to the venv's own older setuptools
        package_line: f"pip install --quiet --no-index --no-deps {wheel}",
    }
    script = "\n".join(substitutes.get(line, line) for line in lines)
    installed = subprocess.run(["bash", "-euc", script], cwd=folder, capture_output=True, text=True, timeout=300,
                               env=student_environment(home))
    assert installed.returncode == 0, f"{script}\n{installed.stdout}{installed.stderr}"
    return FollowedReadme(folder, home, check)


# A fresh virtualenv, the wheel installed, the public checks run twice: about 25 s, so in make test-slow.
@pytest.mark.slow
def test_the_readme_install_and_check_steps_work_from_the_released_folder_alone(followed_readme, tmp_path):
    where = followed_readme.run("python -c 'import autograder; print(autograder.__file__)'", tmp_path)
    assert where.stdout.startswith(str(followed_readme.env)), where.stdout + where.stderr  # not this checkout's package

    stubs = followed_readme.run(followed_readme.check)  # the files as handed out: nothing written yet
    assert stubs.returncode == 1, stubs.stdout + stubs.stderr
    assert f"autograder, version {autograder.__version__}\n" in stubs.stdout
    assert "0 of 41 checks passed" in stubs.stdout

    solved = shutil.copytree(followed_readme.folder, tmp_path / "hw1")
    for name in HW1_FILES:
        shutil.copy(ROOT / "reference" / "hw1" / name, solved / name)
    passing = followed_readme.run(followed_readme.check, solved)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "41 of 41 checks passed" in passing.stdout


@pytest.fixture(scope="module")
def student_env(followed_readme) -> Path:
    return followed_readme.env


def check_hw1(env: Path, folder: Path) -> subprocess.CompletedProcess:
    """`autograder check hw1 . --ci` as the homework's workflow runs it in GitHub Actions."""
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(folder / "summary.md")}
    return subprocess.run([str(env / "bin" / "autograder"), "check", "hw1", ".", "--ci"], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(folder), **github})


# In the virtualenv the README's steps made (with them, about 40 s): make test-slow.
@pytest.mark.slow
def test_a_copy_of_the_released_homework_checks_itself_in_ci_with_the_wheel_alone(student_env, tmp_path):
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
