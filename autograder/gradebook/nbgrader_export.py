"""Our scores in an nbgrader course's gradebook, for its formgrader and `nbgrader export`.

Both directions exist: the batch reads nbgrader's exchange layout
(`submitted/<student>/<hw>/`, autograder/batch/intake.py), and this module writes
the grades back into nbgrader's gradebook.db, through nbgrader's own API
(nbgrader.api.Gradebook), never its tables directly. nbgrader is an optional
extra, imported only here and only when exporting.

The mapping:
    assignment `hw1`      ->  nbgrader assignment `hw1`, holding one notebook `hw1`
    check `activations.Sigmoid.forward`, worth p points
                          ->  an autograded code grade cell of that notebook, same name, max_score p
    student id            ->  nbgrader student, same id
    graded submission     ->  SubmittedAssignment with one Grade per check, auto_score = the check's score

One grade cell per check, not one per file or per assignment: the formgrader then
shows which unit lost the points (Sigmoid's backward, not "activations.py"), its
failed-tests marks fall on exactly those cells, and nbgrader's sums of the cells
give the submission's score and max_score, equal to ours.

Rerunning updates in place: students, assignment, notebook, cells and grades are
found by name and overwritten, never added twice. A cell's max_score follows the
newest grading (the reference's points may have changed); the cells of checks
that no submission has any more are removed with their grades, so that nbgrader's
max_score stays ours. The results given for an assignment must therefore be all
of its submissions, as `autograder export --format nbgrader` gives them.

nbgrader's semantics kept:
- A Grade needs manual grading unless told otherwise (the column defaults to
  True), and the formgrader marks such submissions as waiting for a grader: each
  grade we set says it does not. A check missing from a student's result (graded
  before the check existed) keeps auto_score None and needs manual grading, which
  is nbgrader's own meaning of "the autograder gave no score".
- A manual score entered in the formgrader takes precedence over auto_score
  (nbgrader's Grade.score). It is kept, and flagged for review again when our
  score under it changed (`nbgrader autograde` flags it on every rerun; here a
  review once done stays done until our score moves).
- A SubmittedAssignment exists without a timestamp (`nbgrader autograde` leaves
  it None when there is no timestamp.txt), but the formgrader lists only those
  with grades (its query joins through Grade): each gets one per cell. Its
  timestamp here is the result's submitted_at, None when unknown. The
  formgrader's submission pages also look
  at the course directory: a submission shows as autograded there only when
  `autograded/<student>/<hw>/` exists and its timestamp equals
  `submitted/<student>/<hw>/timestamp.txt`. Those files are nbgrader's, not
  written here; the Students page and `nbgrader export` read the database alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sysconfig
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from autograder.engine.results import SubmissionResult
from autograder.gradebook.store import Stored


class NbgraderExportError(Exception):
    """nbgrader is not installed, or the target is not a usable nbgrader gradebook."""


@dataclass(frozen=True)
class ExportCounts:
    assignments: int
    submissions: int
    grades: int  # grades holding one of our scores
    manual: int  # of those, grades where a manual score from the formgrader takes precedence


def export_to_nbgrader(stored: Iterable[Stored], gradebook: Path | str) -> ExportCounts:
    """Write stored results into an nbgrader gradebook: a gradebook.db path (created when absent) or a database URL."""
    api = _nbgrader_api()
    from sqlalchemy.exc import SAWarning, SQLAlchemyError  # nbgrader's own dependency

    by_assignment: dict[str, list[SubmissionResult]] = {}
    for entry in sorted(stored, key=lambda s: s.graded_at):  # oldest first: the newest grading sets a check's points
        by_assignment.setdefault(entry.result.assignment, []).append(entry.result)
    grades = manual = 0
    try:
        with warnings.catch_warnings(), _alembic_on_path(), api.Gradebook(_db_url(gradebook)) as nb:
            # nbgrader's add_submission builds rows while SQLAlchemy 2 autoflushes; it says so, harmlessly, each time.
            warnings.filterwarnings("ignore", "Object of type .* not in session", SAWarning)
            for assignment, results in by_assignment.items():
                scored, kept = _export_assignment(api, nb, assignment, results)
                grades, manual = grades + scored, manual + kept
    except (api.InvalidEntry, SQLAlchemyError) as exc:
        raise NbgraderExportError(f"{gradebook} is not a usable nbgrader gradebook: {exc}") from None
    except (OSError, subprocess.CalledProcessError) as exc:  # making the folder, or running `alembic`
        raise NbgraderExportError(f"nbgrader could not create {gradebook}: {exc}") from None
    return ExportCounts(len(by_assignment), sum(map(len, by_assignment.values())), grades, manual)


def _export_assignment(api, nb, assignment: str, results: list[SubmissionResult]) -> tuple[int, int]:
    """(grades set, grades under a manual score) for results, all the submissions of assignment."""
    nb.update_or_create_assignment(assignment)
    notebook = nb.update_or_create_notebook(assignment, assignment)
    points = {check.id: check.max_score for result in results for check in result.checks}  # the last (newest) wins
    _remove_cells(nb, [cell for cell in notebook.grade_cells if cell.name not in points])
    cells = {check: nb.update_or_create_grade_cell(check, assignment, assignment, max_score=max_score, cell_type="code")
             for check, max_score in points.items()}
    scored = kept = 0
    for result in results:
        nb.update_or_create_student(result.student)
        submission = nb.update_or_create_submission(assignment, result.student, timestamp=result.submitted_at or None)
        # add_submission mirrors only the cells that existed then: a submission from an earlier export lacks newer ones.
        submitted = next((s for s in submission.notebooks if s.notebook_id == notebook.id), None) \
            or _added(nb, api.SubmittedNotebook(notebook=notebook, assignment=submission))
        grades = {grade.cell_id: grade for grade in submitted.grades}
        scores = {check.id: check.score for check in result.checks}
        for check, cell in cells.items():
            grade = grades.get(cell.id) or _added(nb, api.Grade(cell=cell, notebook=submitted))
            score = scores.get(check)
            if grade.manual_score is None:
                grade.needs_manual_grade = score is None
            elif grade.auto_score != score:
                grade.needs_manual_grade = True  # a grader's score over one of ours that has changed: to review
            grade.auto_score = score
            scored += score is not None
            kept += score is not None and grade.manual_score is not None
        nb.db.commit()
    return scored, kept


def _added(nb, row):
    nb.db.add(row)  # a new row joins the session only when added: SQLAlchemy 2 does not cascade along backrefs
    return row


def _remove_cells(nb, cells) -> None:
    """Remove grade cells of checks that are gone, and every student's grade on them."""
    for cell in cells:
        for grade in cell.grades:
            nb.db.delete(grade)
        nb.db.delete(cell)
    nb.db.commit()


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader stamps a new gradebook by running the `alembic` command, found on PATH: where PATH lacks it
    (a virtualenv used without activating it), the one installed beside this Python will do."""
    saved = os.environ.get("PATH")
    if shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join(filter(None, [saved, sysconfig.get_path("scripts")]))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = saved


def _db_url(gradebook: Path | str) -> str:
    if "://" in str(gradebook):
        return str(gradebook)
    path = Path(gradebook).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _nbgrader_api():
    try:
        from nbgrader import api
    except ImportError as exc:
        raise NbgraderExportError(f"exporting to nbgrader needs the nbgrader package ({exc}): "
                                  "pip install 'dl-autograder[nbgrader]'") from None
    return api
