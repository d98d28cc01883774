"""The class gradebook as one CSV: a row per student, a column per component of course.toml, late penalties summed up."""

from __future__ import annotations

import csv
import io

from autograder.engine.course import Course
from autograder.engine.grades import StudentGrades
from autograder.reports.safe_text import clean

# What makes a spreadsheet read a cell as a formula (OWASP's tab and carriage return do not survive clean()).
FORMULA_STARTS = ("=", "+", "-", "@")


def class_csv(course: Course, grades: list[StudentGrades]) -> str:
    """student, one column per component (after any late penalty), total, grade, `missing`: the components
    without a score (counted as 0; those not assigned yet are 0 too but not missing), and `late`: the penalties
    taken, e.g. "hw1 1 day -10%; hw2 3 days -30%"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)  # quoted: a ; inside never splits a cell (Excel in locales that split on ;)
    writer.writerow(["student", *(c.id for c in course.components), "total", "grade", "missing", "late"])
    for standing in grades:
        writer.writerow([
            _cell(standing.student),
            *(str(score.points) for score in standing.scores),
            str(standing.total),
            standing.grade,
            _cell(" ".join(standing.missing)),
            _cell("; ".join(f"{s.component.id} {s.late.summary}" for s in standing.scores if s.penalized)),
        ])
    return out.getvalue()


def _cell(text: str) -> str:
    """text as a cell that stays text: cleaned to one line (safe_text), then kept from reading as a formula."""
    text = clean(text, multiline=False)  # first: "\x1b=..." must not turn into "=..." after the check
    return "'" + text if text.startswith(FORMULA_STARTS) else text
