"""A batch in the terminal: a progress bar with rate and ETA while it runs (a
line per submission when no one watches, as in CI logs), a summary after."""

from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from autograder.reports.safe_text import clean

ACTIONS = ("graded", "broken", "unchanged", "failed", "ungraded")
CHECKS_SHOWN = 10


class BatchProgress:
    """on_start / on_outcome callbacks for run_batch, drawing on console."""

    def __init__(self, console: Console, assignment: str):
        self.console, self.assignment = console, assignment
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("grading {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self.task = None
        self.started = time.monotonic()
        self.done = self.total = 0

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def on_start(self, to_grade: int) -> None:
        self.total, self.started = to_grade, time.monotonic()
        self.task = self.progress.add_task(self.assignment, total=to_grade, rate="")
        if not self.live:
            self.console.print(f"grading {to_grade} submission(s) of {self.assignment}")

    def on_outcome(self, outcome) -> None:
        if outcome.action not in ("graded", "failed", "ungraded") or outcome.earlier:  # not graded in this run
            return
        self.done += 1
        per_minute = self.done / max(time.monotonic() - self.started, 1e-9) * 60
        self.progress.update(self.task, advance=1, rate=f"{per_minute:.1f}/min")
        if not self.live:
            score = f"{outcome.score:g}/{outcome.max_score:g}" if outcome.action == "graded" else \
                f"FAILED: {outcome.detail}" if outcome.action == "failed" else f"NOT GRADED: {outcome.detail}"
            line = f"[{self.done}/{self.total}] {outcome.student}: {score} ({outcome.seconds:.1f} s)"
            self.console.print(clean(line, multiline=False), markup=False, emoji=False)


def summary(console: Console, assignment: str, outcomes: list, scores: list[float], max_score: float, failures_by_check) -> None:
    """What this run did, the assignment's scores over the whole gradebook, and the checks most often failed."""
    counts = {action: sum(o.action == action for o in outcomes) for action in ACTIONS}
    console.print(
        f"{assignment}: {counts['graded']} graded, {counts['broken']} broken (recorded with the reason), "
        f"{counts['unchanged']} unchanged since last graded (skipped), {counts['failed'] + counts['ungraded']} not graded (see below)"
    )
    table = Table(title=f"{assignment} in the gradebook", title_justify="left")
    for column in ("submissions", "mean", "median", "min", "max", "full score"):
        table.add_column(column, justify="right")
    if scores:
        table.add_row(
            str(len(scores)), f"{statistics.fmean(scores):.2f}", f"{statistics.median(scores):g}",
            f"{min(scores):g}", f"{max(scores):g}", str(sum(s >= max_score for s in scores)),
        )
    console.print(table)
    failing = sorted((row for row in failures_by_check if row[1]), key=lambda row: -row[1])[:CHECKS_SHOWN]
    if failing:
        checks = Table(title="checks failed most often", title_justify="left")
        checks.add_column("check")
        checks.add_column("students failing", justify="right")
        for check_id, failed, graded in failing:
            checks.add_row(check_id, f"{failed} of {graded}")
        console.print(checks)
    for outcome in outcomes:
        if outcome.action == "broken":
            console.print(clean(f"broken: {outcome.student}: {outcome.detail}"), markup=False, emoji=False)
        elif outcome.action in ("failed", "ungraded"):
            console.print(clean(f"NOT GRADED: {outcome.student}: {outcome.detail}"), style="red", markup=False, emoji=False)
