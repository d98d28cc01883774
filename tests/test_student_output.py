"""What `check --ci` marks on a student's files when some are still stubs: one warning per function not
written yet, on its line, in place of an error per check that ran into it; real failures stay errors.
The job's summary page lists the stubs once and explains the real failures alone."""

from pathlib import Path

from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports.ci import annotations, step_summary
from autograder.submission.stubs import Stub, stubs_of


STUB = "activations.Sigmoid().forward(float64[4]) raised NotImplementedError at activations.py:18 in forward: write it"
RESULT = SubmissionResult("hw1", "local", [
    CheckResult("activations.Sigmoid.forward", 0, 0.125, "error", STUB, "public"),
    CheckResult("activations.Sigmoid.backward", 0, 0.125, "error", STUB, "public"),
    CheckResult("activations.Tanh.forward", 0, 0.125, "failed", "wrong values", "public")])


def sigmoid_stub() -> list[Stub]:
    stubs = stubs_of({"activations.py": "\n" * 15 + "class Sigmoid:\n    def forward(self, x):\n        raise NotImplementedError('write it')\n"})
    assert stubs == [Stub("activations.py", 18, "Sigmoid.forward")]
    return stubs


def test_ci_annotations_mark_each_stub_once_and_each_real_failure():
    result, stubs = RESULT, sigmoid_stub()
    assert annotations(result, Path("hw1"), stubs) == [
        "::error file=hw1/activations.py,title=activations.Tanh.forward (failed%2C 0 / 0.125)::wrong values",
        "::warning file=hw1/activations.py,line=18,title=not written yet%3A Sigmoid.forward::Sigmoid.forward still raises "
        "NotImplementedError: 2 check(s) worth 0.25 point(s) score 0 (activations.Sigmoid.forward, activations.Sigmoid.backward)"]


def test_the_step_summary_lists_the_stubs_once_and_explains_only_real_failures():
    summary = step_summary(RESULT, sigmoid_stub())
    assert "| activations.Sigmoid.forward | public | error | 0 / 0.125 |" in summary  # the table keeps every check
    assert "### activations.Tanh.forward (failed)" in summary and "wrong values" in summary
    assert "### activations.Sigmoid" not in summary and STUB not in summary
    assert "- activations.py: Sigmoid (forward)" in summary.splitlines()
    assert "### activations.Sigmoid.forward (error)" in step_summary(RESULT)  # without the stubs: explained
