"""The result as a table in the terminal, failures spelled out below it (like pytest)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autograder.engine.results import SubmissionResult

STYLES = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "skipped": "dim"}


def render(result: SubmissionResult, console: Console) -> None:
    table = Table(title=f"{result.assignment} — {result.student}", title_justify="left")
    table.add_column("check")
    table.add_column("visibility")
    table.add_column("status")
    table.add_column("points", justify="right")
    for check in result.checks:
        table.add_row(
            check.id,
            check.visibility,
            Text(check.status, style=STYLES[check.status]),
            f"{check.score:g} / {check.max_score:g}",
        )
    console.print(table)
    failures = [c for c in result.checks if c.status != "passed"]
    for check in failures:
        console.rule(Text(f"{check.id} ({check.status})", style=STYLES[check.status]), align="left")
        console.print(Text(check.message or "(no message)"))
    passed = len(result.checks) - len(failures)
    console.print(
        Text(f"{result.score:g} / {result.max_score:g} points; {passed} of {len(result.checks)} checks passed", style="bold")
    )
