"""course.toml: components on the 115-point scale, exact scaling, the final grade rounded half up, the late policy."""

import tomllib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from autograder.engine import course as course_module
from autograder.engine.course import CourseError, LatePolicy, load_course, parse_course
from autograder.engine.grades import Earned, Lateness, standing
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.gradebook.store import Gradebook

ROOT = Path(__file__).resolve().parent.parent
COURSE = load_course(ROOT)


def test_the_course_file_is_the_115_point_scale():
    assert [(c.id, c.points, c.source) for c in COURSE.components] == [
        ("hw1", 15, "hw1"), ("hw2", 10, "hw2"), ("hw3", 15, "hw3"), ("hw4", 15, "hw4"),
        ("hw5", 10, "hw5"), ("hw6", 10, "hw6"), ("exam", 40, "import"),
    ]
    assert COURSE.max_points == 115 and COURSE.divisor == 10
    assert COURSE.component("exam").imported and not COURSE.component("hw1").imported
    assert COURSE.component_of("hw2").id == "hw2" and COURSE.component_of("hw9") is None


@pytest.mark.parametrize("total, grade", [
    (65, 7), (45, 5), (Decimal("84.9"), 8), (85, 9), (Decimal("84.99"), 8), (Decimal("64.99"), 6),
    (0, 0), (Decimal("4.99"), 0), (5, 1), (115, 12), (Decimal("114.99"), 11),
])
def test_final_grade_is_total_over_ten_rounded_half_up(total, grade):
    assert COURSE.final_grade(total) == grade


@pytest.mark.parametrize("half", range(0, 115, 10))
def test_every_half_boundary_rounds_up_and_just_below_rounds_down(half):
    # total 5, 15, ..., 105 is exactly x.5 after dividing by 10; Python's round() gives the even neighbour.
    boundary = Decimal(half + 5)
    assert COURSE.final_grade(boundary) == (half + 5 + 5) // 10
    assert COURSE.final_grade(boundary - Decimal("0.01")) == (half + 5 - 5) // 10
    assert COURSE.final_grade(float(boundary)) == (half + 5 + 5) // 10


def test_raw_scores_are_scaled_exactly_to_the_component_and_rounded_half_up():
    hw2 = COURSE.component("hw2")
    assert COURSE.scaled(7, 9, hw2) == Decimal("7.78")  # 7.777...
    assert COURSE.scaled(0.1 + 0.2, 3, hw2) == Decimal("1.00")  # float dust does not leak in
    assert COURSE.scaled(Decimal("2.0001"), 8, hw2) == Decimal("2.50")
    assert COURSE.scaled(Decimal("1.999"), 8, hw2) == Decimal("2.50")  # 2.49875 -> 2.50 (half up at the 3rd decimal)
    assert COURSE.scaled(3, 0, hw2) == 0  # every check left out of the maximum


def test_a_standing_adds_shown_points_and_marks_what_is_missing():
    earned = {"hw1": Earned(Decimal("13.75"), Decimal(15)), "hw2": Earned(Decimal(5), Decimal(10)),
              "exam": Earned(Decimal("36.25"), None)}
    grades = standing(COURSE, "s1", earned)
    assert [str(s.points) for s in grades.scores] == ["13.75", "5.00", "0", "0", "0", "0", "36.25"]
    assert grades.total == Decimal("55.00") and grades.grade == 6  # 5.5 rounds up
    assert grades.missing == ["hw3", "hw4", "hw5", "hw6"]


def _course(**overrides):
    data = {"course": {"name": "c"}, "components": [{"id": "hw1", "points": 15, "source": "hw1"}]}
    data.update(overrides)
    return parse_course(data)


