"""The class report for instructors: a standalone HTML page with the class's statistics per
component, a histogram of each component's scores, the share of submissions passing each
check, the distribution of final grades (charts drawn with matplotlib, embedded as PNG), and
the students, each linked to their feedback page.

Each chart's legend comes before it (a pass-rate chart has a row per check: 74 for hw1).
Components not assigned yet (grades.py) are said so, not counted as missing, and drawn no
empty histogram. A check skipped for a submission (a .cuda twin on a host without CUDA) did
not run for it: it counts in no pass rate, and one skipped for all is left out of the chart."""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from autograder.engine.course import Component, Course
from autograder.engine.grades import NOT_ASSIGNED, StudentGrades, assigned_ids
from autograder.engine.results import SubmissionResult
from autograder.reports import page
from autograder.reports.gradescope import counts_as_passed

DPI = 100
WIDTH = 8  # inches
COLORS = {"public": "#4878a8", "hidden": "#e08a3c", "scores": "#4878a8", "grades": "#5a9b5a"}

COMPONENT_SCORES = "component_scores.png"
FINAL_GRADES = "final_grades.png"

_STYLE = """
img { max-width: 100%; height: auto; }
.legend { color: #444; }
.swatch { display: inline-block; width: .8em; height: .8em; margin: 0 .25em 0 .5em; vertical-align: baseline; }
.missing { color: #b3261e; } .unassigned { color: #666; font-style: italic; }
"""


def pass_rates_chart(component_id: str) -> str:
    """The name chart_pngs gives the pass-rate chart of component_id's assignment."""
    return f"pass_rates_{component_id}.png"


def chart_pngs(
    course: Course, grades: list[StudentGrades], results: dict[str, list[SubmissionResult]]
) -> dict[str, bytes]:
    """The class report's charts by file name, as PNG: component scores and final grades
    (when there are students), and a pass-rate chart per component whose results have checks."""
    charts = {}
    if grades and assigned_ids(course, grades):
        charts[COMPONENT_SCORES] = _png(_component_scores(course, grades))
    for component_id, submissions in page.in_course_order(course, results):
        if _pass_counts(submissions)[0]:
            charts[pass_rates_chart(component_id)] = _png(_pass_rates(component_id, submissions))
    if grades:
        charts[FINAL_GRADES] = _png(_final_grades(course, grades))
    return charts


def class_html(
    course: Course, grades: list[StudentGrades], results: dict[str, list[SubmissionResult]],
    feedback_links: dict[str, str] | None = None,
) -> str:
    """The class report as a standalone HTML page; results are the graded submissions by component id,
    feedback_links each student's feedback page by student id, relative to this page."""
    charts = chart_pngs(course, grades, results)
    title = f"{course.name}: class report"
    body = [f"<h1>{page.escaped(title)}</h1>"]
    if grades:
        body.append(f'<p>Students: {len(grades)} (<a href="#students">the list</a>, each linked to their feedback)</p>')
    else:
        body.append("<p>Students: 0</p>")
    body += _summary_table(course, grades)
    if not grades:
        body.append("<p>No students have grades yet, so there are no score charts.</p>")
    if COMPONENT_SCORES in charts:
        body += _chart("Scores per component", charts[COMPONENT_SCORES], _unassigned_note(course, grades))
    for component_id, submissions in page.in_course_order(course, results):
        name = pass_rates_chart(component_id)
        if name in charts:
            body += _chart(f"Checks passed in {component_id}", charts[name], _pass_rates_legend(submissions))
    if FINAL_GRADES in charts:
        body += _chart("Final grades", charts[FINAL_GRADES], "")
    if grades:
        body += _student_list(course, grades, feedback_links or {})
    return page.document(title, _STYLE, body)


def _chart(heading: str, png: bytes, legend: str) -> list[str]:
    """A chart's section: heading, legend (HTML, already escaped) first, then the chart."""
    data = base64.b64encode(png).decode("ascii")
    lines = [f"<h2>{page.escaped(heading)}</h2>"]
    if legend:
        lines.append(f'<p class="legend">{legend}</p>')
    return lines + [f'<img alt="{page.escaped(heading)}" src="data:image/png;base64,{data}">']


def _unassigned_note(course: Course, grades: list[StudentGrades]) -> str:
    unassigned = [c.id for c in course.components if c.id not in assigned_ids(course, grades)]
    return f"Not assigned yet, so not drawn: {page.escaped(', '.join(unassigned))}." if unassigned else ""


