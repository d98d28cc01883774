"""The renderers of autograder/reports: Gradescope JSON, JUnit XML, student feedback, class report, class CSV,
terminal gradebook."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import struct
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from rich.console import Console

from autograder.engine.course import parse_course
from autograder.engine.grades import Earned, standing, unassigned
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports import class_report, export_csv, feedback, gradescope, junit, terminal
from autograder.submission.stubs import Stub

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECRET = "SECRET-VALUE-1234"  # what a hidden check's message holds and no student rendering may show

COURSE = parse_course(
    {
        "course": {"name": "Deep Learning"},
        "components": [
            {"id": "hw1", "title": "Backprop", "points": 15, "source": "hw1"},
            {"id": "exam", "title": "Written exam", "points": 40, "source": "import"},
        ],
    }
)


def make_result(*checks: CheckResult, notes=("neurons.py was not submitted",)) -> SubmissionResult:
    return SubmissionResult("hw1", "s123", list(checks), "namespace", list(notes))


RESULT = make_result(
    CheckResult("activations.Sigmoid.forward", 1.0, 1.0, "passed", "", "public"),
    CheckResult("activations.Sigmoid.backward", 0.0, 1.0, "failed", "values differ\nexpected 1.0, got 2.0", "public"),
    CheckResult("activations.Sigmoid.backward.cuda", 0.5, 0.5, "skipped", "skipped: no CUDA device", "public"),
    CheckResult("activations.ReLU.backward.cuda", 0.0, 0.5, "skipped", "skipped: no CUDA device", "public"),
    CheckResult("backprop.Linear.forward", 0.0, 2.0, "timeout", f"took too long on {SECRET}", "hidden"),
    CheckResult("backprop.Linear.backward", 0.0, 0.25, "error", f"raised on {SECRET}", "hidden"),
    CheckResult("backprop.Linear.float32", 0.25, 0.25, "passed", "", "hidden"),
)


def grades_of(student="s123", hw1=(Decimal(6), Decimal(10)), exam: Decimal | None = None, note=""):
    earned = {"hw1": Earned(*hw1, note)} if hw1 else {}
    if exam is not None:
        earned["exam"] = Earned(exam, None)
    return standing(COURSE, student, earned)


# Gradescope


def test_gradescope_top_level_fields():
    data = gradescope.results_json(RESULT)
    assert data["score"] == 1.75 and type(data["score"]) is float
    assert data["visibility"] == "visible" and data["stdout_visibility"] == "hidden"
    assert "execution_time" not in data
    summary, note = data["output"].split("\n")
    assert summary == "hw1: 1.75 / 5.5 points; 3 of 7 checks passed"
    assert note == "neurons.py was not submitted"
    assert json.loads(json.dumps(data)) == data


def test_gradescope_tests_one_per_check():
    tests = gradescope.results_json(RESULT)["tests"]
    assert [t["name"] for t in tests] == [c.id for c in RESULT.checks]
    assert [t["status"] for t in tests] == ["passed", "failed", "passed", "failed", "failed", "failed", "passed"]
    assert [t["score"] for t in tests] == [1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.25]
    assert [t["max_score"] for t in tests] == [1.0, 1.0, 0.5, 0.5, 2.0, 0.25, 0.25]
    assert all(type(t["score"]) is float and type(t["max_score"]) is float for t in tests)
    assert [t["tags"] for t in tests] == [["activations"]] * 4 + [["backprop"]] * 3
    assert tests[1]["output"] == "values differ\nexpected 1.0, got 2.0"


def test_gradescope_hidden_checks_show_outcome_only():
    data = gradescope.results_json(RESULT)
    assert SECRET not in json.dumps(data)
    outputs = [t["output"] for t in data["tests"][4:]]
    assert outputs == ["hidden check: failed (timeout)", "hidden check: failed (error)", "hidden check: passed"]


@pytest.mark.parametrize("hidden_visibility", gradescope.VISIBILITIES)
def test_gradescope_visibility_of_hidden_checks(hidden_visibility):
    tests = gradescope.results_json(RESULT, hidden_visibility)["tests"]
    assert [t["visibility"] for t in tests] == ["visible"] * 4 + [hidden_visibility] * 3


def test_gradescope_default_hides_hidden_checks_until_published():
    assert gradescope.results_json(RESULT)["tests"][-1]["visibility"] == "after_published"


def test_gradescope_rejects_unknown_visibility():
    with pytest.raises(ValueError, match="after_published"):
        gradescope.results_json(RESULT, "later")


# JUnit


def test_junit_parses_and_counts():
    root = ET.fromstring(junit.junit_xml(RESULT))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "hw1", "tests": "7", "failures": "1", "errors": "2", "skipped": "2",
    }
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["student"] == "s123" and properties["score"] == "1.75"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases[1:3]] == [
        ("hw1.activations.Sigmoid", "backward"),
        ("hw1.activations.Sigmoid", "backward.cuda"),
    ]
    assert [[child.tag for child in c if child.tag != "properties"] for c in cases] == [
        [], ["failure"], ["skipped"], ["skipped"], ["error"], ["error"], [],
    ]
    failure = cases[1].find("failure")
    assert failure.get("message") == "values differ"
    assert failure.text == "values differ\nexpected 1.0, got 2.0"
    assert suite.find("system-out").text == "neurons.py was not submitted"


def test_junit_hidden_checks_carry_status_only():
    text = junit.junit_xml(RESULT)
    assert SECRET not in text
    timeout = ET.fromstring(text).findall("testsuite/testcase")[4].find("error")
    assert timeout.get("message") == "hidden check: timeout" and timeout.get("type") == "timeout"
    assert not timeout.text


def test_junit_strips_what_xml_cannot_hold():
    hostile = "nul\x00 bell\x07 \x1b[31mred\x1b[0m lone\ud800 fine\ttab"
    result = make_result(CheckResult("neurons.Neuron.forward", 0.0, 1.0, "failed", hostile, "public"))
    result.student = "s\x1b1"
    suite = ET.fromstring(junit.junit_xml(result)).find("testsuite")
    assert suite.find("testcase/failure").text == "nul bell red lone\ufffd fine\ttab"
    assert suite.find("properties/property").get("value") == "s"  # ESC 1 is one escape sequence to a terminal


# Feedback


HOSTILE = "<script>alert('x')</script> & | pipes"
FEEDBACK_RESULT = make_result(
    CheckResult("activations.Sigmoid.forward", 1.0, 1.0, "passed", "all good", "public"),
    CheckResult("activations.Sigmoid.backward", 0.0, 1.0, "failed", f"expected 1.0\n{HOSTILE}", "public"),
    CheckResult("activations.ReLU.forward", 0.0, 1.0, "error", "inner ```fence``` and ``\x00``more```", "public"),
    CheckResult("backprop.Linear.forward", 0.0, 2.0, "timeout", f"took too long on {SECRET}", "hidden"),
    notes=["stub <b>left</b> as it was"],
)
FEEDBACK_GRADES = grades_of(hw1=(Decimal(1), Decimal(5)), note="late | 1 day")


def test_markdown_content():
    text = feedback.markdown(COURSE, FEEDBACK_GRADES, {"hw1": FEEDBACK_RESULT})
    assert text.startswith("# Deep Learning: s123\n")
    assert "| Backprop (hw1) | 3.00 / 15 |  | late \\| 1 day |" in text
    assert "| Written exam (exam) | 0.00 / 40 | missing |  |" in text
    assert "**Total:** 3.00 / 55" in text and "**Final grade:** 0" in text
    assert "| activations.Sigmoid.backward | public | failed | 0 / 1 |" in text
    assert "| backprop.Linear.forward | hidden | timeout | 0 / 2 |" in text
    assert "- stub &lt;b&gt;left&lt;/b&gt; as it was" in text
    assert "all good" not in text  # passed checks need no explanation


def test_markdown_fences_messages_with_a_longer_fence_than_inside():
    lines = feedback.markdown(COURSE, FEEDBACK_GRADES, {"hw1": FEEDBACK_RESULT}).split("\n")
    start = lines.index("### activations.Sigmoid.backward (failed)")
    assert lines[start + 2 : start + 6] == ["```", "expected 1.0", HOSTILE, "```"]
    start = lines.index("### activations.ReLU.forward (error)")
    assert lines[start + 2 : start + 5] == ["`````", "inner ```fence``` and ````more```", "`````"]  # NUL dropped


def test_markdown_tables_keep_their_columns():
    text = feedback.markdown(COURSE, FEEDBACK_GRADES, {"hw1": FEEDBACK_RESULT})
    rows = [line for line in text.split("\n") if line.startswith("|")]
    assert len(rows) == (2 + 2) + (2 + 4)  # header and rule, then components; then checks
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in rows)  # 4 cells between 5 bars


def test_html_escapes_everything_from_results():
    page = feedback.html(COURSE, grades_of(student="<img src=x onerror=alert(1)>"), {"hw1": FEEDBACK_RESULT})
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; | pipes" in page
    assert "<pre>expected 1.0\n&lt;script&gt;" in page


def test_html_has_the_content_of_markdown():
    page = feedback.html(COURSE, FEEDBACK_GRADES, {"hw1": FEEDBACK_RESULT})
    for expected in (
        "<td>Backprop (hw1)</td>", ">3.00 / 15<", ">missing<", "late | 1 day", "3.00 / 55", "Final grade:</strong> 0",
        "<td>backprop.Linear.forward</td><td>hidden</td>", "stub &lt;b&gt;left&lt;/b&gt; as it was",
    ):
        assert expected in page
    assert "all good" not in page


@pytest.mark.parametrize("render", [feedback.markdown, feedback.html])
def test_feedback_never_shows_hidden_messages(render):
    text = render(COURSE, FEEDBACK_GRADES, {"hw1": FEEDBACK_RESULT})
    assert "backprop.Linear.forward" in text and "timeout" in text
    assert SECRET not in text and "took too long" not in text


@pytest.mark.parametrize("render", [feedback.markdown, feedback.html])
def test_feedback_drops_terminal_control_codes(render):
    result = make_result(CheckResult("neurons.Neuron.forward", 0.0, 1.0, "failed", "\x1b[31mred\x1b[0m\x00!", "public"))
    text = render(COURSE, FEEDBACK_GRADES, {"hw1": result})
    assert "red!" in text and "\x1b" not in text and "\x00" not in text


# Class report

# 3000 students: even ones score 15 in hw1, odd ones 5; the first 1000 have no exam, the rest 20.
# Totals 35, 25, 15, 5 give final grades 4, 3, 2, 1 (half up).
CLASS = [
    grades_of(f"s{i:04d}", hw1=(Decimal(15 if i % 2 == 0 else 5), Decimal(15)), exam=None if i < 1000 else Decimal(20))
    for i in range(3000)
]
CLASS_RESULTS = {
    "hw1": [
        make_result(
            CheckResult("activations.Sigmoid.forward", 1.0, 1.0, "passed", "", "public"),
            CheckResult("backprop.Linear.forward", 0.0, 1.0, "failed", "", "hidden"),
        )
    ]
    * 4
}


@pytest.fixture(scope="module")
def class_page() -> str:
    return class_report.class_html(COURSE, CLASS, CLASS_RESULTS)


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def table_rows(page: str) -> dict[str, list[str]]:
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in re.findall(r"<tr>(.*?)</tr>", page)]
    return {row[0]: row[1:] for row in rows}


def png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])  # the IHDR chunk's width and height


def test_class_report_embeds_its_charts_as_png(class_page):
    pngs = embedded_pngs(class_page)
    assert len(pngs) == 3  # component scores, hw1's pass rates, final grades
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs)
    assert all(png_size(png)[0] >= 600 for png in pngs)
    assert class_page.startswith("<!DOCTYPE html>") and "<title>Deep Learning: class report</title>" in class_page


def test_class_report_summary_table(class_page):
    assert "<p>Students: 3000 (" in class_page
    rows = table_rows(class_page)
    assert rows["Component"] == ["Points", "Graded", "Missing", "Mean", "Median"]
    assert rows["Backprop (hw1)"] == ["15", "3000", "0", "10.00", "10.00"]
    assert rows["Written exam (exam)"] == ["40", "2000", "1000", "20.00", "20.00"]
    assert rows["Total"][:2] == ["55", "3000"] and rows["Total"][3:] == ["23.33", "25.00"]
    assert rows["Final grade"][:2] == ["6", "3000"] and rows["Final grade"][3:] == ["2.8", "3.0"]


def test_chart_pngs_names_and_format():
    charts = class_report.chart_pngs(COURSE, CLASS[:10], CLASS_RESULTS)
    expected = [class_report.COMPONENT_SCORES, class_report.pass_rates_chart("hw1"), class_report.FINAL_GRADES]
    assert list(charts) == expected
    assert all(png.startswith(PNG_SIGNATURE) for png in charts.values())


def test_pass_rate_chart_grows_with_the_checks():
    forty = [CheckResult(f"activations.Unit{i}.forward", 1.0, 1.0, "passed", "", "public") for i in range(40)]
    many = make_result(*forty)
    charts = class_report.chart_pngs(COURSE, [], {"hw1": CLASS_RESULTS["hw1"], "exam": [many]})
    few_height = png_size(charts[class_report.pass_rates_chart("hw1")])[1]
    many_height = png_size(charts[class_report.pass_rates_chart("exam")])[1]
    assert many_height >= 40 * 20 > few_height  # at least 20 pixels a bar


def test_class_report_without_students():
    assert class_report.chart_pngs(COURSE, [], {}) == {}
    page = class_report.class_html(COURSE, [], {})
    assert "<p>Students: 0</p>" in page and "No students have grades yet" in page
    assert "<img" not in page
    assert table_rows(page)["Backprop (hw1)"] == ["15", "0", "0", "–", "–"]


def test_class_report_escapes_names():
    course = parse_course({"course": {"name": "<script>x</script>"}, "components": []})
    page = class_report.class_html(course, [], {})
    assert "<script>" not in page and "&lt;script&gt;" in page


# Late penalties, as feedback, the class CSV and the terminal gradebook show them

LATE_COURSE = parse_course(
    {
        "course": {"name": "Deep Learning"},
        "components": [
            {"id": "hw1", "title": "Backprop", "points": 12, "source": "hw1",
             "deadline": datetime(2026, 10, 5, 21, 59, tzinfo=timezone.utc)},
            {"id": "hw2", "title": "Convolution", "points": 10, "source": "hw2",
             "deadline": datetime(2026, 10, 12, 21, 59, tzinfo=timezone.utc)},
            {"id": "exam", "title": "Written exam", "points": 40, "source": "import"},
        ],
        "late": {"penalty_per_day": 10, "grace": 15, "cap": 50},
    }
)


def late_grades(student="s123", hw1="2026-10-06T10:12:00Z", hw1_source="manifest", hw2="2026-10-14T22:30:00Z"):
    earned = {
        "hw1": Earned(Decimal(12), Decimal(12), "", hw1, hw1_source),
        "hw2": Earned(Decimal(8), Decimal(10), "", hw2, "newest file"),
        "exam": Earned(Decimal(30), None),
    }
    return standing(LATE_COURSE, student, earned)


def test_markdown_feedback_says_when_each_submission_came_and_what_lateness_cost():
    text = feedback.markdown(LATE_COURSE, late_grades(), {})
    assert ("| Backprop (hw1) | 10.80 / 12 | late | submitted 2026-10-06 10:12 UTC (from the manifest), "
            "1 day late: -10% (12.00 -&gt; 10.80) |") in text
    assert ("| Convolution (hw2) | 5.60 / 10 | late | submitted 2026-10-14 22:30 UTC (from the newest file's time), "
            "3 days late: -30% (8.00 -&gt; 5.60) |") in text
    assert "| Written exam (exam) | 30.00 / 40 |  |  |" in text and "**Total:** 46.40 / 62" in text


def test_feedback_on_time_and_unknown_times():
    text = feedback.markdown(LATE_COURSE, late_grades(hw1="2026-10-05T22:14:00+00:00", hw2=""), {})
    assert "| Backprop (hw1) | 12.00 / 12 |  | submitted 2026-10-05 22:14 UTC (from the manifest), on time |" in text
    assert "| Convolution (hw2) | 8.00 / 10 |  | submission time unknown: counted as on time |" in text


def test_html_feedback_shows_the_late_penalty_escaped():
    page = feedback.html(LATE_COURSE, late_grades(), {})
    assert ("<td>submitted 2026-10-06 10:12 UTC (from the manifest), 1 day late: -10% (12.00 -&gt; 10.80)</td>") in page
    assert '<td class="late">late</td>' in page and ">10.80 / 12<" in page


def test_class_csv_sums_up_each_students_penalties_in_a_late_column():
    grades = [late_grades("ann"), late_grades("bob", hw1="2026-10-05T20:00:00Z", hw2="2026-10-12T22:14:01Z"),
              late_grades("=cat", hw1="", hw2="2026-10-01T00:00:00Z")]
    table = list(csv.DictReader(io.StringIO(export_csv.class_csv(LATE_COURSE, grades))))
    assert list(table[0]) == ["student", "hw1", "hw2", "exam", "total", "grade", "missing", "late"]
    assert [(row["student"], row["hw1"], row["hw2"], row["total"], row["late"]) for row in table] == [
        ("ann", "10.80", "5.60", "46.40", "hw1 1 day -10%; hw2 3 days -30%"),
        ("bob", "12.00", "7.20", "49.20", "hw2 1 day -10%"),
        ("'=cat", "12.00", "8.00", "50.00", ""),  # still no formula
    ]


def test_the_terminal_gradebook_marks_late_penalties():
    console = Console(record=True, width=120)
    terminal.render_gradebook(LATE_COURSE, [late_grades("ann")], console)
    text = console.export_text()
    assert "10.80 (-10%)" in text and "5.60 (-30%)" in text and "(-N%) = late penalty" in text
    console = Console(record=True, width=120)
    terminal.render_gradebook(LATE_COURSE, [late_grades("bob", hw1="", hw2="")], console)
    assert "(-" not in console.export_text()


# Components not assigned yet, the class report's student list, legends, skipped checks


UNRELEASED_COURSE = parse_course(
    {
        "course": {"name": "Deep Learning"},
        "components": [
            {"id": "hw1", "title": "Backprop", "points": 15, "source": "hw1"},
            {"id": "hw2", "title": "Convolution", "points": 10, "source": "hw2"},
            {"id": "hw3", "title": "NLP", "points": 15, "source": "hw3"},
            {"id": "exam", "title": "Written exam", "points": 40, "source": "import"},
        ],
    }
)


def unreleased_grades(student: str, hw1=True) -> object:
    """hw3 is not released yet; hw2 is, and student handed nothing in for it."""
    earned = {"hw1": Earned(Decimal(6), Decimal(10))} if hw1 else {}
    return standing(UNRELEASED_COURSE, student, earned, not_assigned={"hw3"})


def test_unassigned_reads_the_reference_folders(tmp_path):
    (tmp_path / "reference" / "hw1").mkdir(parents=True)
    (tmp_path / "reference" / "hw2").mkdir()
    (tmp_path / "reference" / "exam").mkdir()  # an imported component's source is the import, never a folder
    assert unassigned(UNRELEASED_COURSE, tmp_path) == {"hw3"}
    (tmp_path / "reference" / "hw3").mkdir()
    assert unassigned(UNRELEASED_COURSE, tmp_path) == frozenset()


def test_a_component_not_assigned_yet_is_not_missing_in_feedback():
    grades = unreleased_grades("s1")
    assert [(s.component.id, s.status) for s in grades.scores] == [
        ("hw1", ""), ("hw2", "missing"), ("hw3", "not assigned yet"), ("exam", "missing")]
    assert grades.missing == ["hw2", "exam"] and grades.total == Decimal("9.00")
    text = feedback.markdown(UNRELEASED_COURSE, grades, {})
    assert "| NLP (hw3) | – / 15 | not assigned yet |  |" in text
    assert "| Convolution (hw2) | 0.00 / 10 | missing |  |" in text
    page = feedback.html(UNRELEASED_COURSE, grades, {})
    assert '<td class="unassigned">not assigned yet</td>' in page and '<td class="missing">missing</td>' in page
    assert page.count('class="missing"') == 2  # hw2 and the exam, not hw3


def test_the_terminal_gradebook_leaves_out_components_not_assigned_yet():
    console = Console(record=True, width=120)
    terminal.render_gradebook(UNRELEASED_COURSE, [unreleased_grades("s1"), unreleased_grades("s2", hw1=False)], console)
    text = console.export_text()
    header = text.splitlines()[2]
    assert "hw1" in header and "hw2" in header and "exam" in header and "hw3" not in header, text
    assert "not assigned yet, so left out: hw3" in text


def test_a_component_not_assigned_yet_is_not_missing_in_the_csv():
    table = list(csv.DictReader(io.StringIO(export_csv.class_csv(UNRELEASED_COURSE, [unreleased_grades("s1")]))))
    assert table[0]["missing"] == "hw2 exam" and table[0]["hw3"] == "0"


def test_a_score_counts_even_where_the_assignment_is_not_released():
    earned = {"hw3": Earned(Decimal(5), Decimal(10))}  # e.g. graded elsewhere before its reference was added here
    hw3 = standing(UNRELEASED_COURSE, "s1", earned, not_assigned={"hw3"}).scores[2]
    assert (hw3.points, hw3.status, hw3.assigned) == (Decimal("7.50"), "", True)


UNRELEASED_CLASS = [unreleased_grades("ann"), unreleased_grades("bob", hw1=False), unreleased_grades("<b>eve</b>")]
LINKS = {"ann": "feedback/ann.html", "bob": "feedback/bob.html", "<b>eve</b>": "feedback/_b_eve__b_.html"}


def test_the_class_report_says_not_assigned_yet_and_draws_no_empty_histogram():
    page = class_report.class_html(UNRELEASED_COURSE, UNRELEASED_CLASS, {}, LINKS)
    rows = table_rows(page)
    assert rows["NLP (hw3)"] == ["15", "0", "not assigned yet", "–", "–"]
    assert rows["Convolution (hw2)"] == ["10", "0", "3", "–", "–"]
    assert rows["Backprop (hw1)"] == ["15", "2", "1", "9.00", "9.00"]
    assert "Not assigned yet, so not drawn: hw3." in page


def test_the_class_report_lists_the_students_linked_to_their_feedback():
    page = class_report.class_html(UNRELEASED_COURSE, UNRELEASED_CLASS, {}, LINKS)
    assert '<a href="#students">' in page and '<h2 id="students">' in page
    students = page[page.index('<h2 id="students">'):]
    assert '<a href="feedback/ann.html">ann</a>' in students and '<a href="feedback/bob.html">bob</a>' in students
    assert '<a href="feedback/_b_eve__b_.html">&lt;b&gt;eve&lt;/b&gt;</a>' in students and "<b>" not in students
    rows = table_rows(students)
    assert rows["Student"] == ["hw1", "hw2", "exam", "Total", "Grade"]  # hw3, not assigned yet, has no column
    assert rows['<a href="feedback/bob.html">bob</a>'] == ["missing", "missing", "missing", "0.00", "0"]
    assert rows['<a href="feedback/ann.html">ann</a>'] == ["9.00", "missing", "missing", "9.00", "1"]
    assert "Not assigned yet, so not shown: hw3." in students


def test_a_link_cannot_leave_its_attribute():
    assert '<a href="a%22%3E%3Cscript%3E.html">x</a>' in class_report.page.table(["s"], [[class_report.page.Link("x", 'a"><script>.html')]])[2]


def test_the_class_report_puts_each_legend_before_its_chart():
    page = class_report.class_html(COURSE, CLASS[:20], CLASS_RESULTS)
    sections = page.split("<h2>")[1:]
    assert [s.split("</h2>")[0] for s in sections][:3] == ["Scores per component", "Checks passed in hw1", "Final grades"]
    hw1 = sections[1]
    assert 'class="legend">A bar per check' in hw1 and "public" in hw1 and "hidden" in hw1
    assert hw1.index('class="legend"') < hw1.index("<img")
    assert page.index("Mean and median are over the graded students") < page.index("<table>")


def cuda_results() -> list[SubmissionResult]:
    """Three submissions: a .cuda twin skipped for all; a check skipped for one submission only."""
    def result(passed: bool, conv_ran: bool):
        return make_result(
            CheckResult("conv.forward", 1.0 if passed else 0.0, 1.0, "passed" if passed else "failed", "", "public"),
            CheckResult("conv.forward.cuda", 1.0 if passed else 0.0, 1.0, "skipped", "skipped: no CUDA device", "hidden"),
            CheckResult("conv.timed", 1.0 if conv_ran else 0.0, 1.0, "passed" if conv_ran else "skipped", "", "hidden"),
        )
    return [result(True, True), result(False, True), result(False, False)]


def test_checks_skipped_for_every_submission_are_left_out_of_the_pass_rates():
    results = cuda_results()
    passed, ran, skipped_for_all = class_report._pass_counts(results)
    assert (passed, ran, skipped_for_all) == ({"conv.forward": 1, "conv.timed": 2}, {"conv.forward": 3, "conv.timed": 2},
                                              ["conv.forward.cuda"])
    page = class_report.class_html(COURSE, [], {"hw1": results})
    assert "Left out: 1 check skipped for every submission" in page and "conv.forward.cuda." in page
    # Two bars, not three: as tall as a chart of two checks that all ran.
    two = make_result(*(CheckResult(f"c{i}", 1.0, 1.0, "passed", "", "public") for i in range(2)))
    charts = class_report.chart_pngs(COURSE, [], {"hw1": results, "exam": [two]})
    assert png_size(charts[class_report.pass_rates_chart("hw1")]) == png_size(charts[class_report.pass_rates_chart("exam")])
    # The legend's colours are those of the bars drawn: no hidden swatch where every hidden check was skipped.
    only_cuda_hidden = [make_result(*r.checks[:2]) for r in results]
    legend = class_report._pass_rates_legend(only_cuda_hidden)
    assert "</span>public" in legend and "</span>hidden" not in legend


def test_feedback_names_the_checks_not_passed_above_the_table():
    page = feedback.html(COURSE, grades_of(), {"hw1": RESULT})
    summary = ("3 of 7 checks passed; not passed: activations.Sigmoid.backward (failed), activations.ReLU.backward.cuda "
               "(skipped), backprop.Linear.forward (timeout), backprop.Linear.backward (error)")
    assert f"<p>{summary}</p>" in page and page.index(summary) < page.index("<th>Check</th>")
    assert feedback.markdown(COURSE, grades_of(), {"hw1": RESULT}).count("3 of 7 checks passed; not passed") == 1
    many = make_result(*(CheckResult(f"c{i}", 0.0, 1.0, "failed", "", "hidden") for i in range(13)))
    assert "c9 (failed) and 3 more (see the table)" in feedback.html(COURSE, grades_of(), {"hw1": many})


# The terminal table of one result, as `check` prints it


def test_the_terminal_lists_stubs_once_and_shows_real_failures_and_same_messages_once():
    stub_error = ("units.f(float64[3]) raised NotImplementedError at units.py:4 in f: f: write your solution here\n"
                  "  File \"units.py\", line 4, in f\nNotImplementedError: f: write your solution here")
    own_error = "units.g(float64[3]) raised NotImplementedError at units.py:9 in g: not for negative x"  # raised by written code
    missing = "other.py could not be imported, so none of its checks ran: other.py is missing"
    result = make_result(
        CheckResult("units.f.values", 0, 1, "error", stub_error, "public"),
        CheckResult("units.f.shapes", 0, 0.5, "error", stub_error, "public"),
        CheckResult("units.g.values", 0, 1, "error", own_error, "public"),
        CheckResult("units.h.values", 0, 1, "failed", "units.h(x): wrong values\nexpected: [1.0]\ngot:      [2.0]", "public"),
        CheckResult("other.k.values", 0, 1, "error", missing, "public"),
        CheckResult("other.k.shapes", 0, 1, "error", missing, "public"),
        CheckResult("units.m.values", 1, 1, "passed", "", "public"), notes=())
    console = Console(width=100, record=True)
    terminal.render(result, console, [Stub("units.py", 4, "f"), Stub("units.py", 20, "K.step")])
    text = console.export_text()
    assert "units.f.values" not in text and "write your solution here" not in text  # waits on a stub: listed below instead
    assert "units.g.values (error)" in text and "not for negative x" in text  # a NotImplementedError of its own is a failure
    assert "units.h.values (failed)" in text and "expected: [1.0]\ngot:      [2.0]" in text
    assert text.count("other.py is missing") == 1 and "other.k.values and 1 more check(s) with the same message (error)" in text
    assert "not written yet, so 2 check(s) worth 1.5 point(s) score 0: these still raise NotImplementedError" in text
    assert re.search(r"units\.py: +f, K \(step\)", text)
    assert text.rstrip().endswith("1 / 6.5 points; 1 of 7 checks passed")
