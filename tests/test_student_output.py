"""What `check --ci` marks on a student's files when some are still stubs: one warning per function not
written yet, on its line, in place of an error per check that ran into it; real failures stay errors."""

from pathlib import Path

from autograder.engine.results import CheckResult, SubmissionResult
from autograder.reports.ci import annotations
from autograder.submission.stubs import Stub, stubs_of


def test_ci_annotations_mark_each_stub_once_and_each_real_failure():
    stub = "activations.Sigmoid().forward(float64[4]) raised NotImplementedError at activations.py:18 in forward: write it"
    result = SubmissionResult("hw1", "local", [
        CheckResult("activations.Sigmoid.forward", 0, 0.125, "error", stub, "public"),
        CheckResult("activations.Sigmoid.backward", 0, 0.125, "error", stub, "public"),
        CheckResult("activations.Tanh.forward", 0, 0.125, "failed", "wrong values", "public")])
    stubs = stubs_of({"activations.py": "\n" * 15 + "class Sigmoid:\n    def forward(self, x):\n        raise NotImplementedError('write it')\n"})
    assert stubs == [Stub("activations.py", 18, "Sigmoid.forward")]
    assert annotations(result, Path("hw1"), stubs) == [
        "::error file=hw1/activations.py,title=activations.Tanh.forward (failed%2C 0 / 0.125)::wrong values",
        "::warning file=hw1/activations.py,line=18,title=not written yet%3A Sigmoid.forward::Sigmoid.forward still raises "
        "NotImplementedError: 2 check(s) worth 0.25 point(s) score 0 (activations.Sigmoid.forward, activations.Sigmoid.backward)"]
