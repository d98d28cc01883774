"""`course.toml`: the course's components on its point scale, the final-grade
rule, and the settings grading follows.

    [course]
    name = "Introduction to Deep Learning"
    total = 115                  # optional: the components must add up to this

    [[components]]
    id = "hw1"                   # how the gradebook, imports and exports name it
    title = "Neurons, activations, backprop, optimizers"
    points = 15                  # its share of the scale
    source = "hw1"               # an assignment under reference/, or "import" (the exam)

    [grade]
    divisor = 10                 # final grade = total / divisor, rounded half up
    decimals = 2                 # component points are kept to this many decimals

    [grading]
    cuda_absent = "cpu"          # what a CUDA check scores on a host without a CUDA device

Arithmetic is exact (Decimal): an assignment's raw score is scaled to its
component's points and rounded half up to `decimals`; the total is the sum of
those shown points; the final grade is total / divisor rounded half up, so 85
gives 9 and 84.99 gives 8 (Python's round() would give 8 for 8.5).

A CUDA check (`<id>.cuda`, the twin of the CPU check `<id>`) is skipped where
the grading host has no CUDA device; `cuda_absent` says what it scores then:
"cpu", what its CPU twin scored (a host without a GPU grades the same code the
same way, on CPU); "zero", nothing; "exclude", left out of the maximum as well.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

COURSE_FILE = "course.toml"
CUDA_ABSENT = ("cpu", "zero", "exclude")
IMPORT = "import"
COMPONENT_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


class CourseError(Exception):
    """course.toml is unreadable or says something this version does not understand."""


@dataclass(frozen=True)
class Component:
    id: str
    title: str
    points: Decimal
    source: str  # an assignment id, or IMPORT

    @property
    def imported(self) -> bool:
        return self.source == IMPORT


@dataclass(frozen=True)
class Course:
    cuda_absent: str = "cpu"
    name: str = "course"
    components: tuple[Component, ...] = ()
    divisor: Decimal = Decimal(10)
    decimals: int = 2

    @property
    def max_points(self) -> Decimal:
        return sum((c.points for c in self.components), Decimal(0))

    def component(self, component_id: str) -> Component:
        for component in self.components:
            if component.id == component_id:
                return component
        known = ", ".join(c.id for c in self.components) or "none"
        raise CourseError(f"course.toml has no component {component_id!r}; its components: {known}")

    def component_of(self, assignment: str) -> Component | None:
        """The component an assignment's scores count towards."""
        return next((c for c in self.components if c.source == assignment), None)

    def scaled(self, raw: Decimal | float, raw_max: Decimal | float, component: Component) -> Decimal:
        """raw out of raw_max, on component's scale, rounded half up to the course's decimals."""
        raw, raw_max = exact(raw), exact(raw_max)
        if raw_max <= 0:
            return Decimal(0)
        return self.rounded(raw * component.points / raw_max)

    def rounded(self, points: Decimal) -> Decimal:
        return points.quantize(Decimal(1).scaleb(-self.decimals), rounding=ROUND_HALF_UP)

    def final_grade(self, total: Decimal) -> int:
        """total / divisor, rounded half up: 65 -> 7, 84.9 -> 8, 85 -> 9."""
        return int((exact(total) / self.divisor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def exact(value) -> Decimal:
    """A number as the Decimal it was written as (a float's shortest repr, not its binary expansion)."""
    return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))


def load_course(root: Path) -> Course:
    """The course in root/course.toml; the defaults (no components) when there is no such file."""
    path = Path(root) / COURSE_FILE
    if not path.is_file():
        return Course()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CourseError(f"{path} is not valid TOML: {exc}") from None
    return parse_course(data, str(path))


def parse_course(data: dict, where: str = COURSE_FILE) -> Course:
    _known(data, {"course", "components", "grade", "grading"}, where, "the top level")
    course = _table(data, "course", where)
    _known(course, {"name", "total"}, where, "[course]")
    grade = _table(data, "grade", where)
    _known(grade, {"divisor", "decimals"}, where, "[grade]")
    grading = _table(data, "grading", where)
    _known(grading, {"cuda_absent"}, where, "[grading]")

    name = course.get("name", Course.name)
    if not isinstance(name, str) or not name.strip():
        raise CourseError(f"{where}: [course] name must be a non-empty string")
    divisor = _number(grade.get("divisor", 10), f"{where}: [grade] divisor")
    if divisor <= 0:
        raise CourseError(f"{where}: [grade] divisor must be positive, not {divisor}")
    decimals = grade.get("decimals", Course.decimals)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 6:
        raise CourseError(f"{where}: [grade] decimals must be a whole number from 0 to 6, not {decimals!r}")
    cuda_absent = grading.get("cuda_absent", Course.cuda_absent)
    if cuda_absent not in CUDA_ABSENT:
        choices = ", ".join(f'"{c}"' for c in CUDA_ABSENT)
        raise CourseError(f"{where}: [grading] cuda_absent = {cuda_absent!r}; it must be one of {choices}")

    components = tuple(_component(entry, i, where) for i, entry in enumerate(_list(data, "components", where)))
    for attribute in ("id", "source"):
        values = [getattr(c, attribute) for c in components if not (attribute == "source" and c.imported)]
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise CourseError(f"{where}: two components have the same {attribute}: {', '.join(repeated)}")
    result = Course(cuda_absent, name.strip(), components, divisor, decimals)
    if "total" in course:
        total = _number(course["total"], f"{where}: [course] total")
        if total != result.max_points:
            listed = " + ".join(f"{c.id} {c.points}" for c in components) or "no components"
            raise CourseError(f"{where}: [course] total = {total}, but the components add up to {result.max_points} ({listed})")
    return result


def _component(entry, index: int, where: str) -> Component:
    label = f"{where}: [[components]] number {index + 1}"
    if not isinstance(entry, dict):
        raise CourseError(f"{label} must be a table with id, title, points and source")
    missing = [key for key in ("id", "points", "source") if key not in entry]
    if missing:
        raise CourseError(f"{label} lacks {', '.join(missing)} (each component needs id, points and source)")
    _known(entry, {"id", "title", "points", "source"}, where, label.split(": ", 1)[1])
    component_id, source = entry["id"], entry["source"]
    if not isinstance(component_id, str) or not COMPONENT_ID.fullmatch(component_id):
        raise CourseError(f"{label}: id {component_id!r} must be a letter then letters, digits, '_' or '-' (at most 32)")
    if not isinstance(source, str) or not (source == IMPORT or COMPONENT_ID.fullmatch(source)):
        raise CourseError(f'{label} ({component_id}): source must be an assignment id (e.g. "hw1") or "{IMPORT}", not {source!r}')
    points = _number(entry["points"], f"{label} ({component_id}): points")
    if points <= 0:
        raise CourseError(f"{label} ({component_id}): points must be positive, not {points}")
    title = entry.get("title", component_id)
    if not isinstance(title, str):
        raise CourseError(f"{label} ({component_id}): title must be a string")
    return Component(component_id, title, points, source)


def _number(value, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CourseError(f"{what} must be a number, not {value!r}")
    number = exact(value)
    if not number.is_finite():
        raise CourseError(f"{what} must be a finite number, not {value!r}")
    return number


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CourseError(f"{where}: [{key}] must be a table")
    return value


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise CourseError(f"{where}: {key} must be written as [[{key}]] tables")
    return value


def _known(table: dict, known: set[str], where: str, section: str) -> None:
    unknown = set(table) - known
    if unknown:
        raise CourseError(
            f"{where}: unknown setting(s) in {section}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
