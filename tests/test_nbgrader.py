"""`autograder export --format nbgrader`: our gradebook written into an nbgrader
gradebook.db, read back with nbgrader's own API."""

import shutil
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.gradebook.nbgrader_export import export_to_nbgrader
from autograder.gradebook.store import Gradebook

POINTS = {"activations.Sigmoid.forward": 2.0, "activations.Sigmoid.backward": 3.0, "layers.Linear.forward": 1.5}
# The reference changed: backward is worth more, Linear.forward is gone, Linear.backward is new.
NEW_POINTS = {"activations.Sigmoid.forward": 2.0, "activations.Sigmoid.backward": 4.0, "layers.Linear.backward": 2.0}


@pytest.fixture(scope="module")
def nbgrader_api():
    return pytest.importorskip("nbgrader.api", reason="nbgrader is not installed: pip install 'dl-autograder[nbgrader]'")


@pytest.fixture(scope="module")
def empty_gradebook(nbgrader_api, tmp_path_factory):
    """A gradebook the export created, folder and all; made once: nbgrader runs `alembic` (seconds) to create one."""
    path = tmp_path_factory.mktemp("nbgrader") / "course" / "gradebook.db"
    export_to_nbgrader([], path)
    return path


@pytest.fixture
def target(empty_gradebook, tmp_path):
    return shutil.copy(empty_gradebook, tmp_path / "gradebook.db")


def result(assignment: str, student: str, scores: dict[str, float], points=POINTS, submitted_at: str = "") -> SubmissionResult:
    checks = [CheckResult(check, scores[check], max_score, "passed" if scores[check] == max_score else "failed", "", "public")
              for check, max_score in points.items()]
    return SubmissionResult(assignment, student, checks, submitted_at=submitted_at)


def record(db, *results: SubmissionResult) -> None:
    with Gradebook(db) as gradebook:
        for each in results:
            gradebook.record(each, "content", "checks", 0.1)


def export(db, target, assignment=None):
    with Gradebook(db) as gradebook:
        return export_to_nbgrader(gradebook.submissions(assignment), target)


def read_back(api, target, assignment: str) -> dict[str, dict]:
    """Per student: nbgrader's total, max, flags and auto score per grade cell."""
    with api.Gradebook(f"sqlite:///{target}") as nb:
        view = {}
        for submission in nb.assignment_submissions(assignment):
            grades = {grade.name: grade.auto_score for notebook in submission.notebooks for grade in notebook.grades}
            view[submission.student.id] = {"score": submission.score, "max_score": submission.max_score, "grades": grades,
                                           "needs_manual_grade": submission.needs_manual_grade, "timestamp": submission.timestamp}
        return view


def rows(api, target) -> dict[str, int]:
    with api.Gradebook(f"sqlite:///{target}") as nb:
        return {table.__name__: nb.db.query(table).count()
                for table in (api.Student, api.Assignment, api.Notebook, api.GradeCell, api.SubmittedAssignment, api.Grade)}


def test_scores_per_check_land_in_nbgrader(tmp_path, nbgrader_api, target):
    db = tmp_path / "ours.sqlite"
    ours = [
        result("hw1", "alice", POINTS, submitted_at="2026-11-23T09:30:00Z"),
        result("hw1", "bob", {"activations.Sigmoid.forward": 2.0, "activations.Sigmoid.backward": 0.0, "layers.Linear.forward": 0.75}),
        result("hw1", "carol", dict.fromkeys(POINTS, 0.0)),
    ]
    record(db, *ours)
    counts = export(db, target)
    assert (counts.assignments, counts.submissions, counts.grades, counts.manual) == (1, 3, 9, 0)

    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        assert sorted(student.id for student in nb.students) == ["alice", "bob", "carol"]
        notebook = nb.find_notebook("hw1", "hw1")
        assert {cell.name: cell.max_score for cell in notebook.grade_cells} == POINTS
        assert {cell.cell_type for cell in notebook.grade_cells} == {"code"}
        # The formgrader's list of submissions: graded, nothing waiting for a human.
        listed = {row["student"]: row for row in nb.submission_dicts("hw1")}
    view = read_back(nbgrader_api, target, "hw1")
    for mine in ours:
        theirs = view[mine.student]
        assert theirs["grades"] == {check.id: check.score for check in mine.checks}
        assert (theirs["score"], theirs["max_score"]) == (mine.score, mine.max_score)
        assert (listed[mine.student]["score"], listed[mine.student]["max_score"]) == (mine.score, mine.max_score)
        assert not theirs["needs_manual_grade"] and not listed[mine.student]["needs_manual_grade"]
    assert view["alice"]["timestamp"] == datetime(2026, 11, 23, 9, 30)  # nbgrader keeps naive UTC
    assert view["bob"]["timestamp"] is None


