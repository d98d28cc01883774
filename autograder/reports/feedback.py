"""A student's feedback as Markdown or a standalone HTML page: their standing on the
course scale (with when each submission came and any late penalty), then per assignment
the checks and what went wrong in the public ones.

Messages come from student code and are treated as hostile: cleaned (safe_text), then
escaped in HTML, fenced in Markdown. Hidden checks show their id, status and points only,
never a message."""

from __future__ import annotations

import html as html_escaping
import re
from collections.abc import Sequence
from datetime import timezone

from autograder.engine.course import Course
from autograder.engine.grades import NOT_ASSIGNED, ComponentScore, StudentGrades, percent_text
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports import page
from autograder.reports.gradescope import counts_as_passed
from autograder.reports.safe_text import clean, clean_result
from autograder.submission.stubs import Stub, grouped, held_by_stubs

EXPLAINED = ("failed", "error", "timeout")  # the statuses whose public messages are shown
NOT_PASSED_NAMED = 10  # the checks not passed named above an assignment's table (hw1 has 74 checks)
COMPONENT_COLUMNS = ["Component", "Points", "Status", "Note"]
CHECK_COLUMNS = ["Check", "Visibility", "Status", "Points"]
TIME_SOURCES = {"manifest": " (from the manifest)", "newest file": " (from the newest file's time)"}
STATUS_CLASSES = {"missing": "missing", "late": "late", NOT_ASSIGNED: "unassigned"}  # a component's status: its CSS class
# Markdown's inline syntax (code, emphasis, links, strikethrough, cells, GitHub's math), shown as
# written; an underscore inside a word (threshold_neuron) is no emphasis and stays as it is.
_MARKDOWN_INLINE = re.compile(r"[\\`*\[\]~|$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What makes a list item a heading or a list of its own at its start: "- # x", "- - x", "- 1. x".
_MARKDOWN_BLOCK_START = re.compile(r"[#+-]|\d+[.)]")

_STYLE = """
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
.passed { color: #17702b; } .failed, .error { color: #b3261e; } .timeout { color: #9a6700; } .skipped { color: #666; }
.missing { color: #b3261e; font-weight: bold; } .late { color: #9a6700; } .unassigned { color: #666; font-style: italic; }
"""


def markdown(course: Course, grades: StudentGrades, results: dict[str, SubmissionResult]) -> str:
    """The feedback as Markdown; results are the student's graded submissions by component id."""
    lines = [f"# {md_inline(course.name)}: {md_inline(grades.student)}", ""]
    lines += _md_table(COMPONENT_COLUMNS, _component_rows(course, grades))
    lines += [
        "",
        f"**Total:** {_points(grades.total, course)} / {course.max_points}  ",
        f"**Final grade:** {grades.grade}",
    ]
    for component_id, result in page.in_course_order(course, results):
        lines += ["", f"## {md_inline(_assignment_title(course, component_id, result))}", ""]
        lines += [md_inline(_checks_summary(result)), ""]
        lines += result_markdown(result)
    return "\n".join(lines) + "\n"


def result_markdown(result: SubmissionResult, stubs: Sequence[Stub] = ()) -> list[str]:
    """One graded submission: its checks' table, why each public check failed, the notes. Given the
    submission's stubs (submission/stubs.py), a check that only ran into one is not explained: the
    stubs are listed once instead."""
    result = clean_result(result)
    lines = _md_table(CHECK_COLUMNS, _check_rows(result))
    waiting_ids = {check.id for held in held_by_stubs(result.checks, stubs).values() for check in held}
    for check in _explained(result):
        if check.id in waiting_ids:
            continue
        message = check.message
        fence = "`" * max(3, _longest_backtick_run(message) + 1)
        lines += ["", f"### {md_inline(check.id)} ({check.status})", "", fence, message, fence]
    if stubs:
        lines += ["", "Not written yet (these still raise NotImplementedError):", ""]
        lines += [f"- {md_inline(file)}: {md_inline(', '.join(units))}" for file, units in grouped(stubs).items()]
    if result.notes:
        lines += ["", "Notes:", ""] + [f"- {_md_item(note)}" for note in result.notes]
    return lines


def html(course: Course, grades: StudentGrades, results: dict[str, SubmissionResult]) -> str:
    """The feedback as a standalone HTML page, with the same content as markdown()."""
    title = f"{course.name}: {grades.student}"
    body = [f"<h1>{page.escaped(title)}</h1>"]
    component_rows = _component_rows(course, grades)
    classes = [[None, "number", STATUS_CLASSES.get(score.status), None] for score in grades.scores]
    body += page.table(COMPONENT_COLUMNS, component_rows, classes)
    body += [
        f"<p><strong>Total:</strong> {_points(grades.total, course)} / {course.max_points}<br>",
        f"<strong>Final grade:</strong> {grades.grade}</p>",
    ]
    for component_id, result in page.in_course_order(course, results):
        body.append(f"<h2>{page.escaped(_assignment_title(course, component_id, result))}</h2>")
        body.append(f"<p>{page.escaped(_checks_summary(result))}</p>")
        classes = [[None, None, check.status, "number"] for check in result.checks]
        body += page.table(CHECK_COLUMNS, _check_rows(result), classes)
        for check in _explained(result):
            body.append(f'<h3>{page.escaped(check.id)} (<span class="{check.status}">{check.status}</span>)</h3>')
            body.append(f"<pre>{page.escaped(check.message)}</pre>")
        if result.notes:
            body.append("<p>Notes:</p><ul>" + "".join(f"<li>{page.escaped(note)}</li>" for note in result.notes) + "</ul>")
    return page.document(title, _STYLE, body)


def _component_rows(course: Course, grades: StudentGrades) -> list[list[str]]:
    return [
        [
            f"{score.component.title} ({score.component.id})",
            f"{'–' if not score.assigned else _points(score.points, course)} / {score.component.points}",
            score.status,
            "; ".join(note for note in (_lateness(score, course), score.note) if note),
        ]
        for score in grades.scores
    ]


def _lateness(score: ComponentScore, course: Course) -> str:
    """When the submission came against its deadline, and what that cost; "" where no deadline applies."""
    late = score.late
    if late is None:
        return ""
    if late.submitted_at is None:
        return "submission time unknown: counted as on time"
    when = f"submitted {late.submitted_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC{TIME_SOURCES.get(late.source, '')}"
    if not late.days:
        return f"{when}, on time"
    cost = f"-{percent_text(late.percent)}% ({_points(late.points_before, course)} -> {_points(score.points, course)})"
    return f"{when}, {late.days_text} late: {cost}"


def _check_rows(result: SubmissionResult) -> list[list[str]]:
    return [[c.id, c.visibility, c.status, f"{c.score:g} / {c.max_score:g}"] for c in result.checks]


def _checks_summary(result: SubmissionResult) -> str:
    """e.g. "72 of 74 checks passed; not passed: a.b (failed), c.d (timeout)": what to look for in a long table."""
    not_passed = [c for c in result.checks if not counts_as_passed(c)]
    text = f"{len(result.checks) - len(not_passed)} of {len(result.checks)} checks passed"
    if not not_passed:
        return text
    named = ", ".join(f"{c.id} ({c.status})" for c in not_passed[:NOT_PASSED_NAMED])
    more = len(not_passed) - NOT_PASSED_NAMED
    return f"{text}; not passed: {named}" + (f" and {more} more (see the table)" if more > 0 else "")


def _explained(result: SubmissionResult) -> list[CheckResult]:
    """The public checks that did not pass, whose messages say why."""
    return [c for c in result.checks if c.visibility == "public" and c.status in EXPLAINED]


def _assignment_title(course: Course, component_id: str, result: SubmissionResult) -> str:
    component = next((c for c in course.components if c.id == component_id), None)
    name = f"{component_id}: {component.title}" if component else component_id
    return f"{name} (checks: {result.score:g} / {result.max_score:g} points)"


def _points(points, course: Course) -> str:
    return f"{points:.{course.decimals}f}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def md_inline(text: str) -> str:
    """text for Markdown prose or a table cell, shown as written: no HTML, no markup, on one line."""
    one_line = " ".join(clean(text, multiline=False).split())
    return _MARKDOWN_INLINE.sub(lambda m: "\\" + m[0], html_escaping.escape(one_line, quote=False))


def _md_item(text: str) -> str:
    """text for a Markdown list item: as _md, and nothing at its start that opens a heading or a list."""
    item = md_inline(text)
    start = _MARKDOWN_BLOCK_START.match(item)
    if start:  # escaped: the marker's last character ("#", "-", "+", the "." of "1.")
        item = item[: start.end() - 1] + "\\" + item[start.end() - 1 :]
    return item


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_inline(cell) for cell in row) + " |" for row in rows]
    return lines
