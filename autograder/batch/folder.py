"""One student's folder graded as a batch grades each submission: the files taken
by intake (Python files only, a notebook's marked cells as files, no links
followed) and copied to a temporary folder, then graded there. `check`, `grade`
and the notebook's check cell all go through here, so a folder scores what the
same folder in a batch scores."""

from __future__ import annotations

import tempfile
from pathlib import Path

from autograder.batch.intake import Submission, take
from autograder.engine.assignment import Assignment
from autograder.engine.results import SubmissionResult
from autograder.engine.runner import grade
from autograder.submission.stubs import Stub, stubs_of


class NothingToGrade(Exception):
    """None of the assignment's files is in the folder (or in a notebook there)."""

    def __init__(self, submission: Submission):
        super().__init__(submission.broken)
        self.submission = submission


def taken(assignment: Assignment, directory: Path, student: str) -> Submission:
    """What intake takes from directory for the assignment (its files, a notebook's marked cells)."""
    return take(directory, student, assignment.name, assignment.modules)


def not_written(assignment: Assignment, submission: Submission) -> list[Stub]:
    """The functions of the submission's files that still raise NotImplementedError, in the assignment's file order."""
    return stubs_of(submission.files, [f"{module}.py" for module in assignment.modules])


def grade_folder(assignment: Assignment, directory: Path, sandbox, student: str, submission: Submission | None = None,
                 **options) -> SubmissionResult:
    """directory's submission (taken from it unless given) graded in sandbox; options go to engine.runner.grade."""
    submission = submission or taken(assignment, directory, student)
    if submission.broken:
        raise NothingToGrade(submission)
    with tempfile.TemporaryDirectory(prefix="autograder-") as work:
        copy = submission.write(Path(work) / "submission")
        result = grade(assignment, copy, sandbox, student, **options)
    for check in result.checks:  # tracebacks name the copy's files: name the student's own
        check.message = check.message.replace(f"{copy}/", f"{directory}/")
    result.notes = submission.notes
    return result
