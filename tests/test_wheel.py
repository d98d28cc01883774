"""What students install: the built wheel holds no reference solution, and with it alone
a copy of assignments/hw1 checks itself (no reference/ anywhere, a fresh virtualenv)."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from autograder.release.gradescope_package import _project, build_wheel
from autograder.release.release import BEGIN, END
from hw1_variants import VARIANTS
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(_project(ROOT / "pyproject.toml"), tmp_path_factory.mktemp("wheel"))


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
    return subprocess.run([str(env / "bin" / "autograder"), "check", "hw1", "."], cwd=folder, capture_output=True,
                          text=True, timeout=300, env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(folder)})


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
    assert "41 of 41 checks passed" in passing.stdout
    failing = check_hw1(student_env, buggy)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "activations.Sigmoid.backward (failed)" in failing.stdout and "40 of 41 checks passed" in failing.stdout