@pytest.mark.parametrize("overrides, message", [
    ({"components": [{"id": "hw1", "points": 15}]}, "lacks source"),
    ({"components": [{"id": "hw1", "points": -1, "source": "hw1"}]}, "points must be positive"),
    ({"components": [{"id": "hw1", "points": "15", "source": "hw1"}]}, "must be a number"),
    ({"components": [{"id": "hw1", "points": float("nan"), "source": "hw1"}]}, "finite"),
    ({"components": [{"id": "1hw", "points": 1, "source": "hw1"}]}, "must be a letter"),
    ({"components": [{"id": "a", "points": 1, "source": "hw1"}, {"id": "a", "points": 1, "source": "import"}]}, "same id: a"),
    ({"components": [{"id": "a", "points": 1, "source": "hw1"}, {"id": "b", "points": 1, "source": "hw1"}]}, "same source: hw1"),
    ({"components": [{"id": "a", "points": 1, "source": "../x"}]}, "source must be an assignment id"),
    ({"components": [{"id": "a", "points": 1, "source": "hw1", "weight": 2}]}, "unknown setting(s) in [[components]] number 1: weight"),
    ({"course": {"name": "c", "total": 115}}, "total = 115, but the components add up to 15"),
    ({"grade": {"divisor": 0}}, "divisor must be positive"),
    ({"grade": {"decimals": 1.5}}, "decimals must be a whole number"),
    ({"grade": {"rounding": "even"}}, "unknown setting(s) in [grade]: rounding"),
    ({"grading": {"cuda_absent": "maybe"}}, "cuda_absent"),
    ({"grading": {"cluster": 8786}}, "cluster must be a Dask scheduler's address"),
    ({"grading": {"cluster": "tcp://a b:8786"}}, "cluster must be a Dask scheduler's address"),
    ({"components": {"id": "a"}}, "[[components]]"),
])
def test_a_wrong_course_file_says_what_is_wrong(overrides, message):
    with pytest.raises(CourseError) as error:
        _course(**overrides)
    assert message in str(error.value)


def test_exam_and_two_components_can_share_import_as_source():
    course = _course(components=[{"id": "exam", "points": 40, "source": "import"}, {"id": "quiz", "points": 5, "source": "import"}])
    assert [c.imported for c in course.components] == [True, True]


# The late policy

LATE_TOML = """
[course]
name = "Late course"

[[components]]
id = "hw1"
points = 12
source = "hw1"
deadline = 2026-10-05T23:59:00+02:00

[[components]]
id = "hw2"
points = 10
source = "hw2"
deadline = 2026-10-12T23:59:00Z

[[components]]
id = "hw3"
points = 10
source = "hw3"

[[components]]
id = "exam"
points = 40
source = "import"

[late]
penalty_per_day = 10
grace = 15
cap = 50
"""
LATE_COURSE = parse_course(tomllib.loads(LATE_TOML))
HW1_GRACE_END = datetime(2026, 10, 5, 22, 14, tzinfo=timezone.utc)  # 23:59 at +02:00, plus 15 minutes


def test_a_deadline_and_the_late_policy_are_read_from_toml():
    hw1, hw2, hw3, exam = LATE_COURSE.components
    assert hw1.deadline == datetime(2026, 10, 5, 21, 59, tzinfo=timezone.utc)
    assert hw2.deadline == datetime(2026, 10, 12, 23, 59, tzinfo=timezone.utc)
    assert hw3.deadline is None and exam.deadline is None
    assert LATE_COURSE.late == LatePolicy(Decimal(10), timedelta(minutes=15), Decimal(50))
    assert _course(late={"penalty_per_day": 12.5}).late == LatePolicy(Decimal("12.5"), timedelta(0), Decimal(100))
    assert COURSE.late is None  # the repository's course has none (only a commented-out example)


