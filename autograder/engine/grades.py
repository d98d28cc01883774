"""A student's standing on the course scale: points per component, total, final grade."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from autograder.engine.course import Component, Course


@dataclass(frozen=True)
class ComponentScore:
    component: Component
    points: Decimal  # on the component's scale; 0 when missing
    missing: bool  # no submission graded, no points imported
    note: str = ""  # e.g. why a submission could not be graded


@dataclass(frozen=True)
class StudentGrades:
    student: str
    scores: tuple[ComponentScore, ...]  # in course.toml's order
    total: Decimal
    grade: int

    @property
    def missing(self) -> list[str]:
        return [s.component.id for s in self.scores if s.missing]


@dataclass(frozen=True)
class Earned:
    """What the gradebook holds for one student and component."""

    raw: Decimal  # an assignment's score, or imported points (already on the component's scale)
    raw_max: Decimal | None  # an assignment's maximum; None for imported points
    note: str = ""


def standing(course: Course, student: str, earned: dict[str, Earned]) -> StudentGrades:
    """student's grades from what they earned, by component id."""
    scores = []
    for component in course.components:
        got = earned.get(component.id)
        if got is None:
            scores.append(ComponentScore(component, Decimal(0), True))
            continue
        if got.raw_max is None:
            points = course.rounded(got.raw)
        else:
            points = course.scaled(got.raw, got.raw_max, component)
        scores.append(ComponentScore(component, points, False, got.note))
    total = sum((s.points for s in scores), Decimal(0))
    return StudentGrades(student, tuple(scores), total, course.final_grade(total))
