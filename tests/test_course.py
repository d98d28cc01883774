"""course.toml: components on the 115-point scale, exact scaling, the final grade rounded half up."""

from decimal import Decimal
from pathlib import Path

import pytest

from autograder.engine.course import CourseError, load_course, parse_course
from autograder.engine.grades import Earned, standing

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
    ({"components": {"id": "a"}}, "[[components]]"),
])
def test_a_wrong_course_file_says_what_is_wrong(overrides, message):
    with pytest.raises(CourseError) as error:
        _course(**overrides)
    assert message in str(error.value)


def test_exam_and_two_components_can_share_import_as_source():
    course = _course(components=[{"id": "exam", "points": 40, "source": "import"}, {"id": "quiz", "points": 5, "source": "import"}])
    assert [c.imported for c in course.components] == [True, True]
