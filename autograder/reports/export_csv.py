"""The class gradebook as one CSV: a row per student, a column per component of course.toml, late penalties summed up."""

from __future__ import annotations

import csv
import io

from autograder.engine.course import Course
from autograder.engine.grades import StudentGrades


def class_csv(course: Course, grades: list[StudentGrades]) -> str:
    """student, one column per component (after any late penalty), total, grade, `missing`: the components
    without a score (counted as 0), and `late`: the penalties taken, e.g. "hw1 1 day -10%; hw2 3 days -30%"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *(c.id for c in course.components), "total", "grade", "missing", "late"])
    for standing in grades:
        writer.writerow([
            _cell(standing.student),
            *(str(score.points) for score in standing.scores),
            str(standing.total),
            standing.grade,
            " ".join(standing.missing),
            _cell("; ".join(f"{s.component.id} {s.late.summary}" for s in standing.scores if s.penalized)),
        ])
    return out.getvalue()


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts like a formula; a student id must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
