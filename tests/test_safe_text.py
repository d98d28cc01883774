"""Student text at every exit (issue 14, item 3): reports/safe_text.py's clean() on a table of
hostile inputs, then hostile results through every writer, then through the commands an
instructor, a student's CI job and Gradescope run (`grade` in each format, `check --ci`,
`batch`, `report`, `export`) with a real worker grading a hostile submission.

The hostile text arrives by the three ways the issue names: a check's message (what the
student's code raised and printed), a hidden check's summary (the exception class's name is
the student's to choose), and batch notes (names of entries in an uploaded zip)."""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from rich.console import Console

from autograder.batch.intake import discover
from autograder.batch.run import Outcome
from autograder.cli import main
from autograder.engine.course import parse_course
from autograder.engine.grades import Earned, standing
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.engine.runner import failure_verdict
from autograder.protocol.client import StudentError
from autograder.reports import batch_terminal, ci, class_report, export_csv, feedback, gradescope, junit, terminal
from autograder.reports.safe_text import CleanFormatter, clean, clean_result
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
SANDBOX = sandbox_for_tests().name

SURROGATE = "\ud800"  # a lone one: survives JSON, and no encoder writes it
CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"  # the window title, BEL-terminated
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x1b\\"  # OSC 52 writes the clipboard; ST-terminated
CONCEAL = "\x1b[8m"  # SGR 8: what follows is invisible
C1_CSI = "\x9b2J"  # clear screen with the 8-bit CSI
BIDI = "\u202e"  # right-to-left override
FORGED = "\n::error::forged\r::stop-commands::stopped\n##[error]forged too"  # GitHub workflow commands
HOSTILE_MESSAGE = f"bad {SURROGATE} value {CLEAR}{TITLE}{CLIPBOARD}{CONCEAL}hidden {C1_CSI}{BIDI}evil{FORGED} end"
HOSTILE_TYPE = f"Err{TITLE}{CONCEAL}"
FORMULA = '=HYPERLINK("evil.example";"x")'
# What the writers must show of HOSTILE_MESSAGE: every readable word, in order.
READABLE = "bad \ufffd value hidden evil"

# What must never leave: C0 controls but tab and newline, DEL, C1 controls, bidi marks, embeddings,
# overrides and isolates, invisible characters that hide text, surrogates; and line breaks a reader
# may take for \n (CR, NEL, LS, PS).
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064"
                       "\u2066-\u2069\ufeff\ud800-\udfff\U000e0000-\U000e007f]")


def assert_inert(text: str, where: str) -> None:
    found = FORBIDDEN.search(text)
    assert found is None, (
        f"{where}: {found[0]!r} at {found.start()}, in {text[max(0, found.start() - 60):found.start() + 60]!r}")
    text.encode("utf-8")  # strict: raises on what no UTF-8 writer can write


