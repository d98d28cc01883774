"""`autograder batch`, `import` and `export`, run as an instructor runs them, on
a small course (tests/fixtures/tinycourse: one function, one exam) so that a
class of students grades in seconds."""

import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from xml.etree import ElementTree
from pathlib import Path

import pytest

from click.testing import CliRunner

from autograder.cli import main
from autograder.engine.course import load_course
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.gradebook.store import Gradebook, GradebookError
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
RIGHT = "def double(x):\n    return x + x\n"
WRONG = "def double(x):\n    return 3 * x\n"
SANDBOX = sandbox_for_tests().name


def autograder(*args, check=True, timeout=300):
    """The command in a process of its own, as an instructor runs it."""
    run = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run


def command(*args, check=True):
    """The command in this process (no torch import to wait for): for those that start no worker."""
    run = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if check:
        assert run.exit_code == 0, f"exit {run.exit_code}\n{run.stdout}\n{run.stderr}"
    run.returncode = run.exit_code
    return run


def make_class(folder: Path, students: dict[str, str | None]) -> Path:
    """One folder per student holding scale.py with the given source (None: an empty folder)."""
    for student, source in students.items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        if source is not None:
            (folder / student / "scale.py").write_text(source)
    return folder


def batch(source: Path, db: Path, *extra, check=True):
    """One grading worker unless extra says otherwise (a later --workers wins): a worker's template
    costs 2 s of CPU to start, and make test runs two test processes already."""
    return autograder(
        "batch", "tiny", str(source), "--db", str(db), "--root", str(TINY), "--sandbox", SANDBOX, "--workers", "1", *extra,
        check=check,
    )


def rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as connection:
        found = connection.execute("SELECT student, score, max_score, graded_at FROM submissions WHERE assignment = 'tiny'").fetchall()
    students = [r[0] for r in found]
    assert len(students) == len(set(students)), f"a student appears twice: {students}"
    return {r[0]: r[1:] for r in found}


def test_a_class_is_graded_once_then_only_what_changed(tmp_path):
    source = make_class(tmp_path / "class", {"ann": RIGHT, "bob": WRONG, "cat": None, "dan": "def double(x:\n"})
    db = tmp_path / "gradebook.sqlite"
    first = batch(source, db)
    graded = rows(db)
    assert {s: r[:2] for s, r in graded.items()} == {"ann": (3, 3), "bob": (0, 3), "cat": (0, 3), "dan": (0, 3)}
    assert "4 graded" not in first.stderr and "3 graded, 1 broken" in first.stderr
    assert "cat: none of the assignment's files (scale.py) was found" in first.stderr

    again = batch(source, db)
    assert "0 graded, 0 broken (recorded with the reason), 4 unchanged" in again.stderr
    assert rows(db) == graded  # not even the time stamps moved

    (source / "bob" / "scale.py").write_text(RIGHT)
    batch(source, db)
    now = rows(db)
    assert now["bob"][:2] == (3, 3) and now["bob"][2] >= graded["bob"][2]
    assert {s: now[s] for s in ("ann", "cat", "dan")} == {s: graded[s] for s in ("ann", "cat", "dan")}

    forced = batch(source, db, "--force")
    assert "3 graded, 1 broken" in forced.stderr


def test_the_log_names_whom_it_grades_gives_the_time_left_and_every_score(tmp_path):
    source = make_class(tmp_path / "class", {"ann": RIGHT, "bob": WRONG, "cat": RIGHT})
    log = batch(source, tmp_path / "gradebook.sqlite").stderr.splitlines()
    assert "grading 3 submission(s) of tiny" in log and "grading ann" in log
    first, second, third = (next(line for line in log if line.startswith(f"[{i}/3]")) for i in (1, 2, 3))
    assert re.fullmatch(r"\[1/3\] ann: 3/3 \([0-9.]+ s\); (about|under) [0-9]+ s left; grading bob", first), first
    assert re.fullmatch(r"\[2/3\] bob: 0/3 \([0-9.]+ s\); (about|under) [0-9]+ s left; grading cat", second), second
    assert re.fullmatch(r"\[3/3\] cat: 3/3 \([0-9.]+ s\)", third), third
    scores = "\n".join(log[log.index("tiny scores, lowest first"):])
    assert re.findall(r"(\w+) +\W +([0-9.]+/3)", scores)[:3] == [("bob", "0/3"), ("ann", "3/3"), ("cat", "3/3")]