def test_rerun_updates_in_place(tmp_path, nbgrader_api, target):
    db = tmp_path / "ours.sqlite"
    record(db, result("hw1", "alice", POINTS), result("hw1", "bob", dict.fromkeys(POINTS, 1.0)))
    export(db, target)
    first = rows(nbgrader_api, target)

    regraded = [result("hw1", "alice", NEW_POINTS, NEW_POINTS),
                result("hw1", "bob", {"activations.Sigmoid.forward": 0.5, "activations.Sigmoid.backward": 4.0,
                                      "layers.Linear.backward": 0.0}, NEW_POINTS)]
    record(db, *regraded)
    export(db, target)
    export(db, target)  # unchanged: nothing moves

    assert rows(nbgrader_api, target) == first  # as many cells and grades as before: one replaced one
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        assert {cell.name: cell.max_score for cell in nb.find_notebook("hw1", "hw1").grade_cells} == NEW_POINTS
    view = read_back(nbgrader_api, target, "hw1")
    for mine in regraded:
        assert view[mine.student]["grades"] == {check.id: check.score for check in mine.checks}
        assert (view[mine.student]["score"], view[mine.student]["max_score"]) == (mine.score, mine.max_score)
        assert not view[mine.student]["needs_manual_grade"]


def test_manual_scores_and_checks_not_graded_follow_nbgrader(tmp_path, nbgrader_api, target):
    db = tmp_path / "ours.sqlite"
    record(db, result("hw1", "alice", POINTS), result("hw1", "bob", POINTS))
    export(db, target)
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:  # a grader overrides one of bob's scores in the formgrader
        grade = nb.find_grade("layers.Linear.forward", "hw1", "hw1", "bob")
        grade.manual_score, grade.needs_manual_grade = 1.0, False
        nb.db.commit()

    # Only alice is regraded after the reference changed; bob's result predates Linear.backward.
    record(db, result("hw1", "alice", NEW_POINTS | {"layers.Linear.forward": 1.5}, POINTS | NEW_POINTS))
    counts = export(db, target)
    assert counts.manual == 1
    view = read_back(nbgrader_api, target, "hw1")
    assert view["bob"]["grades"]["layers.Linear.backward"] is None  # no score from us: a human must grade it
    assert view["bob"]["needs_manual_grade"] and not view["alice"]["needs_manual_grade"]
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        grade = nb.find_grade("layers.Linear.forward", "hw1", "hw1", "bob")
        assert (grade.manual_score, grade.auto_score, grade.score, grade.needs_manual_grade) == (1.0, 1.5, 1.0, False)

    record(db, result("hw1", "bob", {**POINTS, "layers.Linear.forward": 0.0}))  # our score under the manual one changes
    export(db, target)
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        grade = nb.find_grade("layers.Linear.forward", "hw1", "hw1", "bob")
        assert (grade.manual_score, grade.auto_score, grade.needs_manual_grade) == (1.0, 0.0, True)


def test_cli_exports_each_assignment_separately(tmp_path, nbgrader_api, target):
    db = tmp_path / "ours.sqlite"
    hw2_points = {"optim.SGD.step": 5.0}
    record(db, result("hw1", "alice", POINTS), result("hw2", "alice", {"optim.SGD.step": 2.5}, hw2_points),
           result("hw2", "bob", hw2_points, hw2_points))

    run = invoke("export", "--db", str(db), "--format", "nbgrader", "-o", str(target), "--assignment", "hw2")
    assert run.exit_code == 0, run.output
    assert "wrote 2 submission(s) of 1 assignment(s)" in run.output
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        assert [assignment.name for assignment in nb.assignments] == ["hw2"]

    assert invoke("export", "--db", str(db), "--format", "nbgrader", "-o", str(target)).exit_code == 0
    with nbgrader_api.Gradebook(f"sqlite:///{target}") as nb:
        assert sorted(assignment.name for assignment in nb.assignments) == ["hw1", "hw2"]
        assert nb.find_assignment("hw1").max_score == sum(POINTS.values())
        assert nb.find_assignment("hw2").max_score == 5.0
    assert read_back(nbgrader_api, target, "hw2")["alice"]["grades"] == {"optim.SGD.step": 2.5}
    assert read_back(nbgrader_api, target, "hw1")["alice"]["score"] == sum(POINTS.values())
    assert "bob" not in read_back(nbgrader_api, target, "hw1")


def test_cli_refuses_a_file_that_is_no_gradebook(tmp_path, nbgrader_api):
    db, garbage = tmp_path / "ours.sqlite", tmp_path / "gradebook.db"
    record(db, result("hw1", "alice", POINTS))
    garbage.write_text("not a database")
    run = invoke("export", "--db", str(db), "--format", "nbgrader", "-o", str(garbage))
    assert run.exit_code == 1 and "is not a usable nbgrader gradebook" in run.output


def test_cli_without_nbgrader_says_how_to_install_it(tmp_path, monkeypatch):
    db = tmp_path / "ours.sqlite"
    record(db, result("hw1", "alice", POINTS))
    monkeypatch.setitem(sys.modules, "nbgrader", None)  # as if the extra were not installed
    run = invoke("export", "--db", str(db), "--format", "nbgrader", "-o", str(tmp_path / "gradebook.db"))
    assert run.exit_code == 1
    assert "pip install 'dl-autograder[nbgrader]'" in run.output
    assert not (tmp_path / "gradebook.db").exists()


def invoke(*args):
    return CliRunner().invoke(main, list(args))
