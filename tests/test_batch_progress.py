"""What `batch` shows while it runs and after: whom it grades, the time left from the rate observed in
this run (driven here with a clock of our own), every student's score, the checks failed most often."""

from __future__ import annotations

import io

from rich.console import Console

from autograder.batch.run import Outcome
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.gradebook.store import Gradebook
from autograder.reports.batch_terminal import ALL_SCORES_UP_TO, SCORES_SHOWN, BatchProgress, summary


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def log_console() -> Console:
    """What CI logs get: no terminal, so a line per event."""
    return Console(file=io.StringIO(), width=200)


def graded(student: str, seconds: float, score: float = 3.0) -> Outcome:
    return Outcome(student, "graded", score, 3.0, seconds)


def display(progress: BatchProgress) -> str:
    """The live display as a terminal would show it now."""
    probe = Console(file=io.StringIO(), width=160, record=True)
    probe.print(*progress.progress.get_renderables())
    return probe.export_text()


def test_the_log_names_whom_it_grades_and_gives_the_time_left_from_the_observed_rate():
    clock, console = Clock(), log_console()
    progress = BatchProgress(console, "hw1", clock=clock)
    progress.on_start(6, graders=2)
    progress.on_busy(["ann", "bob"])
    clock.now += 41  # the first results take long: the graders start
    progress.on_busy(["bob", "cat"])  # ann's grader took cat before ann's result was recorded
    progress.on_outcome(graded("ann", 40.0))
    clock.now += 0.2  # two results a moment apart: no reason to think the rest comes at once
    progress.on_busy(["cat", "dan"])
    progress.on_outcome(graded("bob", 40.0))
    lines = console.file.getvalue().splitlines()
    assert lines[:2] == ["grading 6 submission(s) of hw1, 2 at a time", "grading ann, bob"]
    # 5 left, 2 at a time, 40 s each: 100 s; then 4 left: 80 s.
    assert lines[2] == "[1/6] ann: 3/3 (40.0 s); about 1 min 40 s left; grading bob, cat"
    assert lines[3] == "[2/6] bob: 3/3 (40.0 s); about 1 min 20 s left; grading cat, dan"


def test_the_time_left_follows_the_median_submission_and_the_graders_left_busy():
    clock = Clock()
    progress = BatchProgress(log_console(), "hw1", clock=clock)
    progress.on_start(10, graders=4)
    assert progress.seconds_left() is None and progress.rate_text() == ""
    for student, seconds in (("a", 30.0), ("b", 4.0), ("c", 5.0)):  # a: its grader's start; the median is 5 s
        progress.on_outcome(graded(student, seconds))
    assert progress.seconds_left() == 7 * 5.0 / 4 and progress.rate_text() == "48.0/min"
    for student in "defgh":
        progress.on_outcome(graded(student, 5.0))
    assert progress.seconds_left() == 2 * 5.0 / 2  # two left: two graders busy, not four
    # Results not graded in this run do not move the rate; one whose grader died counts, without a time.
    progress.on_outcome(Outcome("x", "unchanged"))
    progress.on_outcome(Outcome("i", "ungraded", detail="its grader was killed by SIGKILL, twice"))
    assert progress.done == 9 and progress.seconds_left() == 5.0


def test_the_time_left_leaves_out_each_graders_first_submission_once_later_ones_are_in():
    progress = BatchProgress(log_console(), "hw1", clock=Clock())
    progress.on_start(8, graders=2)
    progress.on_outcome(graded("a", 14.0))
    progress.on_outcome(graded("b", 13.5))
    assert progress.seconds_left() == 6 * 13.75 / 2  # all there is to go by
    progress.on_outcome(graded("c", 3.0))
    assert progress.seconds_left() == 5 * 3.0 / 2


def test_the_terminal_shows_whom_it_grades_for_how_long_and_says_when_the_time_left_is_known():
    clock = Clock()
    progress = BatchProgress(log_console(), "hw1", clock=clock)
    progress.on_start(6, graders=2)
    progress.on_busy(["ann", "bob"])
    clock.now += 12
    shown = display(progress)
    assert "0/6" in shown and "now: ann (12 s), bob (12 s)" in shown
    assert "time left: known after the first result" in shown
    progress.on_busy(["bob", "cat"])
    progress.on_outcome(graded("ann", 12.0))
    clock.now += 3
    shown = display(progress)
    assert "1/6" in shown and "now: bob (15 s), cat (3 s)" in shown and "ann" not in shown
    assert "about 30 s left" in shown and "10.0/min" in shown  # 5 left, 12 s each, 2 at a time
    for student in ("bob", "cat", "dan", "eve", "fay"):
        progress.on_outcome(graded(student, 12.0))
    shown = display(progress)
    assert "6/6" in shown and "done" in shown and "left" not in shown and "now:" not in shown
    nothing = BatchProgress(log_console(), "hw1", clock=Clock())
    nothing.on_start(0, graders=2)  # every submission unchanged since last graded
    assert "done" in display(nothing) and "known after" not in display(nothing)