def test_the_stored_result_keeps_checks_notes_and_hidden_messages_value_free(tmp_path):
    source = make_class(tmp_path / "class", {"bob": WRONG})
    (source / "bob" / "extra.py").symlink_to("/etc/passwd")
    db = tmp_path / "gradebook.sqlite"
    batch(source, db)
    with Gradebook(db) as gradebook:
        (stored,) = gradebook.submissions("tiny")
        failing = gradebook.failures_by_check("tiny")
    result = stored.result
    assert [c.id for c in result.checks] == ["scale.double.values", "scale.double.random"]
    assert result.notes == ["left out extra.py: a symbolic link (submit the file itself)"]
    hidden = result.checks[1]
    assert hidden.visibility == "hidden" and "expected" not in hidden.message and "got" not in hidden.message
    assert "expected" in result.checks[0].message  # public checks keep their values
    assert failing == [("scale.double.values", 1, 1), ("scale.double.random", 1, 1)]


def test_a_killed_batch_resumes_without_losing_or_duplicating_anyone(tmp_path):
    students = {f"s{i:02d}": RIGHT if i % 3 else WRONG for i in range(10)}
    source = make_class(tmp_path / "class", students)
    db = tmp_path / "killed.sqlite"
    # What a clean run gives (the first test grades RIGHT and WRONG so).
    clean = {student: (3, 3) if code == RIGHT else (0, 3) for student, code in students.items()}

    command = [sys.executable, "-m", "autograder", "batch", "tiny", str(source), "--db", str(db),
               "--root", str(TINY), "--sandbox", SANDBOX, "--workers", "2"]
    running = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and running.poll() is None:
        if db.exists() and 2 <= len(_committed(db)) < 10:
            break
        time.sleep(0.05)
    assert running.poll() is None, "the batch ended before it could be killed; grade more students"
    running.send_signal(signal.SIGKILL)
    running.wait()
    partial = _committed(db)
    assert 2 <= len(partial) < 10
    _no_grader_survives(running.pid)

    left = list(Path(tempfile.gettempdir()).glob(f"autograder-batch-{running.pid}-*"))
    batch(source, db, "--workers", "2")
    assert left and not any(folder.exists() for folder in left), "the killed batch's copies were not swept"
    resumed = rows(db)
    assert {s: r[:2] for s, r in resumed.items()} == clean
    assert all(resumed[s][2] == partial[s] for s in partial), "a result committed before the kill was graded again"


