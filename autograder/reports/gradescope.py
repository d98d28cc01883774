"""The result as Gradescope's `results.json`
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): one test per check."""

from __future__ import annotations

from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports.safe_text import clean_result

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
DEFAULT_HIDDEN_VISIBILITY = "after_published"  # students see hidden checks' outcomes once grades are published


def counts_as_passed(check: CheckResult) -> bool:
    """Passed, or skipped without losing a point (a CUDA twin scored as its CPU check)."""
    return check.status == "passed" or (check.status == "skipped" and check.score >= check.max_score)


def results_json(result: SubmissionResult, hidden_visibility: str = DEFAULT_HIDDEN_VISIBILITY) -> dict:
    """Gradescope's results.json for result; hidden checks' tests get hidden_visibility and no message."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {', '.join(VISIBILITIES)}, not {hidden_visibility!r}")
    result = clean_result(result)  # valid UTF-8 for Gradescope, and nothing a terminal would act on
    passed = sum(counts_as_passed(c) for c in result.checks)
    summary = (
        f"{result.assignment}: {result.score:g} / {result.max_score:g} points; "
        f"{passed} of {len(result.checks)} checks passed"
    )
    return {
        "score": float(result.score),
        "output": "\n".join([summary, *result.notes]),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_test(check, hidden_visibility) for check in result.checks],
    }


def _test(check: CheckResult, hidden_visibility: str) -> dict:
    status = "passed" if counts_as_passed(check) else "failed"
    if check.visibility == "public":
        output, visibility = check.message or check.status, "visible"
    else:
        # Only the outcome: a hidden check's message is never shown to students.
        detail = "" if check.status == status else f" ({check.status})"
        output, visibility = f"hidden check: {status}{detail}", hidden_visibility
    return {
        "name": check.id,
        "score": float(check.score),
        "max_score": float(check.max_score),
        "status": status,
        "output": output,
        "tags": [check.id.split(".", 1)[0]],
        "visibility": visibility,
    }