def _pass_rates_legend(submissions: list[SubmissionResult]) -> str:
    """What a pass-rate chart's bars and colours mean, and which checks it leaves out."""
    ran, skipped_for_all = _pass_counts(submissions)[1:]
    colours = "".join(
        f'<span class="swatch" style="background: {COLORS[v]}"></span>{v}'
        for v in ("public", "hidden") if v in {c.visibility for s in submissions for c in s.checks if c.id in ran}
    )
    legend = f"A bar per check, in check order: the share of the submissions it ran for that passed it.{colours}"
    if skipped_for_all:
        legend += (f"<br>Left out: {_many(len(skipped_for_all), 'check')} skipped for every submission "
                   f"(e.g. .cuda twins on a host without CUDA): {page.escaped(', '.join(skipped_for_all))}.")
    elif any(count < len(submissions) for count in ran.values()):
        legend += "<br>A check skipped for a submission (e.g. a .cuda twin on a host without CUDA) counts only where it ran."
    return legend


def _student_list(course: Course, grades: list[StudentGrades], feedback_links: dict[str, str]) -> list[str]:
    """A row per student: their id (linked to their feedback), points per component assigned, total, final grade."""
    assigned = assigned_ids(course, grades)
    shown = [i for i, c in enumerate(course.components) if c.id in assigned]
    header = ["Student", *(course.components[i].id for i in shown), "Total", "Grade"]
    rows, classes = [], []
    for standing in grades:
        href = feedback_links.get(standing.student)
        scores = [standing.scores[i] for i in shown]
        cells = [page.Link(standing.student, href) if href else standing.student]
        cells += [NOT_ASSIGNED if not s.assigned else "missing" if s.missing else f"{s.points}" for s in scores]
        rows.append(cells + [f"{standing.total:.{course.decimals}f}", str(standing.grade)])
        classes.append([None, *(_STATUS_CLASSES.get(s.status, "number") for s in scores), "number", "number"])
    legend = "Points per component, after any late penalty; missing ones count 0. Each student's id links to their feedback."
    unassigned = [c.id for c in course.components if c.id not in assigned]
    if unassigned:
        legend += f" Not assigned yet, so not shown: {', '.join(unassigned)}."
    return ['<h2 id="students">Students</h2>', f'<p class="legend">{page.escaped(legend)}</p>'] + page.table(header, rows, classes)


_STATUS_CLASSES = {"missing": "missing", NOT_ASSIGNED: "unassigned", "late": "number"}


def _summary_table(course: Course, grades: list[StudentGrades]) -> list[str]:
    """Per component: graded, missing, mean and median of the graded; then total and final grade over all."""
    rows = []
    assigned = assigned_ids(course, grades)
    for component in course.components:
        points = _points_of(component, grades)
        missing = str(sum(component.id in g.missing for g in grades))
        label = f"{component.title} ({component.id})"
        rows.append([label, str(component.points), str(len(points)), missing if component.id in assigned else NOT_ASSIGNED,
                     *_mean_median(points, course.decimals)])
    everyone = str(len(grades))
    totals = _mean_median([g.total for g in grades], course.decimals)
    rows.append(["Total", str(course.max_points), everyone, "", *totals])
    final_grades = _mean_median([Decimal(g.grade) for g in grades], 1)
    rows.append(["Final grade", str(course.final_grade(course.max_points)), everyone, "", *final_grades])
    header = ["Component", "Points", "Graded", "Missing", "Mean", "Median"]
    classes = [[None] + ["number"] * (len(header) - 1)] * len(rows)
    legend = "<p>Mean and median are over the graded students; missing ones are left out.</p>"
    return [legend] + page.table(header, rows, classes)


def _mean_median(values: list[Decimal], decimals: int) -> list[str]:
    if not values:
        return ["–", "–"]
    step = Decimal(1).scaleb(-decimals)
    return [str(statistic(values).quantize(step, ROUND_HALF_UP)) for statistic in (statistics.mean, statistics.median)]


def _points_of(component: Component, grades: list[StudentGrades]) -> list[Decimal]:
    """The points of the students graded in component."""
    return [s.points for g in grades for s in g.scores if s.component.id == component.id and not s.missing]


