"""A batch in the terminal while it runs and after.

While it runs: a progress bar, the students being graded (how long each has taken so far) and,
once results arrive, the rate and the time left; when no one watches (CI logs), a line per
submission saying the same. The rate is the graders' observed in this run: as many submissions
at once as there are graders, each taking the median time a submission took so far (a median: one
slow submission moves it little), leaving out the first results, one per grader, once later ones
are in (those paid for starting the graders' workers: 14 s against 3 s for hw1). No time left is guessed before
the first result, and none from the spacing of the last few results, as rich's estimate was: two
results a moment apart made it 20 times too short.

After: what this run did, the assignment's scores over the gradebook with every student's score
(a large class: the lowest and highest SCORES_SHOWN, --all for everyone), and the checks failed
most often."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from autograder.reports.safe_text import clean

ACTIONS = ("graded", "broken", "unchanged", "failed", "ungraded")
CHECKS_SHOWN = 10
# A class up to ALL_SCORES_UP_TO students gets every score listed (a screenful); a larger one the lowest and
# highest SCORES_SHOWN: the lowest are whom to look at (broken uploads, stubs), the highest show the ceiling.
SCORES_SHOWN = 10
ALL_SCORES_UP_TO = 30


class BatchProgress:
    """on_start / on_busy / on_outcome callbacks for run_batch, drawing on console; clock: seconds, for tests."""

    def __init__(self, console: Console, assignment: str, clock: Callable[[], float] = time.monotonic):
        self.console, self.assignment, self.clock = console, assignment, clock
        self.live = console.is_terminal
        self.task = None
        self.started = clock()
        self.done = self.total = 0
        self.busy: dict[str, float] = {}  # the students being graded, and since when
        self.graders = 1
        self.durations: list[float] = []  # how long each submission graded in this run took
        self.progress = _Display(
            self.in_flight_line,
            TextColumn("grading {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _Computed(self.rate_text),
            TimeElapsedColumn(),
            _Computed(self.eta_text),
            console=console,
            disable=not self.live,
        )

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.busy.clear()
        self.progress.__exit__(*exc)

    def on_start(self, to_grade: int, graders: int = 1) -> None:
        self.total, self.started, self.graders = to_grade, self.clock(), graders
        self.task = self.progress.add_task(self.assignment, total=to_grade)
        if not self.live:
            at_once = f", {graders} at a time" if graders > 1 else ""
            self.console.print(f"grading {to_grade} submission(s) of {self.assignment}{at_once}")

    def on_busy(self, students: list[str]) -> None:
        """students are being graded now."""
        first = not self.busy and not self.done
        now = self.clock()
        self.busy = {student: self.busy.get(student, now) for student in students}
        if first and not self.live and students:
            self._print(f"grading {', '.join(students)}")

    def on_outcome(self, outcome) -> None:
        self.busy.pop(outcome.student, None)
        if outcome.action not in ("graded", "failed", "ungraded") or outcome.earlier:  # not graded in this run
            return
        self.done += 1
        if outcome.seconds > 0:  # a grader that died reports none
            self.durations.append(outcome.seconds)
        self.progress.update(self.task, advance=1)
        if not self.live:
            score = f"{outcome.score:g}/{outcome.max_score:g}" if outcome.action == "graded" else \
                f"FAILED: {outcome.detail}" if outcome.action == "failed" else f"NOT GRADED: {outcome.detail}"
            where = f" on {outcome.worker}" if outcome.worker else ""
            line = f"[{self.done}/{self.total}] {outcome.student}: {score} ({outcome.seconds:.1f} s{where})"
            if self.done < self.total:
                line += f"; {self.eta_text()}" + (f"; grading {', '.join(self.busy)}" if self.busy else "")
            self._print(line)

    def note(self, text: str) -> None:
        """Something the user should know while the batch runs (a cluster's worker that refuses)."""
        self._print(f"note: {text}")

    def per_second(self) -> float | None:
        """Submissions graded per second at the rate observed in this run; None before the first result."""
        if not self.done:
            return None
        if not self.durations:  # only dead graders so far: what the run managed
            return self.done / max(self.clock() - self.started, 1e-9)
        warm = self.durations[self.graders:] or self.durations  # the first results, one per grader, paid for the starts
        return self.graders / max(statistics.median(warm), 1e-9)

    def seconds_left(self) -> float | None:
        """The time the submissions left take at the observed rate, fewer at once than graders when fewer are left."""
        rate, left = self.per_second(), self.total - self.done
        if rate is None:
            return None
        return left / rate * self.graders / max(1, min(self.graders, left))

    def rate_text(self) -> str:
        rate = self.per_second()
        return "" if rate is None else f"{rate * 60:.1f}/min"

    def eta_text(self) -> str:
        if self.done >= self.total:  # nothing left, a run with nothing to grade included
            return "done"
        left = self.seconds_left()
        if left is None:
            return "time left: known after the first result"
        return f"about {_duration(left)} left" if left >= 1 else "under 1 s left"

    def in_flight_line(self) -> str:
        """e.g. "now: ann (12 s), bob (3 s)"."""
        if not self.busy:
            return ""
        now = self.clock()
        return "now: " + ", ".join(f"{student} ({_duration(now - since)})" for student, since in self.busy.items())

    def _print(self, line: str) -> None:
        self.console.print(clean(line, multiline=False), markup=False, emoji=False)  # student ids come from upload names


class _Display(Progress):
    """The progress bar, with the students being graded on a line below it."""

    def __init__(self, status: Callable[[], str], *columns, **options):
        self.status = status  # first: Progress draws while it starts
        super().__init__(*columns, **options)

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        line = self.status()
        if line:
            yield Text(clean(line, multiline=False), no_wrap=True, overflow="ellipsis")


class _Computed(ProgressColumn):
    """A column whose text is computed at each refresh (the time left goes down between results)."""

    def __init__(self, text: Callable[[], str]):
        super().__init__()
        self.text = text

    def render(self, task) -> Text:
        return Text(self.text())


def _duration(seconds: float) -> str:
    """e.g. "42 s", "3 min 5 s", "1 h 20 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def summary(console: Console, assignment: str, outcomes: list, scores: dict[str, float], max_score: float,
            failures_by_check, show_all: bool = False) -> None:
    """What this run did, the assignment's scores over the whole gradebook (scores: by student), each student's
    score (all, or the lowest and highest SCORES_SHOWN of a class over ALL_SCORES_UP_TO unless show_all),
    and the checks most often failed."""
    counts = {action: sum(o.action == action for o in outcomes) for action in ACTIONS}
    console.print(
        f"{assignment}: {counts['graded']} graded, {counts['broken']} broken (recorded with the reason), "
        f"{counts['unchanged']} unchanged since last graded (skipped), {counts['failed'] + counts['ungraded']} not graded (see below)"
    )
    values = list(scores.values())
    table = Table(title=f"{assignment} in the gradebook", title_justify="left")
    for column in ("submissions", "mean", "median", "min", "max", "full score"):
        table.add_column(column, justify="right")
    if values:
        table.add_row(
            str(len(values)), f"{statistics.fmean(values):.2f}", f"{statistics.median(values):g}",
            f"{min(values):g}", f"{max(values):g}", str(sum(s >= max_score for s in values)),
        )
    console.print(table)
    if scores:
        _print_scores(console, assignment, outcomes, scores, max_score, show_all)
    failing = sorted((row for row in failures_by_check if row[1]), key=lambda row: -row[1])[:CHECKS_SHOWN]
    if failing:
        checks = Table(title="checks failed most often", title_justify="left")
        checks.add_column("check")
        checks.add_column("students failing", justify="right")
        for check_id, failed, graded in failing:
            checks.add_row(check_id, f"{failed} of {graded}")
        console.print(checks)
    _print_workers(console, outcomes)
    for outcome in outcomes:
        if outcome.action == "broken":
            console.print(clean(f"broken: {outcome.student}: {outcome.detail}"), markup=False, emoji=False)
        elif outcome.action in ("failed", "ungraded"):
            console.print(clean(f"NOT GRADED: {outcome.student}: {outcome.detail}"), style="red", markup=False, emoji=False)


def _print_workers(console: Console, outcomes: list) -> None:
    """On a cluster (batch --cluster): what each worker graded in this run, how fast, and in which sandbox."""
    by_worker: dict[str, list] = {}
    for outcome in outcomes:
        if outcome.worker:
            by_worker.setdefault(outcome.worker, []).append(outcome)
    if not by_worker:
        return
    table = Table(title="graded per worker", title_justify="left")
    for column, justify in (("worker", "left"), ("sandbox", "left"), ("submissions", "right"), ("seconds grading", "right"),
                            ("per submission", "right")):
        table.add_column(column, justify=justify)
    for worker, graded in sorted(by_worker.items()):
        seconds = [outcome.seconds for outcome in graded]
        sandboxes = ", ".join(sorted({outcome.sandbox for outcome in graded if outcome.sandbox}))
        table.add_row(Text(clean(worker, multiline=False)), Text(clean(sandboxes, multiline=False)), str(len(graded)),
                      f"{sum(seconds):.1f}", f"{statistics.fmean(seconds):.1f} s")
    console.print(table)
    exposed = sorted(worker for worker, graded in by_worker.items() if any(o.sandbox == "process" for o in graded))
    if exposed:
        console.print(clean(f"warning: {', '.join(exposed)} graded in the process sandbox, where student code is not "
                            f"isolated from the worker; pass --sandbox namespace to have such workers refuse instead"),
                      style="yellow", markup=False, emoji=False)


def _print_scores(console: Console, assignment: str, outcomes: list, scores: dict[str, float], max_score: float,
                  show_all: bool) -> None:
    """Every student's score, lowest first; a class over ALL_SCORES_UP_TO: the lowest and highest SCORES_SHOWN."""
    ranked = sorted(scores.items(), key=lambda item: (item[1], item[0]))
    graded_now = {o.student for o in outcomes if o.action in ("graded", "broken")}
    mark = bool(graded_now) and not graded_now.issuperset(scores)  # which are new: worth a column when only some are
    cut = not show_all and len(ranked) > ALL_SCORES_UP_TO
    title = f"{assignment} scores, lowest first" if not cut else \
        f"{assignment}: {SCORES_SHOWN} lowest and {SCORES_SHOWN} highest of {len(ranked)} scores (--all: every one)"
    table = Table()
    table.add_column("student")
    table.add_column("score", justify="right")
    if mark:
        table.add_column("")
    shown = ranked[:SCORES_SHOWN] + [None] + ranked[-SCORES_SHOWN:] if cut else ranked
    for row in shown:
        if row is None:
            table.add_row(Text(f"... {len(ranked) - 2 * SCORES_SHOWN} more", style="dim"), "", *[""] * mark)
            continue
        student, score = row
        cells = [Text(clean(student, multiline=False)), f"{score:g}/{max_score:g}"]
        table.add_row(*cells, *[Text("graded now", style="dim") if student in graded_now else ""] * mark)
    console.print(title, style="italic", markup=False)  # above the table: as its title it would wrap to its width
    console.print(table)
