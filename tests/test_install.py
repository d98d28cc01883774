"""One way to install: the distribution's name and pins agree everywhere we write them, `release`
refuses a course.toml whose [release] package is a placeholder and a homework without a README
template, and the unrelated `autograder` distribution is recognized beside ours. The README's
install steps followed for real: tests/test_wheel.py."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import autograder
from autograder.engine.course import load_course
from autograder.release.install import (
    CPU_WHEELS,
    DISTRIBUTION,
    SUMMARY,
    TORCH,
    TORCH_INSTALL,
    PackageSettingError,
    check_package_setting,
    clashing_distribution,
    with_section,
)
from autograder.release.release import ReleaseError, release
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_name_version_and_pins_agree_everywhere():
    assert (PROJECT["name"], PROJECT["description"]) == (DISTRIBUTION, SUMMARY)
    assert PROJECT["version"] == autograder.__version__
    assert TORCH in PROJECT["dependencies"]
    assert load_course(ROOT).package == f"{DISTRIBUTION}=={autograder.__version__}"  # what the course ships
    makefile = (ROOT / "Makefile").read_text()
    assert f"TORCH_INDEX ?= {CPU_WHEELS}\n" in makefile and f"{TORCH} --index-url $(TORCH_INDEX)" in makefile
    assert f"{DISTRIBUTION}[nbgrader]" in PROJECT["optional-dependencies"]["test"]
    readme = (ROOT / "README.md").read_text()  # the install steps it shows, as release writes them for students
    assert TORCH_INSTALL in readme and f'pip install "{load_course(ROOT).package}"' in readme


@pytest.mark.parametrize("package", [
    "dl-autograder==0.1.0", "DL_Autograder[nbgrader]>=0.1,<0.2",
    "https://github.com/a-course/ag/releases/download/v1/dl_autograder-0.1.0-py3-none-any.whl",
    "dl-autograder @ git+https://github.com/a-course/ag@v1", "git+https://github.com/a-course/ag@v1"])
def test_a_real_package_setting_is_taken(package):
    assert check_package_setting(f" {package} ") == package


@pytest.mark.parametrize("package, problem", [
    ("", "is not set"),
    ("autograder @ git+https://github.com/dl-course/autograder@v0.1.0", "is still a placeholder"),  # course.toml's old value
    ("dl-autograder @ git+https://github.com/<course>/autograder@v1", "is still a placeholder"),
    ("https://example.org/dl_autograder-0.1.0-py3-none-any.whl", "is still a placeholder"),
    ("autograder==0.1.0", "names the distribution 'autograder', not 'dl-autograder' (`autograder` on PyPI is an unrelated project)"),
    ("numpy", "names the distribution 'numpy'"),
])
def test_a_placeholder_package_setting_says_what_to_put_there(package, problem):
    with pytest.raises(PackageSettingError) as refused:
        check_package_setting(package, "my/course.toml")
    message = str(refused.value)
    assert message.startswith("my/course.toml: [release] package") and problem in message, message
    assert '"dl-autograder==0.1.0"' in message and "the URL of a wheel" in message and "git+" in message


def tiny_course(tmp_path: Path, package: str | None) -> Path:
    course = shutil.copytree(TINY, tmp_path / "course")
    text = re.sub(r"\n\[release\]\npackage = .*\n", "\n", (course / "course.toml").read_text())
    if package is not None:
        text += f'\n[release]\npackage = "{package}"\n'
    (course / "course.toml").write_text(text)
    return course


@pytest.mark.parametrize("package", [None, "autograder @ git+https://github.com/dl-course/autograder@v0.1.0"])
def test_release_refuses_a_placeholder_package_and_writes_nothing(tmp_path, package):
    course = tiny_course(tmp_path, package)
    with pytest.raises(ReleaseError, match=r"course\.toml: \[release\] package (is not set|is still a placeholder)"):
        release("tiny", course, sandbox_for_tests())
    assert not (course / "assignments").exists()


def test_release_without_a_readme_template_says_what_to_write(tmp_path):
    course = tiny_course(tmp_path, "dl-autograder==0.1.0")
    (course / "reference" / "tiny" / "README.md").unlink()
    with pytest.raises(ReleaseError) as refused:
        release("tiny", course, sandbox_for_tests())
    assert str(refused.value).startswith(f"{course / 'reference' / 'tiny' / 'README.md'} is missing")
    assert "Write one, even just a heading: # tiny" in str(refused.value)
    assert not (course / "assignments").exists()


def test_the_install_section_goes_after_the_first_headings_text():
    readme = "# hw9: things\n\nWhat to do.\n\n```sh\n# not a heading\n```\n\n## Rules\n\nBe kind.\n"
    assert with_section(readme, "## Install\n\nsteps\n") == (
        "# hw9: things\n\nWhat to do.\n\n```sh\n# not a heading\n```\n\n## Install\n\nsteps\n\n## Rules\n\nBe kind.\n")
    assert with_section("# hw9\n", "## Install\n") == "# hw9\n\n## Install\n"


def fake_distribution(folder: Path, name: str, summary: str) -> None:
    info = folder / f"{name}-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\nSummary: {summary}\n")


def test_the_unrelated_autograder_distribution_is_recognized(tmp_path, monkeypatch):
    assert clashing_distribution() is None  # here: not installed, or this project under its former name
    fake_distribution(tmp_path / "ours", "autograder", SUMMARY)
    monkeypatch.syspath_prepend(str(tmp_path / "ours"))
    assert clashing_distribution() is None
    fake_distribution(tmp_path / "other", "autograder", "Automatic grading of programming assignments")
    monkeypatch.syspath_prepend(str(tmp_path / "other"))
    warning = clashing_distribution()
    assert warning.startswith("warning: this environment also has autograder 9.9, an unrelated project"), warning
    assert "`pip uninstall autograder dl-autograder`" in warning


def test_version_warns_on_stderr_while_the_unrelated_autograder_shares_the_environment(tmp_path):
    fake_distribution(tmp_path, "autograder", "Automatic grading of programming assignments")
    # Run from tmp_path, its metadata first: the checkout holds this project's own egg-info (named autograder).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    version = [sys.executable, "-m", "autograder", "--version"]
    run = subprocess.run(version, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 0 and run.stdout == f"autograder, version {autograder.__version__}\n"
    assert run.stderr.startswith("warning: this environment also has autograder 9.9, an unrelated project"), run.stderr
    alone = subprocess.run(version, capture_output=True, text=True, timeout=60)
    assert "unrelated" not in alone.stderr
