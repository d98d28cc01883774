"""The class report for instructors: a standalone HTML page with the class's statistics per
component, a histogram of each component's scores, the share of submissions passing each
check, and the distribution of final grades (charts drawn with matplotlib, embedded as PNG)."""

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
from autograder.engine.grades import StudentGrades
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
    if grades and course.components:
        charts[COMPONENT_SCORES] = _png(_component_scores(course, grades))
    for component_id, submissions in page.in_course_order(course, results):
        if any(submission.checks for submission in submissions):
            charts[pass_rates_chart(component_id)] = _png(_pass_rates(component_id, submissions))
    if grades:
        charts[FINAL_GRADES] = _png(_final_grades(course, grades))
    return charts


def class_html(
    course: Course, grades: list[StudentGrades], results: dict[str, list[SubmissionResult]]
) -> str:
    """The class report as a standalone HTML page; results are the graded submissions by component id."""
    charts = chart_pngs(course, grades, results)
    title = f"{course.name}: class report"
    body = [f"<h1>{page.escaped(title)}</h1>", f"<p>Students: {len(grades)}</p>"]
    body += _summary_table(course, grades)
    if not grades:
        body.append("<p>No students have grades yet, so there are no score charts.</p>")
    sections = [(COMPONENT_SCORES, "Scores per component")]
    sections += [
        (pass_rates_chart(component_id), f"Checks passed in {component_id}")
        for component_id, _ in page.in_course_order(course, results)
    ]
    sections.append((FINAL_GRADES, "Final grades"))
    for name, heading in sections:
        if name in charts:
            data = base64.b64encode(charts[name]).decode("ascii")
            body.append(f"<h2>{page.escaped(heading)}</h2>")
            body.append(f'<img alt="{page.escaped(heading)}" src="data:image/png;base64,{data}">')
    return page.document(title, _STYLE, body)


def _summary_table(course: Course, grades: list[StudentGrades]) -> list[str]:
    """Per component: graded, missing, mean and median of the graded; then total and final grade over all."""
    rows = []
    for component in course.components:
        points = _points_of(component, grades)
        graded, missing = str(len(points)), str(len(grades) - len(points))
        label = f"{component.title} ({component.id})"
        rows.append([label, str(component.points), graded, missing, *_mean_median(points, course.decimals)])
    everyone = str(len(grades))
    totals = _mean_median([g.total for g in grades], course.decimals)
    rows.append(["Total", str(course.max_points), everyone, "", *totals])
    final_grades = _mean_median([Decimal(g.grade) for g in grades], 1)
    rows.append(["Final grade", str(course.final_grade(course.max_points)), everyone, "", *final_grades])
    header = ["Component", "Points", "Graded", "Missing", "Mean", "Median"]
    classes = [[None] + ["number"] * (len(header) - 1)] * len(rows)
    return page.table(header, rows, classes) + ["<p>Mean and median are over the graded students; missing ones are left out.</p>"]


def _mean_median(values: list[Decimal], decimals: int) -> list[str]:
    if not values:
        return ["–", "–"]
    step = Decimal(1).scaleb(-decimals)
    return [str(statistic(values).quantize(step, ROUND_HALF_UP)) for statistic in (statistics.mean, statistics.median)]


def _points_of(component: Component, grades: list[StudentGrades]) -> list[Decimal]:
    """The points of the students graded in component."""
    return [s.points for g in grades for s in g.scores if s.component.id == component.id and not s.missing]


def _component_scores(course: Course, grades: list[StudentGrades]) -> Figure:
    """One histogram per component, x from 0 to its points."""
    count = len(course.components)
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(max(WIDTH, 2.7 * columns), 0.6 + 2.4 * rows), dpi=DPI, layout="constrained")
    figure.get_layout_engine().set(wspace=0.06)  # keep one panel's last x label off the next one's first
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for i, (ax, component) in enumerate(zip(axes, course.components)):
        points = [float(p) for p in _points_of(component, grades)]
        top = float(component.points)
        bins = np.linspace(0, top, max(5, min(20, math.ceil(top))) + 1)
        ax.hist(points, bins=bins, color=COLORS["scores"], edgecolor="white")
        ax.set_xlim(0, top)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{component.id}: {len(points)} graded, {len(grades) - len(points)} missing", fontsize=9)
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


def _pass_rates(component_id: str, submissions: list[SubmissionResult]) -> Figure:
    """One horizontal bar per check, in check order: the share of submissions that passed it."""
    passed: dict[str, int] = {}
    graded: Counter[str] = Counter()
    visibility: dict[str, str] = {}
    for submission in submissions:
        for check in submission.checks:
            passed[check.id] = passed.get(check.id, 0) + counts_as_passed(check)
            graded[check.id] += 1
            visibility.setdefault(check.id, check.visibility)
    ids = list(passed)
    rates = [100 * passed[i] / graded[i] for i in ids]
    figure = Figure(figsize=(WIDTH, max(3.0, 1.4 + 0.24 * len(ids))), dpi=DPI, layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(range(len(ids)), rates, color=[COLORS.get(visibility[i], "#888") for i in ids])
    ax.bar_label(bars, labels=[f"{rate:.1f}".removesuffix(".0") + "%" for rate in rates], padding=3, fontsize=8)
    ax.set_yticks(range(len(ids)), ids, fontsize=8)
    ax.set_ylim(len(ids) - 0.5, -0.5)  # the first check on top
    ax.set_xlim(0, 112)  # room for "100%" right of a full bar
    ax.set_xticks(range(0, 101, 20))
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("submissions that passed")
    ax.set_title(f"{component_id}: checks passed ({_many(len(submissions), 'submission')})")
    shown = [v for v in ("public", "hidden") if v in visibility.values()]
    ax.legend(
        handles=[Patch(color=COLORS[v], label=v) for v in shown],
        loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, frameon=False,
    )
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