def strings_in(value):
    """Every string inside a parsed JSON value, keys too."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_inert_xml(document: str, where: str) -> ElementTree.Element:
    root = ElementTree.fromstring(document)
    for element in root.iter():
        for text in (element.text or "", element.tail or "", *element.attrib.values()):
            assert_inert(text, f"{where}, <{element.tag}>")
    return root


def assert_csv_cells_stay_text(document: str, where: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(document)))
    for row in rows:
        for cell in row:
            assert_inert(cell, where)
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"{where}: a cell a spreadsheet runs: {cell!r}"
    return rows


# clean(), unit by unit

CASES = [  # (what, given, cleaned keeping lines)
    ("lone surrogate", f"a{SURROGATE}b", "a\ufffdb"),
    ("lone low surrogate", "a\udc80b", "a\ufffdb"),
    ("surrogate pair: its character", "\ud83d\ude00", "\U0001f600"),
    ("clear screen", f"a{CLEAR}b", "ab"),
    ("window title, BEL-terminated", f"a{TITLE}b", "ab"),
    ("OSC 52 clipboard write, ST-terminated: payload too", f"a{CLIPBOARD}b", "ab"),
    ("unterminated OSC: up to the line's end", "a\x1b]0;title\nb", "a\nb"),
    ("SGR 8 concealed text: shown", f"a{CONCEAL}hidden\x1b[0mb", "ahiddenb"),
    ("8-bit CSI", f"a{C1_CSI}b", "ab"),
    ("8-bit OSC ended by 8-bit ST", "a\x9d0;title\x9cb", "ab"),
    ("DCS", "a\x1bP1$r0m\x1b\\b", "ab"),
    ("APC", "a\x1b_payload\x1b\\b", "ab"),
    ("ESC c: terminal reset", "a\x1bcb", "ab"),
    ("lone ESC at the end", "ab\x1b", "ab"),
    ("NUL, BEL, backspace, DEL, other C1", "a\x00\x07\x08\x7f\x80\x8eb", "ab"),
    ("carriage return overwriting a line", "score 0\rscore 15", "score 0\nscore 15"),
    ("CRLF", "a\r\nb", "a\nb"),
    ("NEL, line and paragraph separators", "a\x85b\u2028c\u2029d", "a\nb\nc\nd"),
    ("bidi override and isolates", f"x{BIDI}evil\u202c y \u2066z\u2069", "xevil y z"),
    ("bidi marks", "a\u200eb\u200fc\u061cd", "abcd"),
    ("invisible: zero-width space, word joiner, BOM, tag characters", "a\u200bb\u2060c\ufeffd\U000e0041e", "abcde"),
    ("zero-width joiners stay: emoji sequences, Persian words", "\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
     "\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),
    ("tab and newline stay", "a\tb\nc", "a\tb\nc"),
    ("workflow commands: text (the writer escapes them)", "ok\n::error::forged", "ok\n::error::forged"),
    ("a formula: text (the CSV writer guards it)", FORMULA, FORMULA),
    ("a check's message", "Sigmoid.forward: wrong values in 3 of 4 elements (rtol 1e-07)",
     "Sigmoid.forward: wrong values in 3 of 4 elements (rtol 1e-07)"),
    ("non-ASCII stays", "naïve – 数 ✓ ∑", "naïve – 数 ✓ ∑"),
]


@pytest.mark.parametrize("given, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_clean_takes_out_what_a_terminal_acts_on_and_keeps_the_text(given, expected):
    assert clean(given) == expected
    assert clean(given, multiline=False) == expected.replace("\n", " ").replace("\t", " ")


def test_clean_on_random_hostile_text_leaves_only_inert_text_and_changes_nothing_twice():
    pieces = [SURROGATE, "\udfff", CLEAR, TITLE, CLIPBOARD, CONCEAL, C1_CSI, BIDI, "\x1b", "\x9c", "\x07", "\r", "\n",
              "\t", "\x00", "\x85", "\u2028", "]", ";", "\\", "[", "a", "b", "::", " ", "é", "\U0001f600", "\x1bP", "\x9d",
              "\u200f", "\u200b", "\ufeff", "\U000e0041", "\u200d"]
    draw = random.Random(14)
    for _ in range(3000):
        text = "".join(draw.choice(pieces) for _ in range(draw.randrange(1, 25)))
        for multiline in (True, False):
            cleaned = clean(text, multiline=multiline)
            assert_inert(cleaned, f"clean({text!r}, multiline={multiline})")
            assert multiline or ("\n" not in cleaned and "\t" not in cleaned), (text, cleaned)
            assert clean(cleaned, multiline=multiline) == cleaned, (text, cleaned)


def test_clean_result_cleans_every_text_field_and_leaves_the_stored_result_as_it_was():
    result = hostile_result()
    cleaned = clean_result(result)
    assert_inert(json.dumps(cleaned.to_dict(), ensure_ascii=False), "clean_result")
    assert READABLE in cleaned.checks[0].message and cleaned.score == result.score
    assert result.checks[0].message.startswith(f"scale.double(float64[2, 3]) raised {HOSTILE_TYPE}")  # as given


def test_log_lines_are_clean():
    record = logging.LogRecord("autograder", logging.ERROR, __file__, 1, "check %s crashed: %s", ("x", HOSTILE_MESSAGE), None)
    line = CleanFormatter("%(levelname)s: %(message)s").format(record)
    assert_inert(line, "log line")
    assert line.startswith(f"ERROR: check x crashed: {READABLE}")


# Hostile results through every writer

def hostile_intake(tmp_path: Path):
    """A bulk zip as an LMS gives it, read by the batch's intake: mallory's notes and the class's warnings."""
    bulk = tmp_path / "bulk.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        archive.writestr("ann/scale.py", "def double(x):\n    return x + x\n")
        archive.writestr("mallory/scale.py", hostile_source())
        link = zipfile.ZipInfo(f"mallory/{CLIPBOARD}{TITLE}evil.py")  # left out as a link: a note naming it
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        archive.writestr(f"{CLEAR}{TITLE}loose.py", "")  # in no student's folder: a warning naming it
        archive.writestr(f"{FORMULA}/scale.py", "def double(x):\n    return x + x\n")  # a student id a spreadsheet would run
        archive.writestr(f"eve{BIDI}{C1_CSI}/scale.py", "def double(x):\n    return x + x\n")  # one a terminal would act on
    return bulk


