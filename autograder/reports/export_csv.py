"""The class gradebook as one CSV: a row per student, a column per component of course.toml."""

from __future__ import annotations

import csv
import io

from autograder.engine.course import Course
from autograder.engine.grades import StudentGrades


def class_csv(course: Course, grades: list[StudentGrades]) -> str:
    """student, one column per component, total, grade, and `missing`: the components without a score (counted as 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *(c.id for c in course.components), "total", "grade", "missing"])
    for standing in grades:
        writer.writerow([
            _cell(standing.student),
            *(str(score.points) for score in standing.scores),
            str(standing.total),
            standing.grade,
            " ".join(standing.missing),
        ])
    return out.getvalue()


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; a student id must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