def _component_scores(course: Course, grades: list[StudentGrades]) -> Figure:
    """One histogram per component assigned, x from 0 to its points."""
    assigned = assigned_ids(course, grades)
    components = [c for c in course.components if c.id in assigned]
    count = len(components)
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(max(WIDTH, 2.7 * columns), 0.6 + 2.4 * rows), dpi=DPI, layout="constrained")
    figure.get_layout_engine().set(wspace=0.06)  # keep one panel's last x label off the next one's first
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for i, (ax, component) in enumerate(zip(axes, components)):
        points = [float(p) for p in _points_of(component, grades)]
        missing = sum(component.id in g.missing for g in grades)
        top = float(component.points)
        bins = np.linspace(0, top, max(5, min(20, math.ceil(top))) + 1)
        ax.hist(points, bins=bins, color=COLORS["scores"], edgecolor="white")
        ax.set_xlim(0, top)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{component.id}: {len(points)} graded, {missing} missing", fontsize=9)
        ax.set_xlabel(f"points (of {component.points})", fontsize=8)
        ax.tick_params(labelsize=8)
        if i % columns == 0:
            ax.set_ylabel("students", fontsize=8)
        if not points:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no scores yet", ha="center", va="center", color="#888", transform=ax.transAxes)
    for ax in axes[count:]:
        ax.set_visible(False)
    figure.suptitle(f"Scores per component ({_many(len(grades), 'student')})")
    return figure


def _pass_counts(submissions: list[SubmissionResult]) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """(passed, ran) per check that ran for any submission, in check order; and the checks skipped for all."""
    passed: dict[str, int] = {}
    ran: Counter[str] = Counter()
    seen: dict[str, None] = {}
    for submission in submissions:
        for check in submission.checks:
            seen.setdefault(check.id)
            if check.status != "skipped":
                passed[check.id] = passed.get(check.id, 0) + counts_as_passed(check)
                ran[check.id] += 1
    ordered = {i: passed[i] for i in seen if i in passed}
    return ordered, dict(ran), [i for i in seen if i not in passed]


def _pass_rates(component_id: str, submissions: list[SubmissionResult]) -> Figure:
    """One horizontal bar per check that ran, in check order: the share of the submissions it ran for that passed it.
    The legend (public and hidden colours) is on top: under a long chart no one would see it."""
    passed, ran, _ = _pass_counts(submissions)
    visibility = {check.id: check.visibility for submission in submissions for check in submission.checks}
    ids = list(passed)
    rates = [100 * passed[i] / ran[i] for i in ids]
    figure = Figure(figsize=(WIDTH, max(3.0, 1.7 + 0.24 * len(ids))), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(range(len(ids)), rates, color=[COLORS.get(visibility[i], "#888") for i in ids])
    ax.bar_label(bars, labels=[f"{rate:.1f}".removesuffix(".0") + "%" for rate in rates], padding=3, fontsize=8)
    ax.set_yticks(range(len(ids)), ids, fontsize=8)
    ax.set_ylim(len(ids) - 0.5, -0.5)  # the first check on top
    ax.set_xlim(0, 112)  # room for "100%" right of a full bar
    ax.set_xticks(range(0, 101, 20))
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("submissions that passed")
    ax.set_title(f"{component_id}: checks passed ({_many(len(submissions), 'submission')})", loc="left")
    shown = [v for v in ("public", "hidden") if v in {visibility[i] for i in ids}]
    ax.legend(handles=[Patch(color=COLORS[v], label=v) for v in shown], loc="lower right", bbox_to_anchor=(1.0, 1.0),
              ncols=len(shown) or 1, fontsize=8, frameon=False, borderaxespad=0.2)  # beside the title
    return figure


def _final_grades(course: Course, grades: list[StudentGrades]) -> Figure:
    """A bar per final grade from 0 to the best one the course scale allows."""
    counts = Counter(g.grade for g in grades)
    top = max(course.final_grade(course.max_points), *counts)
    values = list(range(top + 1))
    figure = Figure(figsize=(WIDTH, 4), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    bars = ax.bar(values, [counts[v] for v in values], color=COLORS["grades"])
    ax.bar_label(bars, labels=[str(counts[v]) if counts[v] else "" for v in values], padding=2, fontsize=8)
    ax.set_xticks(values)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.12)  # room for the counts above the tallest bar
    ax.set_xlabel(f"final grade (total / {course.divisor}, rounded half up)")
    ax.set_ylabel("students")
    mean = statistics.mean(g.grade for g in grades)
    ax.set_title(f"Final grades ({_many(len(grades), 'student')}, mean {mean:.1f})")
    return figure


def _many(count: int, thing: str) -> str:
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"



def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