def _committed(db: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return dict(connection.execute("SELECT student, graded_at FROM submissions"))
    except sqlite3.OperationalError:
        return {}  # the schema is not there yet


def _no_grader_survives(batch_pid: int) -> None:
    """The killed batch's graders (forked children) die with it, and their workers with them."""
    def orphans():
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if b"autograder\0batch" in cmdline and f"\nPPid:\t{batch_pid}\n" not in status and "\nState:\tZ" not in status:
                if b"killed.sqlite" in cmdline:
                    found.append(int(entry))
        return found
    deadline = time.monotonic() + 10
    while orphans() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not orphans(), "graders of the killed batch are still running"


def test_a_zip_and_the_nbgrader_layout_grade_like_folders(tmp_path):
    bulk = tmp_path / "download.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        archive.writestr("ann/scale.py", RIGHT)
        archive.writestr("bob/hw/scale.py", WRONG)
    db = tmp_path / "zip.sqlite"
    batch(bulk, db)
    assert {s: r[:2] for s, r in rows(db).items()} == {"ann": (3, 3), "bob": (0, 3)}

    for student, code in (("ann", RIGHT), ("bob", WRONG)):
        (tmp_path / "course" / "submitted" / student / "tiny").mkdir(parents=True)
        (tmp_path / "course" / "submitted" / student / "tiny" / "scale.py").write_text(code)
    (tmp_path / "course" / "submitted" / "cat" / "other").mkdir(parents=True)
    db = tmp_path / "nbgrader.sqlite"
    batch(tmp_path / "course", db)
    assert {s: r[:2] for s, r in rows(db).items()} == {"ann": (3, 3), "bob": (0, 3)}


def test_batch_refuses_what_is_not_a_class(tmp_path):
    def refused(source: Path, db: Path, says: str):
        run = command("batch", "tiny", str(source), "--db", str(db), "--root", str(TINY), "--sandbox", SANDBOX, check=False)
        assert run.exit_code == 1 and says in run.stderr

    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", tmp_path / "db.sqlite", "no submissions in")
    (tmp_path / "notes.txt").write_text("x")
    refused(tmp_path / "notes.txt", tmp_path / "db.sqlite", "neither a folder nor a zip")
    (tmp_path / "other.sqlite").write_text("not a database at all, but long enough to be read as one " * 20)
    refused(make_class(tmp_path / "class", {"ann": RIGHT}), tmp_path / "other.sqlite", "is not a usable gradebook")


# -- import and export: no grading needed, results are recorded directly -----------------------------


def record(db: Path, student: str, score: float, max_score: float = 3.0) -> None:
    checks = [CheckResult("scale.double.values", score, max_score, "passed" if score == max_score else "failed", "", "public")]
    with Gradebook(db) as gradebook:
        gradebook.record(SubmissionResult("tiny", student, checks), f"hash-{student}", "v1", 1.0)


def test_import_checks_every_line_and_imports_nothing_on_error(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    bad = tmp_path / "exam.csv"
    bad.write_text("student,points\nann,30\nbob,41\ncat,12,5\ndan,x\nann,3\n,4\neve,\"12,5\"\n")
    run = command("import", "exam", str(bad), "--db", str(db), "--root", str(TINY), check=False)
    assert run.returncode == 1
    for problem in ("line 3: bob: points 41 is outside 0 to 40", "line 5: dan: points 'x' is not a number",
                    "line 6: ann appears twice (first on line 2)", "line 7: the student column is empty",
                    "line 8: eve: points '12,5' is not a number (write decimals with a dot)"):
        assert problem in run.stderr
    assert "nothing was imported" in run.stderr
    with Gradebook(db) as gradebook:
        assert gradebook.imported("exam") == {}

    (tmp_path / "noheader.csv").write_text("ann,30\n")
    run = command("import", "exam", str(tmp_path / "noheader.csv"), "--db", str(db), "--root", str(TINY), check=False)
    assert run.returncode == 1 and "must name the columns student and points" in run.stderr
    run = command("import", "quiz", str(bad), "--db", str(db), "--root", str(TINY), check=False)
    assert run.returncode == 1 and "no component 'quiz'; its components: tiny, exam" in run.stderr


def test_export_has_a_row_per_student_a_column_per_component_and_marks_what_is_missing(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    record(db, "ann", 3.0)
    record(db, "bob", 1.0)
    (tmp_path / "exam.csv").write_bytes("\ufeffStudent,Points\nann,40\ncat,25.5\n".encode())  # a spreadsheet's BOM and capitals
    command("import", "exam", str(tmp_path / "exam.csv"), "--db", str(db), "--root", str(TINY))
    out = tmp_path / "grades.csv"
    command("export", "--db", str(db), "--format", "csv", "-o", str(out), "--root", str(TINY))
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(table[0]) == ["student", "tiny", "exam", "total", "grade", "missing", "late"]
    assert table == [
        {"student": "ann", "tiny": "10.00", "exam": "40.00", "total": "50.00", "grade": "5", "missing": "", "late": ""},
        {"student": "bob", "tiny": "3.33", "exam": "0", "total": "3.33", "grade": "0", "missing": "exam", "late": ""},
        {"student": "cat", "tiny": "0", "exam": "25.50", "total": "25.50", "grade": "3", "missing": "tiny", "late": ""},
    ]
    # Re-importing replaces a student's points, never adds a second row.
    (tmp_path / "exam.csv").write_text("student,points\ncat,24.5\n")
    command("import", "exam", str(tmp_path / "exam.csv"), "--db", str(db), "--root", str(TINY))
    printed = command("export", "--db", str(db), "-o", "-", "--root", str(TINY)).stdout
    assert printed.splitlines()[3] == '"cat","0","24.50","24.50","2","tiny",""'  # every cell quoted: see export_csv


def test_export_and_report_take_late_penalties_from_the_stored_submission_times(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    late_policy = 'deadline = 2026-10-05T23:59:00+02:00\n\n[late]\npenalty_per_day = 10\ngrace = 15\ncap = 50\n'
    tiny = (TINY / "course.toml").read_text()
    (course / "course.toml").write_text(tiny.replace('source = "tiny"\n', 'source = "tiny"\n' + late_policy))
    db = tmp_path / "gradebook.sqlite"
    check = CheckResult("scale.double.values", 3.0, 3.0, "passed", "", "public")
    with Gradebook(db) as gradebook:
        for student, submitted_at in (("ann", "2026-10-05T21:00:00Z"), ("bob", "2026-10-07T09:00:00Z"), ("cat", "")):
            gradebook.record(SubmissionResult("tiny", student, [check], "process", [], submitted_at, "manifest"), "h", "v1", 1.0)
    printed = command("export", "--db", str(db), "-o", "-", "--root", str(course)).stdout
    assert list(csv.reader(printed.splitlines()[1:])) == [
        ["ann", "10.00", "0", "10.00", "1", "exam", ""], ["bob", "8.00", "0", "8.00", "1", "exam", "tiny 2 days -20%"],
        ["cat", "10.00", "0", "10.00", "1", "exam", ""],
    ]
    command("report", "--db", str(db), "-o", str(tmp_path / "reports"), "--root", str(course))
    bob = (tmp_path / "reports" / "feedback" / "bob.md").read_text()
    assert "submitted 2026-10-07 09:00 UTC (from the manifest), 2 days late: -20% (10.00 -&gt; 8.00)" in bob
    assert "submission time unknown: counted as on time" in (tmp_path / "reports" / "feedback" / "cat.md").read_text()


def test_export_gradescope_and_junit_write_a_file_per_student(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    record(db, "ann", 3.0)
    record(db, "bob", 0.0)
    command("export", "--db", str(db), "--format", "gradescope", "-o", str(tmp_path / "gs"))
    results = json.loads((tmp_path / "gs" / "tiny" / "bob" / "results.json").read_text())
    assert results["score"] == 0 and results["tests"][0]["name"] == "scale.double.values"
    command("export", "--db", str(db), "--format", "junit", "-o", str(tmp_path / "junit"))
    assert sorted(p.name for p in (tmp_path / "junit" / "tiny").iterdir()) == ["ann.xml", "bob.xml"]
    run = command("export", "--db", str(tmp_path / "none.sqlite"), "-o", "-", "--root", str(TINY), check=False)
    assert run.returncode == 1 and "no gradebook at" in run.stderr


def test_the_gradebook_refuses_a_newer_schema(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    Gradebook(db).close()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(GradebookError, match="schema 99"):
        Gradebook(db)


def test_class_grades_follow_the_course_scale(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    record(db, "ann", 1.5)
    with Gradebook(db) as gradebook:
        gradebook.import_points("exam", {"ann": __import__("decimal").Decimal("30")}, "exam.csv")
        (ann,) = gradebook.class_grades(load_course(TINY))
    assert [str(s.points) for s in ann.scores] == ["5.00", "30.00"] and ann.total == 35 and ann.grade == 4


def test_report_writes_the_class_page_and_each_students_feedback(tmp_path):
    db = tmp_path / "gradebook.sqlite"
    record(db, "ann", 3.0)
    record(db, "<script>bob", 1.0)
    command("report", "--db", str(db), "-o", str(tmp_path / "reports"), "--root", str(TINY))
    page = (tmp_path / "reports" / "class.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "Tiny course" in page
    feedback = sorted(p.name for p in (tmp_path / "reports" / "feedback").iterdir())
    assert feedback == ["_script_bob.html", "_script_bob.md", "ann.html", "ann.md"]
    assert "<script>bob" not in (tmp_path / "reports" / "feedback" / "_script_bob.html").read_text()
    assert "10.00 / 10" in (tmp_path / "reports" / "feedback" / "ann.md").read_text()


def test_report_and_export_say_not_assigned_yet_where_no_reference_exists_and_link_each_feedback(tmp_path):
    course = tmp_path / "course"
    (course / "reference" / "tiny").mkdir(parents=True)  # released; "later" is not: it has no reference/later
    later = '[[components]]\nid = "later"\ntitle = "Later"\npoints = 5\nsource = "later"\n'
    (course / "course.toml").write_text((TINY / "course.toml").read_text().replace("total = 50", "total = 55") + later)
    db = tmp_path / "gradebook.sqlite"
    record(db, "ann", 3.0)
    record(db, "<script>bob", 1.0)
    command("report", "--db", str(db), "-o", str(tmp_path / "reports"), "--root", str(course))
    ann = (tmp_path / "reports" / "feedback" / "ann.md").read_text()
    assert "| Later (later) | – / 5 | not assigned yet |  |" in ann and "| Exam (exam) | 0.00 / 40 | missing |  |" in ann
    page = (tmp_path / "reports" / "class.html").read_text()
    assert '<a href="feedback/ann.html">ann</a>' in page and '<a href="feedback/_script_bob.html">&lt;script&gt;bob</a>' in page
    assert "<td>Later (later)</td><td class=\"number\">5</td><td class=\"number\">0</td><td class=\"number\">not assigned yet</td>" in page
    printed = command("export", "--db", str(db), "-o", "-", "--root", str(course)).stdout
    assert [row[-2] for row in csv.reader(printed.splitlines()[1:])] == ["exam", "exam"]  # "later" is not missing


def test_grade_renders_one_result_for_gradescope_and_junit(tmp_path):
    make_class(tmp_path, {"bob": WRONG})
    args = ["grade", "tiny", str(tmp_path / "bob"), "--root", str(TINY), "--sandbox", "process"]
    gradescope = json.loads(autograder(*args, "--format", "gradescope").stdout)
    assert [(t["name"], t["status"], t["visibility"]) for t in gradescope["tests"]] == [
        ("scale.double.values", "failed", "visible"), ("scale.double.random", "failed", "after_published")]
    assert "expected" in gradescope["tests"][0]["output"] and "expected" not in gradescope["tests"][1]["output"]
    junit = ElementTree.fromstring(autograder(*args, "--format", "junit").stdout)
    suite = junit.find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("tiny", "2", "2")