def test_a_student_id_cannot_drive_the_terminal():
    progress = BatchProgress(log_console(), "hw1", clock=Clock())
    progress.on_start(1)
    progress.on_busy(["\x1b[2Jmallory"])
    assert "\x1b" not in display(progress) and "mallory" in display(progress)
    assert "\x1b" not in progress.console.file.getvalue()


def summary_text(scores: dict[str, float], outcomes=(), show_all=False, failures=()) -> str:
    console = Console(file=io.StringIO(), width=200)
    summary(console, "hw1", list(outcomes), scores, 3.0, list(failures), show_all)
    return console.file.getvalue()


def score_lines(text: str) -> list[str]:
    """The students' rows of the scores table, as "student score"."""
    return [" ".join(cell.strip() for cell in line.split("│")[1:3]) for line in text.splitlines()
            if line.startswith("│") and "/3" in line]


def test_the_summary_lists_every_students_score_lowest_first():
    text = summary_text({"ann": 3.0, "bob": 0.5, "cat": 2.0}, [graded("bob", 1.0, 0.5), Outcome("ann", "unchanged")])
    assert "hw1 scores, lowest first" in text
    assert score_lines(text) == ["bob 0.5/3", "cat 2/3", "ann 3/3"]
    assert text.count("graded now") == 1  # only bob was graded in this run


def test_a_large_class_gets_its_lowest_and_highest_scores_and_all_of_them_with_all():
    assert (SCORES_SHOWN, ALL_SCORES_UP_TO) == (10, 30)
    scores = {f"s{i:02d}": i / 20 for i in range(ALL_SCORES_UP_TO)}
    assert len(score_lines(summary_text(scores))) == ALL_SCORES_UP_TO  # up to 30: every one
    scores = {f"s{i:02d}": i / 20 for i in range(45)}
    text = summary_text(scores)
    assert "10 lowest and 10 highest of 45 scores (--all: every one)" in text and "... 25 more" in text
    assert [line.split()[0] for line in score_lines(text)] == [f"s{i:02d}" for i in [*range(10), *range(35, 45)]]
    assert len(score_lines(summary_text(scores, show_all=True))) == 45


def test_skipped_checks_are_not_among_the_checks_failed_most_often(tmp_path):
    def result(student: str, passed: bool) -> SubmissionResult:
        status = "passed" if passed else "failed"
        return SubmissionResult("hw2", student, [
            CheckResult("conv.timed", float(passed), 1.0, status, "", "hidden"),
            CheckResult("conv.timed.cuda", float(passed), 1.0, "skipped", "skipped: no CUDA device", "hidden"),
        ], "namespace", [])

    with Gradebook(tmp_path / "gradebook.sqlite") as gradebook:
        for student, passed in (("ann", True), ("bob", False), ("cat", False)):
            gradebook.record(result(student, passed), f"hash-{student}", "v1", 1.0)
        failures = gradebook.failures_by_check("hw2")
    assert failures == [("conv.timed", 2, 3), ("conv.timed.cuda", 0, 0)]
    text = summary_text({"ann": 2.0}, failures=failures)
    assert "conv.timed" in text and "2 of 3" in text and "conv.timed.cuda" not in text


def test_on_a_cluster_the_log_and_summary_say_which_worker_graded_whom_how_fast_and_in_which_sandbox():
    outcomes = [Outcome("ann", "graded", 3.0, 3.0, 2.0, worker="host-a-0", sandbox="namespace"),
                Outcome("bob", "graded", 1.0, 3.0, 4.0, worker="host-a-0", sandbox="namespace"),
                Outcome("cat", "graded", 3.0, 3.0, 1.0, worker="[red]host-b-0", sandbox="process")]
    progress = BatchProgress(log_console(), "hw1", clock=Clock())
    progress.on_start(3, 2)
    progress.on_outcome(outcomes[0])
    assert "[1/3] ann: 3/3 (2.0 s on host-a-0)" in progress.console.file.getvalue()
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:6]]
            for line in summary_text({"ann": 3.0, "bob": 1.0, "cat": 3.0}, outcomes).splitlines()
            if line.startswith("│") and "host-" in line}
    assert rows == {"host-a-0": ["namespace", "2", "6.0", "3.0 s"], "[red]host-b-0": ["process", "1", "1.0", "1.0 s"]}
    assert "warning: [red]host-b-0 graded in the process sandbox" in summary_text({}, outcomes)
    assert "graded per worker" not in summary_text({"ann": 3.0}, [graded("ann", 1.0)])  # a local batch
