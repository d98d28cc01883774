"""The run-time guard in real grading: spellings the static scan cannot read still cost their unit."""

import shutil
from pathlib import Path

import pytest

from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade, scan_forbidden
from sandboxing import sandbox

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")

# GELU's forward and backward through aten operators named at run time, then a Sigmoid whose
# backward runs autograd through torch.func's private module: neither spelling is in the source.
CHEATS = '''

import importlib as _importlib


class GELU:
    def forward(self, x):
        self.x = x
        return getattr(torch.ops.aten, "ge" + "lu")(x)

    def backward(self, grad_out):
        return getattr(torch.ops.aten, "gelu_" + "backward")(grad_out, self.x)


class Sigmoid:
    def forward(self, x):
        self.x = x
        return 1 / (1 + torch.exp(-x))

    def backward(self, grad_out):
        grad = getattr(_importlib.import_module("torch._functorch.ap" + "is"), "grad")
        return grad(lambda a: (grad_out * (1 / (1 + torch.exp(-a)))).sum())(self.x)
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submission = tmp_path_factory.mktemp("s1") / "cheat"
    submission.mkdir()
    for name in FILES:
        shutil.copy(REFERENCE / name, submission / name)
    with open(submission / "activations.py", "a") as source:
        source.write(CHEATS)  # redefines GELU and Sigmoid below the reference's
    assignment = load_reference("hw1", REFERENCE)
    assert scan_forbidden(assignment, submission, assignment.checks) == {}  # the static scan sees nothing
    result = grade(assignment, submission, sandbox(), "cheat", visibilities=("public",))
    return {check.id: check for check in result.checks}


@pytest.mark.parametrize(
    "check, reached",
    [
        ("activations.GELU.forward", "torch.ops.aten.gelu (what a forbidden API computes)"),
        ("activations.GELU.backward", "torch.ops.aten.gelu (what a forbidden API computes)"),  # its forward, first
        ("activations.Sigmoid.backward", "autograd (a backward pass of the autograd engine)"),
    ],
)
def test_a_forbidden_operation_reached_by_another_spelling_costs_its_check(graded, check, reached):
    result = graded[check]
    assert result.score == 0 and result.status == "failed", (result.status, result.message)
    assert result.message.startswith(f"{check.rsplit('.', 1)[0]} called a forbidden API: {reached}")
    assert "reached from activations.py:" in result.message


def test_the_other_units_keep_their_points(graded):
    others = [c for c in graded.values() if not c.id.startswith(("activations.GELU.", "activations.Sigmoid.backward"))]
    assert [c.id for c in others if c.status != "passed"] == []
