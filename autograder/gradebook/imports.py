"""Points graded elsewhere (the exam): a CSV with columns `student,points`."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path

from autograder.engine.course import Component

CSV_CAP = 16 << 20
ERRORS_SHOWN = 20


class PointsFileError(Exception):
    """The CSV cannot be imported; the message lists every problem found, with line numbers."""


def read_points(path: Path, component: Component) -> dict[str, Decimal]:
    """student -> points from path, every row checked against component's maximum; nothing is partly read."""
    try:
        raw = Path(path).read_bytes()[: CSV_CAP + 1]
    except OSError as exc:
        raise PointsFileError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > CSV_CAP:
        raise PointsFileError(f"{path} is over {CSV_CAP >> 20} MiB; a points file has one short line per student")
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's BOM is fine
    except UnicodeDecodeError as exc:
        raise PointsFileError(f"{path} is not UTF-8 text (byte {exc.start}); export it from the spreadsheet as CSV UTF-8") from None
    return parse_points(text, component, str(path))


def parse_points(text: str, component: Component, where: str = "the CSV") -> dict[str, Decimal]:
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    columns = [name.strip().lower() for name in header or []]
    if "student" not in columns or "points" not in columns:
        raise PointsFileError(
            f"{where}: the first line must name the columns student and points (e.g. 'student,points'); it is {','.join(header or []) or 'empty'!r}"
        )
    at_student, at_points = columns.index("student"), columns.index("points")
    points: dict[str, Decimal] = {}
    first_line: dict[str, int] = {}
    problems = []
    for row in rows:
        line = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        student = row[at_student].strip() if at_student < len(row) else ""
        value = row[at_points].strip() if at_points < len(row) else ""
        problem = _problem(student, value, component)
        if problem is None and student in points:
            problem = f"{student} appears twice (first on line {first_line[student]}); keep one line per student"
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        points[student], first_line[student] = Decimal(value), line
    if problems:
        shown = "\n  ".join(problems[:ERRORS_SHOWN])
        more = f"\n  ... and {len(problems) - ERRORS_SHOWN} more" if len(problems) > ERRORS_SHOWN else ""
        raise PointsFileError(f"{where}: nothing was imported; fix these lines:\n  {shown}{more}")
    if not points:
        raise PointsFileError(f"{where} has a header but no students")
    return points


def _problem(student: str, value: str, component: Component) -> str | None:
    if not student:
        return "the student column is empty"
    if any(ord(ch) < 32 for ch in student) or len(student) > 200:
        return f"{student[:40]!r} is not a student id"
    try:
        number = Decimal(value)
    except InvalidOperation:
        hint = " (write decimals with a dot)" if "," in value else ""
        return f"{student}: points {value!r} is not a number{hint}"
    if not number.is_finite() or not 0 <= number <= component.points:
        return f"{student}: points {value} is outside 0 to {component.points}, the maximum of {component.id}"
    return None
