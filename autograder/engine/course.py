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
    deadline = 2026-10-05T23:59:00+02:00   # optional, with a UTC offset ("Z" for UTC); never on an imported one

    [grade]
    divisor = 10                 # final grade = total / divisor, rounded half up
    decimals = 2                 # component points are kept to this many decimals

    [grading]
    cuda_absent = "cpu"          # what a CUDA check scores on a host without a CUDA device
    cluster = "tcp://grading.example.edu:8786"   # optional: where `autograder batch` grades by default
                                 # (a Dask scheduler; $AUTOGRADER_CLUSTER and --cluster come first)

    [late]                       # optional: without it (or without a deadline) nothing is late
    penalty_per_day = 10         # percent of the component's points lost per started day late
    grace = 15                   # minutes after the deadline that still count as on time
    cap = 50                     # the most percent ever lost (100: a very late submission can reach 0)

    [release]
    package = "dl-autograder==0.1.0"   # what students install: each homework's README and CI (release/install.py)

Arithmetic is exact (Decimal): an assignment's raw score is scaled to its
component's points and rounded half up to `decimals`; the total is the sum of
those shown points; the final grade is total / divisor rounded half up, so 85
gives 9 and 84.99 gives 8 (Python's round() would give 8 for 8.5).

A CUDA check (`<id>.cuda`, the twin of the CPU check `<id>`) is skipped where
the grading host has no CUDA device; `cuda_absent` says what it scores then:
"cpu", what its CPU twin scored (a host without a GPU grades the same code the
same way, on CPU); "zero", nothing; "exclude", left out of the maximum as well.

The late policy is applied when grades are computed, from the submission time the
gradebook holds, never when grading: the gradebook keeps the raw result, so changing
the policy or a deadline needs no regrade. A submission is on time up to and at
deadline + grace. After that, days late = the started 24-hour periods since then
(1 second to exactly 24 h after: 1 day; 24 h and 1 second: 2 days); the penalty is
min(cap, days * penalty_per_day) percent, and the points are the scaled points *
(100 - penalty) / 100, rounded half up to `decimals`. An unknown submission time
counts as on time (the feedback says it was unknown); points imported for a
component are never late.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

COURSE_FILE = "course.toml"
CUDA_ABSENT = ("cpu", "zero", "exclude")
IMPORT = "import"
COMPONENT_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
DAY = timedelta(days=1)
MAX_GRACE = 7 * 24 * 60  # minutes; a bound keeps deadline + grace a valid date


class CourseError(Exception):
    """course.toml is unreadable or says something this version does not understand."""


@dataclass(frozen=True)
class Component:
    id: str
    title: str
    points: Decimal
    source: str  # an assignment id, or IMPORT
    deadline: datetime | None = None  # aware (it has a UTC offset); None: never late

    @property
    def imported(self) -> bool:
        return self.source == IMPORT


@dataclass(frozen=True)
class LatePolicy:
    penalty_per_day: Decimal  # percent of a component's points lost per started day late
    grace: timedelta  # after the deadline, still on time
    cap: Decimal  # the most percent ever lost

    def days_late(self, deadline: datetime, submitted: datetime) -> int:
        """The started days after deadline + grace; 0 up to and at its end."""
        over = submitted - (deadline + self.grace)
        return max(0, -(-over // DAY))  # ceiling, in whole microseconds: no float rounding at a day's edge

    def percent(self, days: int) -> Decimal:
        """The percent of the points lost when days late."""
        return min(self.cap, days * self.penalty_per_day)


@dataclass(frozen=True)
class Course:
    cuda_absent: str = "cpu"
    name: str = "course"
    components: tuple[Component, ...] = ()
    divisor: Decimal = Decimal(10)
    decimals: int = 2
    late: LatePolicy | None = None  # None: nothing is ever late
    package: str = ""  # what a released homework's README and CI workflow install with pip; "": not set (release refuses it)
    cluster: str = ""  # the Dask scheduler `autograder batch` grades on by default; "": this host

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

    def penalized(self, points: Decimal, percent: Decimal) -> Decimal:
        """points less percent of them, rounded half up to the course's decimals."""
        return self.rounded(points * (100 - percent) / 100)

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
    _known(data, {"course", "components", "grade", "grading", "late", "release"}, where, "the top level")
    course = _table(data, "course", where)
    _known(course, {"name", "total"}, where, "[course]")
    grade = _table(data, "grade", where)
    _known(grade, {"divisor", "decimals"}, where, "[grade]")
    grading = _table(data, "grading", where)
    _known(grading, {"cuda_absent", "cluster"}, where, "[grading]")
    release = _table(data, "release", where)
    _known(release, {"package"}, where, "[release]")

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
    late = _late_policy(data, where) if "late" in data else None
    package = release.get("package", Course.package)
    if not isinstance(package, str) or any(ch in package for ch in "\"\n\r"):
        raise CourseError(f"{where}: [release] package must be one pip requirement on one line, without quotes, not {package!r}")
    cluster = grading.get("cluster", Course.cluster)
    if not isinstance(cluster, str) or any(ch.isspace() for ch in cluster):
        raise CourseError(f"{where}: [grading] cluster must be a Dask scheduler's address, like \"tcp://host:8786\", not {cluster!r}")
    result = Course(cuda_absent, name.strip(), components, divisor, decimals, late, package.strip(), cluster)
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
    _known(entry, {"id", "title", "points", "source", "deadline"}, where, label.split(": ", 1)[1])
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
    deadline = entry.get("deadline")
    if deadline is not None:
        _check_deadline(deadline, source, f"{label} ({component_id})")
    return Component(component_id, title, points, source, deadline)


def _check_deadline(deadline, source: str, label: str) -> None:
    if source == IMPORT:
        raise CourseError(f"{label}: an imported component has no deadline (its points are graded elsewhere); remove deadline")
    if not isinstance(deadline, datetime):
        raise CourseError(
            f"{label}: deadline must be a date and time with a UTC offset, written without quotes, "
            f"e.g. deadline = 2026-10-05T23:59:00+02:00; not {deadline!r}"
        )
    if deadline.utcoffset() is None:
        written = deadline.isoformat()
        raise CourseError(
            f"{label}: deadline {written} has no UTC offset, so it names no one moment; "
            f"add the offset of its time zone, e.g. {written}+02:00, or {written}Z for UTC"
        )


def _late_policy(data: dict, where: str) -> LatePolicy:
    late = _table(data, "late", where)
    _known(late, {"penalty_per_day", "grace", "cap"}, where, "[late]")
    if "penalty_per_day" not in late:
        raise CourseError(
            f"{where}: [late] lacks penalty_per_day (the percent of a component's points lost per started day late)"
        )
    grace = late.get("grace", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= MAX_GRACE:
        raise CourseError(f"{where}: [late] grace must be a whole number of minutes from 0 to {MAX_GRACE} (a week), "
                          f"not {grace!r}")
    return LatePolicy(
        penalty_per_day=_percent(late["penalty_per_day"], f"{where}: [late] penalty_per_day"),
        grace=timedelta(minutes=grace),
        cap=_percent(late.get("cap", 100), f"{where}: [late] cap"),
    )


def _percent(value, what: str) -> Decimal:
    percent = _number(value, what)
    if not 0 < percent <= 100:
        raise CourseError(f"{what} is a percent: more than 0, at most 100; not {percent}")
    return percent


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
