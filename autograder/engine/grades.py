"""A student's standing on the course scale: points per component (less any late
penalty, see course.py), total, final grade.

A component whose assignment is not released yet (course.toml lists hw3 before
reference/hw3 exists) is "not assigned yet" where a student has no score for it,
never "missing": no one could have handed it in."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from autograder.engine.course import Component, Course

REFERENCE_DIR = "reference"  # under the course root: an assignment is released once reference/<source> exists
NOT_ASSIGNED = "not assigned yet"


@dataclass(frozen=True)
class Lateness:
    """A graded submission against its component's deadline, under the course's late policy."""

    submitted_at: datetime | None  # None: unknown, counted as on time
    source: str  # how the time is known: "manifest" or "newest file"
    days: int  # started days late; 0 when on time
    percent: Decimal  # of the points lost
    points_before: Decimal  # the scaled points before the penalty

    @property
    def days_text(self) -> str:
        return f"{self.days} day{'' if self.days == 1 else 's'}"

    @property
    def summary(self) -> str:
        """e.g. "1 day -10%"."""
        return f"{self.days_text} -{percent_text(self.percent)}%"


@dataclass(frozen=True)
class ComponentScore:
    component: Component
    points: Decimal  # on the component's scale, after any late penalty; 0 when missing
    missing: bool  # no submission graded, no points imported
    note: str = ""  # e.g. why a submission could not be graded
    late: Lateness | None = None  # None where no deadline applies (no policy, no deadline, imported points)
    assigned: bool = True  # False: missing, but the assignment is not released yet, so no one could hand it in

    @property
    def penalized(self) -> bool:
        return self.late is not None and self.late.days > 0

    @property
    def status(self) -> str:
        """What the reports show beside the points: "not assigned yet", "missing", "late" or ""."""
        return NOT_ASSIGNED if not self.assigned else "missing" if self.missing else "late" if self.penalized else ""


@dataclass(frozen=True)
class StudentGrades:
    student: str
    scores: tuple[ComponentScore, ...]  # in course.toml's order
    total: Decimal
    grade: int

    @property
    def missing(self) -> list[str]:
        """The assigned components without a score (those not assigned yet are not missing)."""
        return [s.component.id for s in self.scores if s.missing and s.assigned]


@dataclass(frozen=True)
class Earned:
    """What the gradebook holds for one student and component."""

    raw: Decimal  # an assignment's score, or imported points (already on the component's scale)
    raw_max: Decimal | None  # an assignment's maximum; None for imported points
    note: str = ""
    submitted_at: str = ""  # as in SubmissionResult: ISO 8601 UTC, "" when unknown
    submitted_at_source: str = ""


def assigned_ids(course: Course, grades: list[StudentGrades]) -> set[str]:
    """The ids of the components the grades hold as assigned to anyone: all of them while there are no grades."""
    if not grades:
        return {c.id for c in course.components}
    return {s.component.id for g in grades for s in g.scores if s.assigned}


def unassigned(course: Course, root: Path) -> frozenset[str]:
    """The ids of course's components whose assignment is not released yet: no reference/<source> under root."""
    return frozenset(c.id for c in course.components if not c.imported and not (Path(root) / REFERENCE_DIR / c.source).is_dir())


def standing(course: Course, student: str, earned: dict[str, Earned], why_missing: dict[str, str] | None = None,
             not_assigned: Collection[str] = ()) -> StudentGrades:
    """student's grades from what they earned, by component id; why_missing: a component's note where nothing was
    earned; not_assigned: the components not released yet (see unassigned()), "not assigned yet" where nothing was earned."""
    scores = []
    for component in course.components:
        got = earned.get(component.id)
        if got is None and component.id in not_assigned:
            scores.append(ComponentScore(component, Decimal(0), True, assigned=False))
        elif got is None:
            scores.append(ComponentScore(component, Decimal(0), True, (why_missing or {}).get(component.id, "")))
        elif got.raw_max is None:
            scores.append(ComponentScore(component, course.rounded(got.raw), False, got.note))
        else:
            points = course.scaled(got.raw, got.raw_max, component)
            late = _lateness(course, component, got, points)
            if late is not None:
                points = course.penalized(points, late.percent)
            scores.append(ComponentScore(component, points, False, got.note, late))
    total = sum((s.points for s in scores), Decimal(0))
    return StudentGrades(student, tuple(scores), total, course.final_grade(total))


def _lateness(course: Course, component: Component, got: Earned, points: Decimal) -> Lateness | None:
    if course.late is None or component.deadline is None:
        return None
    submitted = _submission_time(got.submitted_at)
    if submitted is None:
        return Lateness(None, "", 0, Decimal(0), points)
    days = course.late.days_late(component.deadline, submitted)
    return Lateness(submitted, got.submitted_at_source, days, course.late.percent(days), points)


def _submission_time(text: str) -> datetime | None:
    """An ISO 8601 submission time; one without an offset is UTC (what results hold); None when empty or unreadable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=timezone.utc)


def percent_text(percent: Decimal) -> str:
    """10 for 10 or 10.0, 12.5 for 12.5: no exponent, no trailing zeros."""
    return f"{percent.normalize():f}"