def test_the_docstring_example_shows_every_key_and_parses():
    example = tomllib.loads("\n".join(line[4:] for line in course_module.__doc__.splitlines() if line.startswith("    ")))
    assert {table: set(keys) for table, keys in example.items() if table != "components"} == {
        "course": {"name", "total"}, "grade": {"divisor", "decimals"}, "grading": {"cuda_absent", "cluster"},
        "late": {"penalty_per_day", "grace", "cap"}, "release": {"package"},
    }
    assert set(example["components"][0]) == {"id", "title", "points", "source", "deadline"}
    del example["course"]["total"]  # it shows one component of the 115 points
    course = parse_course(example)
    assert course.component("hw1").deadline is not None and course.late is not None
    assert course.package == "dl-autograder==0.1.0"
    assert course.cluster == "tcp://grading.example.edu:8786" and COURSE.cluster == ""


@pytest.mark.parametrize("package", ['autograder"; rm -rf ~; echo "', "autograder\nrun: curl evil", 3])
def test_the_package_a_homework_installs_is_one_plain_requirement(package):
    with pytest.raises(CourseError, match=r"\[release\] package must be one pip requirement on one line, without quotes"):
        parse_course({"release": {"package": package}})
    assert parse_course({}).package == ""  # unset: `release` refuses it, saying what to put there


@pytest.mark.parametrize("deadline, message", [
    ("2026-10-05T23:59:00", "deadline 2026-10-05T23:59:00 has no UTC offset, so it names no one moment; "
                            "add the offset of its time zone, e.g. 2026-10-05T23:59:00+02:00, or 2026-10-05T23:59:00Z for UTC"),
    ('"2026-10-05T23:59:00+02:00"', "deadline must be a date and time with a UTC offset, written without quotes, "
                                    "e.g. deadline = 2026-10-05T23:59:00+02:00; not '2026-10-05T23:59:00+02:00'"),
    ("2026-10-05", "deadline must be a date and time with a UTC offset, written without quotes, "
                   "e.g. deadline = 2026-10-05T23:59:00+02:00; not datetime.date(2026, 10, 5)"),
])
def test_a_deadline_needs_a_date_a_time_and_an_offset(deadline, message):
    text = f'[[components]]\nid = "hw1"\npoints = 15\nsource = "hw1"\ndeadline = {deadline}\n'
    with pytest.raises(CourseError) as error:
        parse_course(tomllib.loads(text))
    assert str(error.value) == f"course.toml: [[components]] number 1 (hw1): {message}"


GRACE_RANGE = "[late] grace must be a whole number of minutes from 0 to 10080 (a week), not "


@pytest.mark.parametrize("overrides, message", [
    ({"components": [{"id": "exam", "points": 40, "source": "import", "deadline": datetime(2026, 10, 5, tzinfo=timezone.utc)}]},
     "[[components]] number 1 (exam): an imported component has no deadline (its points are graded elsewhere); remove deadline"),
    ({"late": 10}, "[late] must be a table"),
    ({"late": {"penalty_per_day": 10, "per_week": 5}}, "unknown setting(s) in [late]: per_week; known: cap, grace, penalty_per_day"),
    ({"late": {"cap": 50}}, "[late] lacks penalty_per_day (the percent of a component's points lost per started day late)"),
    ({"late": {"penalty_per_day": "10"}}, "[late] penalty_per_day must be a number, not '10'"),
    ({"late": {"penalty_per_day": 0}}, "[late] penalty_per_day is a percent: more than 0, at most 100; not 0"),
    ({"late": {"penalty_per_day": 101}}, "[late] penalty_per_day is a percent: more than 0, at most 100; not 101"),
    ({"late": {"penalty_per_day": 10, "cap": 0}}, "[late] cap is a percent: more than 0, at most 100; not 0"),
    ({"late": {"penalty_per_day": 10, "cap": 100.5}}, "[late] cap is a percent: more than 0, at most 100; not 100.5"),
    ({"late": {"penalty_per_day": 10, "cap": float("inf")}}, "[late] cap must be a finite number, not inf"),
    ({"late": {"penalty_per_day": 10, "grace": -1}}, GRACE_RANGE + "-1"),
    ({"late": {"penalty_per_day": 10, "grace": 1.5}}, GRACE_RANGE + "1.5"),
    ({"late": {"penalty_per_day": 10, "grace": True}}, GRACE_RANGE + "True"),
    ({"late": {"penalty_per_day": 10, "grace": 10081}}, GRACE_RANGE + "10081"),
])
def test_a_wrong_late_policy_says_what_is_wrong(overrides, message):
    with pytest.raises(CourseError) as error:
        _course(**overrides)
    assert str(error.value) == f"course.toml: {message}"


