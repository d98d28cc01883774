"""Tables in the terminal: one result, failures spelled out below it (like pytest); the class gradebook.

Student text is cleaned (safe_text) and handed to rich as Text, never as markup: nothing of it
reaches the terminal as an escape sequence, and "[/]" in a student id is no markup error."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autograder.engine.course import Course
from autograder.engine.grades import ComponentScore, StudentGrades, percent_text
from autograder.engine.results import SubmissionResult
from autograder.reports.safe_text import clean, clean_result

STYLES = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "skipped": "dim"}


def render(result: SubmissionResult, console: Console) -> None:
    result = clean_result(result)
    table = Table(title=Text(f"{result.assignment} — {result.student}"), title_justify="left")
    table.add_column("check")
    table.add_column("visibility")
    table.add_column("status")
    table.add_column("points", justify="right")
    for check in result.checks:
        table.add_row(
            Text(check.id),
            Text(check.visibility),
            Text(check.status, style=STYLES[check.status]),
            f"{check.score:g} / {check.max_score:g}",
        )
    console.print(table)
    failures = [c for c in result.checks if c.status != "passed"]
    for check in failures:
        console.rule(Text(f"{check.id} ({check.status})", style=STYLES[check.status]), align="left")
        console.print(Text(check.message or "(no message)"))
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    passed = len(result.checks) - len(failures)
    console.print(
        Text(f"{result.score:g} / {result.max_score:g} points; {passed} of {len(result.checks)} checks passed", style="bold")
    )


def render_gradebook(course: Course, grades: list[StudentGrades], console: Console) -> None:
    """The class on the course scale: a row per student, points per component, total and final grade."""
    table = Table(title=f"{course.name}: final grades", title_justify="left")
    table.add_column("student")
    for component in course.components:
        table.add_column(f"{component.id}\n/{component.points}", justify="right")
    table.add_column(f"total\n/{course.max_points}", justify="right")
    table.add_column("grade", justify="right")
    for standing in grades:
        table.add_row(Text(clean(standing.student, multiline=False)), *map(_points_cell, standing.scores), f"{standing.total}",
                      Text(str(standing.grade), style="bold"))
    console.print(table)
    legend = f"grade = total / {course.divisor}, rounded half up; '-' = nothing graded or imported (counts 0)"
    if any(s.penalized for standing in grades for s in standing.scores):
        legend += "; (-N%) = late penalty, already taken off"
    console.print(Text(legend, style="dim"))


def _points_cell(score: ComponentScore) -> Text | str:
    if score.missing:
        return Text("-", style="dim")
    if score.penalized:
        return Text.assemble(f"{score.points} ", (f"(-{percent_text(score.late.percent)}%)", "yellow"))
    return f"{score.points}"
