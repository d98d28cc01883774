"""`autograder new <hw>`: a scaffolded homework that `release`, `grade` and `check` accept at once,
in a course folder of its own (the repository's reference/ is never touched)."""

import json
import shutil

import pytest
from click.testing import CliRunner
from sandboxing import CHOSEN, JAIL
from test_cli_startup import autograder_run

from autograder.cli import main

SANDBOX = CHOSEN or JAIL


def autograder(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


@pytest.fixture
def course(tmp_path):
    """A course folder as a new instructor has it: course.toml, nothing under reference/ yet."""
    (tmp_path / "course.toml").write_text('[course]\nname = "A course"\n\n[release]\npackage = "dl-autograder==0.1.0"\n')
    return tmp_path


def test_new_then_release_then_grade_gives_full_points_and_check_on_the_stubs_gives_none(course, tmp_path):
    """Also: the scaffold's checks catch a forbidden API in a solution whose values are right."""
    made = autograder("new", "hw9", "--root", course)
    assert made.exit_code == 0, made.output
    reference = course / "reference" / "hw9"
    assert sorted(p.name for p in reference.iterdir()) == [
        "README.md", "hidden_checks.py", "layers.py", "notebook.py", "public_checks.py"]
    assert "source = \"hw9\"" in made.output  # the course.toml entry still to add

    released = autograder("release", "hw9", "--root", course)
    assert released.exit_code == 0, released.output
    stub = (course / "assignments" / "hw9" / "layers.py").read_text()
    assert "BEGIN SOLUTION" not in stub and "return x @ W + b" not in stub
    assert stub.count("raise NotImplementedError") == 3
    readme = (course / "assignments" / "hw9" / "README.md").read_text()
    assert "<!-- POINTS -->" not in readme and "| **total** | | | **6.5** |" in readme
    assert (course / "assignments" / "hw9" / "hw9.ipynb").is_file()

    graded = autograder("grade", "hw9", reference, "--root", course, "--sandbox", SANDBOX, "--format", "json")
    assert graded.exit_code == 0, graded.output
    result = json.loads(graded.stdout)
    kinds = {(check["visibility"], check["status"]) for check in result["checks"]}
    assert result["score"] == result["max_score"] == 6.5, [c for c in result["checks"] if c["score"] < c["max_score"]]
    assert {("public", "passed"), ("hidden", "passed")} <= kinds

    shortcut = shutil.copytree(reference, tmp_path / "shortcut")  # right values, by a forbidden API
    solution = (shortcut / "layers.py").read_text()
    (shortcut / "layers.py").write_text(solution.replace("1 / (1 + torch.exp(-x))", "torch.sigmoid(x)"))
    caught = json.loads(autograder("grade", "hw9", shortcut, "--root", course, "--sandbox", SANDBOX, "--format", "json").stdout)
    lost = {check["id"] for check in caught["checks"] if check["score"] < check["max_score"]}
    assert lost == {"layers.SiLU.forward", "layers.SiLU.backward", "layers.SiLU.gradient", "layers.SiLU.stable"}, caught
    assert all("torch.sigmoid" in check["message"] for check in caught["checks"] if check["id"] in lost)

    student = shutil.copytree(course / "assignments" / "hw9", tmp_path / "student")
    checked = autograder("check", "hw9", student)
    assert checked.exit_code == 1, checked.output  # public checks failing: the exit code says so
    assert "0 / 3 points; 0 of 3 checks passed" in checked.stdout
    assert "not written yet" in checked.stdout and "layers.py: affine, SiLU (forward, backward)" in checked.stdout


def test_new_refuses_a_bad_name(course):
    refused = autograder("new", "hw 9", "--root", course)
    assert refused.exit_code != 0
    assert "'hw 9' cannot name a homework: use a letter, then letters, digits or '_'" in refused.output
    assert not (course / "reference").exists()


def test_new_never_overwrites_a_homework(course):
    assert autograder("new", "hw9", "--root", course).exit_code == 0
    solution = course / "reference" / "hw9" / "layers.py"
    solution.write_text("# the instructor's own work\n")
    again = autograder("new", "hw9", "--root", course)
    assert again.exit_code != 0 and "already exists: `new` never overwrites a homework" in again.output
    assert solution.read_text() == "# the instructor's own work\n"


def test_new_says_nothing_of_course_toml_when_the_component_is_there(course):
    (course / "course.toml").write_text('[[components]]\nid = "hw9"\npoints = 10\nsource = "hw9"\n')
    made = autograder("new", "hw9", "--root", course)
    assert made.exit_code == 0 and "course.toml" not in made.output, made.output


def test_new_answers_without_loading_torch(course):
    """Writing files needs no grading machinery: `new` answers at once, as --help does."""
    run = autograder_run("new", "hw9", "--root", str(course))
    assert run.returncode == 0, run.stderr
    run.assert_light("autograder new")
