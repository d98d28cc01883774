"""`autograder check --ci` inside a CI job: the results where GitHub Actions shows them.

* $GITHUB_STEP_SUMMARY (a file the job appends Markdown to): the checks' table and why
  each public check failed, on the run's summary page;
* workflow commands on standard output (`::error file=...::...`) when GITHUB_ACTIONS is
  "true": each failed check marked on the run and on the file it grades.

Student text goes out cleaned (safe_text) and escaped: percent-encoded in a command (one line,
so it starts no command of its own), escaped Markdown in the summary. The checks' table that
`check` prints before is the student's text too: commands_stopped() keeps the runner from
reading commands in it (`::stop-commands::` with a token the student's code cannot know).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from autograder.engine.results import SubmissionResult
from autograder.reports import feedback
from autograder.reports.safe_text import clean, clean_result
from autograder.submission.stubs import Stub, held_by_stubs

ANNOTATION_CAP = 2000  # characters of a message shown in an annotation; the summary has all of it


def publish(result: SubmissionResult, environ: Mapping[str, str], directory: Path = Path("."), stubs: Sequence[Stub] = ()) -> None:
    """directory: the checked folder, relative to the repository's root (annotations name files by that path);
    stubs: the submission's functions not written yet (submission/stubs.py), each one warning in place of
    an error per check that ran into it."""
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as out:
            out.write(step_summary(result, stubs))
    if environ.get("GITHUB_ACTIONS") == "true":
        for line in annotations(result, directory, stubs):
            print(line, flush=True)


@contextmanager
def commands_stopped(environ: Mapping[str, str]) -> Iterator[None]:
    """In GitHub Actions, no workflow command is read from what is printed inside: a line of the
    student's text such as `::stop-commands::x`, `::add-mask::...` or `##[error]` stays text."""
    if environ.get("GITHUB_ACTIONS") != "true":
        yield
        return
    token = secrets.token_hex(16)  # GitHub resumes at `::<token>::`; the student's code never sees it
    print(f"::stop-commands::{token}", flush=True)
    try:
        yield
    finally:
        print(f"::{token}::", flush=True)


def step_summary(result: SubmissionResult, stubs: Sequence[Stub] = ()) -> str:
    result = clean_result(result)
    passed = sum(c.status == "passed" for c in result.checks)
    verdict = "all public checks pass" if passed == len(result.checks) else f"{len(result.checks) - passed} public check(s) to fix"
    lines = [f"## {feedback.md_inline(result.assignment)}: {result.score:g} / {result.max_score:g} points, {verdict}", ""]
    return "\n".join(lines + feedback.result_markdown(result, stubs)) + "\n"


def annotations(result: SubmissionResult, directory: Path = Path("."), stubs: Sequence[Stub] = ()) -> list[str]:
    result = clean_result(result)
    waiting = held_by_stubs(result.checks, stubs)
    waiting_ids = {check.id for held in waiting.values() for check in held}
    lines = []
    for check in result.checks:
        if check.status == "passed" or check.id in waiting_ids:
            continue
        graded_file = check.id.split(".", 1)[0] + ".py"
        where = f"file={_property(str(directory / graded_file))}"
        raised_at = re.search(rf"\bat {re.escape(graded_file)}:([0-9]+)\b", check.message)
        if raised_at:  # the line that raised, as the message names it
            where += f",line={raised_at[1]}"
        title = f"{check.id} ({check.status}, {check.score:g} / {check.max_score:g})"
        message = check.message[:ANNOTATION_CAP] or "(no message)"
        lines.append(f"::error {where},title={_property(title)}::{_data(message)}")
    for stub, checks in waiting.items():
        where = f"file={_property(str(directory / stub.file))},line={stub.line}"
        message = (f"{stub.function} still raises NotImplementedError: {len(checks)} check(s) worth "
                   f"{sum(c.max_score for c in checks):g} point(s) score 0 ({', '.join(c.id for c in checks)})")
        lines.append(f"::warning {where},title={_property(f'not written yet: {stub.function}')}::{_data(message)}")
    return lines


def _data(text: str) -> str:
    """Escaped as GitHub's workflow commands require: a message stays one line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(clean(text, multiline=False)).replace(":", "%3A").replace(",", "%2C")