def hostile_source() -> str:
    return (f"Hostile = type({HOSTILE_TYPE!r}, (Exception,), {{}})\n\n\n"
            f"def double(x):\n    print({TITLE + CLEAR + 'printed'!r})\n    raise Hostile({HOSTILE_MESSAGE!r})\n")


def hostile_result(notes=()) -> SubmissionResult:
    """What grading mallory records: the public check's message as the instructor and the student see it,
    the hidden check's summary as the worker's exception makes it (runner.failure_verdict)."""
    raised = StudentError({"type": HOSTILE_TYPE, "message": HOSTILE_MESSAGE, "where": "scale.py:6 in double"},
                          "scale.double(float64[2, 3])")
    verdict = failure_verdict(raised)
    return SubmissionResult("tiny", f"mallory{BIDI}{C1_CSI}", [
        CheckResult("scale.double.values", 0.0, 2.0, verdict.status, verdict.message, "public"),
        CheckResult("scale.double.random", 0.0, 1.0, verdict.status, verdict.summary, "hidden"),
    ], "process", list(notes))


@pytest.fixture(scope="module")
def intake(tmp_path_factory):
    submissions, warnings = discover(hostile_intake(tmp_path_factory.mktemp("intake")), "tiny", ["scale"])
    mallory = next(s for s in submissions if s.student == "mallory")
    assert any("evil.py" in note for note in mallory.notes), mallory.notes  # the zip entry's name is in a note
    assert any("loose.py" in warning for warning in warnings), warnings
    return hostile_result(mallory.notes), warnings


COURSE = parse_course({"course": {"name": "Tiny"}, "components": [
    {"id": "tiny", "title": "One function", "points": 10, "source": "tiny"},
    {"id": "exam", "title": "Exam", "points": 40, "source": "import"}]})


def test_terminal_table_and_batch_lines(intake):
    result, warnings = intake
    console = Console(file=io.StringIO(), width=100)
    terminal.render(result, console)
    grades = [standing(COURSE, student, {"tiny": Earned(Decimal(0), Decimal(3))}) for student in (result.student, FORMULA)]
    terminal.render_gradebook(COURSE, grades, console)
    progress = batch_terminal.BatchProgress(console, "tiny")
    progress.on_start(2)
    failed = Outcome(student=result.student, action="failed", seconds=1.0, detail=HOSTILE_MESSAGE)
    progress.on_outcome(failed)
    broken = Outcome(student=result.student, action="broken", detail=f"{CLIPBOARD}evil.py cannot be read")
    batch_terminal.summary(console, "tiny", [failed, broken], {result.student: 0.0}, 3.0, [("scale.double.values", 1, 1)])
    printed = console.file.getvalue()
    assert_inert(printed, "terminal")
    assert printed.count("raised Err at scale.py:6") == 2  # the public message and the hidden summary
    assert READABLE in printed and "evil.py cannot be read" in printed and "a symbolic link" in printed
    assert "\x1b" not in printed and "\x07" not in printed


def test_json_gradescope_and_junit(intake):
    result, _ = intake
    for name, data in (("json", clean_result(result).to_dict()), ("gradescope", gradescope.results_json(result))):
        text = json.dumps(data, ensure_ascii=False)  # what Gradescope reads: UTF-8, surrogates or not
        assert_inert(text, name)
        for value in strings_in(json.loads(text)):
            assert_inert(value, name)
    outputs = gradescope.results_json(result)
    assert READABLE in outputs["tests"][0]["output"] and "evil.py" in outputs["output"]
    root = assert_inert_xml(junit.junit_xml(result), "junit")
    assert READABLE in root.find("testsuite/testcase/error").text
    assert "evil.py" in root.find("testsuite/system-out").text


def test_markdown_html_and_class_report(intake):
    result, _ = intake
    grades = standing(COURSE, result.student, {"tiny": Earned(Decimal(0), Decimal(3), "; ".join(result.notes))})
    markdown = feedback.markdown(COURSE, grades, {"tiny": result})
    page = feedback.html(COURSE, grades, {"tiny": result})
    report = class_report.class_html(COURSE, [grades], {"tiny": [result]})
    for name, text in (("markdown", markdown), ("html", page), ("class report", report)):
        assert_inert(text, name)
    assert READABLE in markdown and READABLE in page and "evil.py" in markdown and "evil.py" in page
    assert "pwned" not in markdown + page + report and "ZXZpbA" not in markdown + page


