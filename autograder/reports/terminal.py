"""Tables in the terminal: one result, failures spelled out below it (like pytest); the class gradebook.

Student text is cleaned (safe_text) and handed to rich as Text, never as markup: nothing of it
reaches the terminal as an escape sequence, and "[/]" in a student id is no markup error."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autograder.engine.course import Course
from autograder.engine.grades import ComponentScore, StudentGrades, assigned_ids, percent_text
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports.safe_text import clean, clean_result
from autograder.submission.stubs import Stub, grouped, held_by_stubs

STYLES = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "skipped": "dim"}


def render(result: SubmissionResult, console: Console, stubs: Sequence[Stub] = ()) -> None:
    """The checks as a table, each failure's message in full below it. Given the submission's stubs
    (submission/stubs.py), the checks that only ran into one are left out of both and the stubs
    listed once instead; failures with the same message are shown once, naming the first and counting the others."""
    result = clean_result(result)
    waiting = [check for held in held_by_stubs(result.checks, stubs).values() for check in held]
    waiting_ids = {check.id for check in waiting}
    shown = [c for c in result.checks if c.id not in waiting_ids]
    if shown:
        table = Table(title=Text(f"{result.assignment} — {result.student}"), title_justify="left")
        table.add_column("check")
        table.add_column("visibility")
        table.add_column("status")
        table.add_column("points", justify="right")
        for check in shown:
            table.add_row(
                Text(check.id),
                Text(check.visibility),
                Text(check.status, style=STYLES[check.status]),
                f"{check.score:g} / {check.max_score:g}",
            )
        console.print(table)
    same_message: dict[tuple[str, str], list[CheckResult]] = {}
    for check in shown:
        if check.status != "passed" or check.message:  # a passed check with a message: a model's score
            same_message.setdefault((check.status, check.message), []).append(check)
    for (status, message), checks in same_message.items():
        others = f" and {len(checks) - 1} more check(s) with the same message" if len(checks) > 1 else ""
        console.rule(Text(f"{checks[0].id}{others} ({status})", style=STYLES[status]), align="left")
        console.print(Text(message or "(no message)"))
    if stubs:
        held = f", so {len(waiting)} check(s) worth {sum(c.max_score for c in waiting):g} point(s) score 0" if waiting else ""
        console.print(Text(f"not written yet{held}: these still raise NotImplementedError", style="yellow"))
        listed = Table.grid(padding=(0, 1))
        listed.add_column(no_wrap=True)
        listed.add_column()
        for file, units in grouped(stubs).items():
            listed.add_row(Text(f"  {file}:"), Text(", ".join(units)))
        console.print(listed)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    passed = sum(1 for c in result.checks if c.status == "passed")
    console.print(
        Text(f"{result.score:g} / {result.max_score:g} points; {passed} of {len(result.checks)} checks passed", style="bold")
    )


def render_gradebook(course: Course, grades: list[StudentGrades], console: Console) -> None:
    """The class on the course scale: a row per student, points per component, total and final grade."""
    # A column per component someone could hand in: one not assigned yet would be a column of dashes.
    assigned = assigned_ids(course, grades)
    shown = [i for i, c in enumerate(course.components) if c.id in assigned]
    table = Table(title=f"{course.name}: final grades", title_justify="left")
    table.add_column("student")
    for i in shown:
        table.add_column(f"{course.components[i].id}\n/{course.components[i].points}", justify="right")
    table.add_column(f"total\n/{course.max_points}", justify="right")
    table.add_column("grade", justify="right")
    for standing in grades:
        table.add_row(Text(clean(standing.student, multiline=False)), *(_points_cell(standing.scores[i]) for i in shown),
                      f"{standing.total}", Text(str(standing.grade), style="bold"))
    console.print(table)
    legend = f"grade = total / {course.divisor}, rounded half up; '-' = nothing graded or imported (counts 0)"
    if grades and len(shown) < len(course.components):
        left_out = ", ".join(c.id for i, c in enumerate(course.components) if i not in shown)
        legend += f"; not assigned yet, so left out: {left_out}"
    if any(s.penalized for standing in grades for s in standing.scores):
        legend += "; (-N%) = late penalty, already taken off"
    console.print(Text(legend, style="dim"))


def _points_cell(score: ComponentScore) -> Text | str:
    if score.missing:
        return Text("-", style="dim")
    if score.penalized:
        return Text.assemble(f"{score.points} ", (f"(-{percent_text(score.late.percent)}%)", "yellow"))
    return f"{score.points}"