@pytest.mark.parametrize("after_grace_end, days", [
    (-timedelta(minutes=16), 0),  # before the deadline
    (-timedelta(minutes=15), 0),  # exactly at the deadline
    (-timedelta(minutes=1), 0),  # inside the grace
    (timedelta(0), 0),  # the grace's last moment
    (timedelta(microseconds=1), 1),
    (timedelta(seconds=1), 1),
    (timedelta(hours=24), 1),  # a whole day after: the second has not started
    (timedelta(hours=24, seconds=1), 2),  # a started day counts
    (timedelta(days=2, hours=23), 3),
    (timedelta(days=400), 400),
])
def test_days_late_are_the_started_days_after_the_grace(after_grace_end, days):
    submitted = HW1_GRACE_END + after_grace_end
    assert LATE_COURSE.late.days_late(LATE_COURSE.component("hw1").deadline, submitted) == days
    # The same moment written in another zone is the same number of days.
    elsewhere = submitted.astimezone(timezone(timedelta(hours=-9, minutes=-30)))
    assert LATE_COURSE.late.days_late(LATE_COURSE.component("hw1").deadline, elsewhere) == days


def test_the_penalty_grows_per_day_up_to_the_cap():
    assert [LATE_COURSE.late.percent(days) for days in (0, 1, 4, 5, 6, 400)] == [0, 10, 40, 50, 50, 50]
    everything = LatePolicy(Decimal(30), timedelta(0), Decimal(100))
    assert [everything.percent(days) for days in (3, 4)] == [90, 100]
    assert LATE_COURSE.penalized(Decimal("12.00"), everything.percent(4)) == Decimal("0.00")


def test_penalized_points_are_exact_and_rounded_half_up():
    assert LATE_COURSE.penalized(Decimal("12.00"), Decimal(10)) == Decimal("10.80")
    assert LATE_COURSE.penalized(Decimal("1.15"), Decimal(10)) == Decimal("1.04")  # 1.035: a float gives 1.03
    assert LATE_COURSE.penalized(Decimal("0.05"), Decimal(10)) == Decimal("0.05")  # 0.045 up
    assert LATE_COURSE.penalized(Decimal("10.00"), Decimal("12.5") * 3) == Decimal("6.25")
    assert LATE_COURSE.penalized(Decimal("7.77"), Decimal(0)) == Decimal("7.77")


def _earned(submitted_at="", source="manifest", raw=Decimal(12), raw_max=Decimal(12)):
    return Earned(raw, raw_max, "", submitted_at, source)


def test_a_standing_takes_the_penalty_off_late_components_only():
    earned = {
        "hw1": _earned("2026-10-06T10:12:00Z"),  # 1 day late: 12 -> 10.80
        "hw2": _earned("2026-10-20T08:00:00+00:00", "newest file", Decimal(5), Decimal(10)),  # 8 days: capped at 50%
        "hw3": _earned("2030-01-01T00:00:00Z", raw=Decimal(10), raw_max=Decimal(10)),  # no deadline
        "exam": Earned(Decimal("30.5"), None),
    }
    grades = standing(LATE_COURSE, "s1", earned)
    hw1, hw2, hw3, exam = grades.scores
    assert [str(s.points) for s in grades.scores] == ["10.80", "2.50", "10.00", "30.50"]
    assert grades.total == Decimal("53.80") and grades.grade == 5
    assert hw1.late == Lateness(datetime(2026, 10, 6, 10, 12, tzinfo=timezone.utc), "manifest", 1, Decimal(10), Decimal("12.00"))
    assert (hw2.late.days, hw2.late.percent, hw2.late.points_before, hw2.late.source) == (8, 50, Decimal("5.00"), "newest file")
    assert hw1.penalized and hw2.penalized and hw3.late is None and exam.late is None
    assert [hw1.late.summary, hw2.late.summary] == ["1 day -10%", "8 days -50%"]
    assert all(type(value) is Decimal for value in (hw1.points, hw1.late.percent, hw2.points, hw2.late.percent))