def test_markdown_shows_student_text_as_written_never_as_markup():
    notes = ["# heading", "1. a list", "- item", "<img src=x onerror=alert(1)>", "[link](javascript:alert(1))",
             "`code` *strong* _em_ ~~gone~~ $x$ | cell", "threshold_neuron.forward"]
    result = SubmissionResult("tiny", "s1", [CheckResult("scale.double.values", 0, 2, "failed", "m", "public")], "", notes)
    listed = feedback.result_markdown(result)[-len(notes):]
    assert listed == ["- \\# heading", "- 1\\. a list", "- \\- item", "- &lt;img src=x onerror=alert(1)&gt;",
                      "- \\[link\\](javascript:alert(1))", "- \\`code\\` \\*strong\\* \\_em\\_ \\~\\~gone\\~\\~ \\$x\\$ \\| cell",
                      "- threshold_neuron.forward"]


def test_csv_cells_never_run_as_formulas():
    students = [FORMULA, f"{CLEAR}=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "ann"]
    grades = [standing(COURSE, student, {"tiny": Earned(Decimal(1), Decimal(3))}) for student in students]
    rows = assert_csv_cells_stay_text(export_csv.class_csv(COURSE, grades), "class csv")
    assert [row[0] for row in rows[1:]] == [f"'{FORMULA}", "'=1+2", "'+1", "'-1", "'@SUM(A1)", " =1", "ann"]


def test_csv_cells_are_quoted_so_no_separator_inside_one_starts_a_formula():
    """Excel in a locale whose list separator is ; splits an unquoted `x;=1+1` into a cell `=1+1`."""
    grades = [standing(COURSE, "x;=1+1;", {"tiny": Earned(Decimal(1), Decimal(3))})]
    row = export_csv.class_csv(COURSE, grades).splitlines()[1]
    assert row.startswith('"x;=1+1;",'), row


def test_github_annotations_stay_one_command_each_and_the_summary_is_inert(intake):
    result, _ = intake
    lines = ci.annotations(result, Path("hw"))
    assert len(lines) == 2, lines
    for line in lines:  # the public check's message and the hidden check's summary
        assert_inert(line, "annotation")
        assert line.startswith("::error file=hw/scale.py,") and "\n" not in line and "\r" not in line, line
    assert "%0A::error::forged%0A::stop-commands::stopped%0A##[error]forged too end" in lines[0], lines[0]
    summary = ci.step_summary(result)
    assert_inert(summary, "step summary")
    assert READABLE in summary and "<" not in summary.replace("&lt;", "")
    # The homework's name heads the summary: in `check --ci` it is whatever the student typed.
    named = ci.step_summary(replace(result, assignment="![x](https://evil.example/i.png) <img src=x>"))
    heading = named.splitlines()[0]
    assert heading.startswith("## !\\[x\\](https://evil.example/i.png) &lt;img src=x&gt;:"), heading


def test_printed_student_text_is_fenced_by_stop_commands_with_a_fresh_token(capsys):
    tokens = []
    for _ in range(2):
        with ci.commands_stopped({"GITHUB_ACTIONS": "true"}):
            print(f"student text{FORGED}")
        first, *inside, last = capsys.readouterr().out.splitlines()
        token = first.removeprefix("::stop-commands::")
        assert re.fullmatch("[0-9a-f]{32}", token) and last == f"::{token}::", (first, last)
        assert token not in "\n".join(inside)
        tokens.append(token)
    assert tokens[0] != tokens[1]
    with ci.commands_stopped({}):  # outside GitHub Actions: nothing of its own
        print("plain")
    assert capsys.readouterr().out == "plain\n"


# The commands, with a real worker grading mallory

def grade(directory: Path, *options: str):
    run = CliRunner().invoke(main, ["grade", "tiny", str(directory), "--root", str(TINY), "--sandbox", SANDBOX, *options])
    assert run.exit_code == 0, f"exit {run.exit_code}\n{run.output}\n{run.exception!r}"
    return run.stdout


@pytest.fixture
def mallory(tmp_path) -> Path:
    (tmp_path / "mallory").mkdir()
    (tmp_path / "mallory" / "scale.py").write_text(hostile_source())
    return tmp_path / "mallory"


@pytest.mark.slow  # four gradings: 30-35 s here
def test_grade_in_every_format(mallory):
    table = grade(mallory)
    assert_inert(table, "grade --format table")
    assert table.count("raised Err at scale.py:6") == 2 and READABLE in table and "printed" in table
    outputs = {}
    for output_format in ("json", "gradescope"):
        outputs[output_format] = json.loads(grade(mallory, "--format", output_format))
        for value in strings_in(outputs[output_format]):
            assert_inert(value, f"grade --format {output_format}")
    assert READABLE in outputs["json"]["checks"][0]["message"] and READABLE in outputs["gradescope"]["tests"][0]["output"]
    root = assert_inert_xml(grade(mallory, "--format", "junit"), "grade --format junit")
    assert READABLE in root.find("testsuite/testcase/error").text


def test_check_ci_in_github_actions(mallory, tmp_path):
    course = shutil.copytree(TINY, tmp_path / "course")
    released = CliRunner().invoke(main, ["release", "tiny", "--root", str(course), "--sandbox", SANDBOX])
    assert released.exit_code == 0, released.output
    folder = shutil.copytree(course / "assignments" / "tiny", tmp_path / "repository" / "tiny")
    shutil.copy(mallory / "scale.py", folder)
    summary = tmp_path / "summary.md"
    run = CliRunner().invoke(main, ["check", "tiny", str(folder), "--ci", "--junit", str(tmp_path / "junit.xml"), "--sandbox",
                                    SANDBOX], env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert run.exit_code == 1, run.output
    assert_inert(run.stdout, "check --ci")
    assert_inert(summary.read_text(encoding="utf-8"), "step summary")
    assert_inert_xml((tmp_path / "junit.xml").read_text(encoding="utf-8"), "check --junit")
    commands, stopped = [], None  # the workflow commands GitHub's runner reads, as it reads them
    for line in run.stdout.splitlines():
        if stopped:
            stopped = None if line == f"::{stopped}::" else stopped
        elif line.lstrip().startswith("::stop-commands::"):
            stopped = line.lstrip().removeprefix("::stop-commands::")
        elif line.lstrip().startswith("::") or "##[" in line:
            commands.append(line)
    assert stopped is None and len(commands) == 1 and commands[0].startswith("::error file="), commands
    assert READABLE in run.stdout and READABLE in summary.read_text(encoding="utf-8")


@pytest.mark.slow  # a batch in a process of its own, then the reports: 30-35 s here
def test_batch_report_and_exports(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    run = subprocess.run([sys.executable, "-m", "autograder", "batch", "tiny", str(hostile_intake(tmp_path)), "--db", str(db),
                          "--root", str(TINY), "--sandbox", SANDBOX, "--workers", "2"],
                         cwd=ROOT, capture_output=True, timeout=300)
    stdout, stderr = run.stdout.decode("utf-8"), run.stderr.decode("utf-8")  # strict: raises on a surrogate
    assert run.returncode == 0, f"exit {run.returncode}\n{stdout}\n{stderr}"
    assert_inert(stdout + stderr, "batch")
    assert "loose.py: not inside a student's folder" in stderr, stderr

    reports = tmp_path / "reports"
    report = CliRunner().invoke(main, ["report", "--db", str(db), "-o", str(reports), "--root", str(TINY)])
    assert report.exit_code == 0, f"{report.output}\n{report.exception!r}"
    written = sorted(path for path in reports.rglob("*") if path.is_file())
    assert {p.name for p in written} >= {"class.html", "ann.md", "ann.html", "mallory.md", "mallory.html"}, written
    for path in written:
        assert_inert(path.read_text(encoding="utf-8"), str(path.relative_to(tmp_path)))
    mallory = (reports / "feedback" / "mallory.md").read_text(encoding="utf-8")
    assert READABLE in mallory and "evil.py: a symbolic link" in mallory

    exported = CliRunner().invoke(main, ["export", "--db", str(db), "-o", "-", "--root", str(TINY)])
    assert exported.exit_code == 0, exported.output
    students = [row[0] for row in assert_csv_cells_stay_text(exported.stdout, "export csv")[1:]]
    assert f"'{FORMULA}" in students and "mallory" in students, students
    for output_format in ("gradescope", "junit"):
        folder = tmp_path / output_format
        done = CliRunner().invoke(main, ["export", "--db", str(db), "--format", output_format, "-o", str(folder)])
        assert done.exit_code == 0, done.output
        for path in (path for path in folder.rglob("*") if path.is_file()):
            text = path.read_text(encoding="utf-8")
            if output_format == "junit":
                assert_inert_xml(text, str(path))
            else:
                for value in strings_in(json.loads(text)):
                    assert_inert(value, str(path))