def test_unknown_or_on_time_submissions_and_imported_points_lose_nothing():
    earned = {"hw1": _earned(""), "hw2": _earned("2026-10-12T23:59:00Z", raw_max=Decimal(24))}
    hw1, hw2, *_ = standing(LATE_COURSE, "s1", earned).scores
    assert hw1.late == Lateness(None, "", 0, Decimal(0), Decimal("12.00")) and hw1.points == 12 and not hw1.penalized
    assert hw2.late.days == 0 and hw2.points == 5 and not hw2.penalized
    unreadable = standing(LATE_COURSE, "s1", {"hw1": _earned("yesterday")}).scores[0]
    assert unreadable.late.submitted_at is None and unreadable.points == 12
    # Points imported for an assignment's component were graded elsewhere: no deadline applies to them.
    imported = standing(LATE_COURSE, "s1", {"hw1": Earned(Decimal(7), None)}).scores[0]
    assert imported.late is None and imported.points == 7
    # Without [late] a deadline costs nothing.
    lenient = parse_course(tomllib.loads(LATE_TOML.split("[late]")[0]))
    hw1 = standing(lenient, "s1", {"hw1": _earned("2027-01-01T00:00:00Z")}).scores[0]
    assert hw1.late is None and hw1.points == 12


def test_class_grades_apply_the_policy_to_the_stored_submission_times(tmp_path):
    def result(student, assignment, score, submitted_at, source="manifest"):
        check = CheckResult("x.y.z", score, 4.0, "passed" if score == 4 else "failed", "", "public")
        return SubmissionResult(assignment, student, [check], "process", [], submitted_at, source)

    with Gradebook(tmp_path / "gradebook.sqlite") as gradebook:
        for stored in (
            result("ann", "hw1", 4.0, "2026-10-05T22:14:00Z"),  # the grace's last moment: on time
            result("bob", "hw1", 4.0, "2026-10-05T22:14:01Z"),  # 1 day
            result("bob", "hw2", 2.0, "2026-10-15T00:15:00Z", "newest file"),  # 2 days and a minute: 3
            result("cat", "hw1", 3.0, ""),  # unknown: on time
            result("dan", "hw1", 4.0, "2026-11-30T00:00:00Z"),  # capped
        ):
            gradebook.record(stored, "hash", "v1", 0.1)
        gradebook.import_points("exam", {"ann": Decimal(40)}, "exam.csv")
        grades = {g.student: g for g in gradebook.class_grades(LATE_COURSE)}
        points = {student: [str(s.points) for s in g.scores] for student, g in grades.items()}
        assert points == {
            "ann": ["12.00", "0", "0", "40.00"],
            "bob": ["10.80", "3.50", "0", "0"],
            "cat": ["9.00", "0", "0", "0"],
            "dan": ["6.00", "0", "0", "0"],
        }
        assert [s.late.days if s.late else None for s in grades["bob"].scores] == [1, 3, None, None]
        assert grades["cat"].scores[0].late.submitted_at is None
        # The gradebook keeps the raw results: another policy needs no regrade.
        kinder = parse_course(tomllib.loads(LATE_TOML.replace("grace = 15", "grace = 60")))
        assert [str(s.points) for s in gradebook.class_grades(kinder)[1].scores] == ["12.00", "4.00", "0", "0"]  # 0 and 2 days
