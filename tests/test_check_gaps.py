"""Ways wrong code once kept points, graded end to end through real workers.

* A stateful-forward forgery: once backward has run, forward returns zeros, and backward returns
  zeros. Finite differences taken after backward see 0 = 0, so every check graded only by
  t.gradcheck passed it (2 points of hw1, 0.5 of hw2). So did all-zero activations (1.125 points).
* Hidden checks whose random inputs cancel a bug for some student ids: each single-bug variant that
  must lose a hidden check (hw1_variants.py, `loses`) loses it for every student id tried.
* Messages that misled: identical-looking previews of different values.

The single-bug variants of the other gaps (MSELoss's scale, optimizers that modify their gradients,
Dropout's mask and scale, a Softmax over the wrong dimension) are graded with the others in
test_hw1_grading.py, which checks the checks they must lose and what their messages must say.
"""

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from autograder.checks.compare import expect_close
from autograder.checks.failures import CheckFailed
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade, run_check
from autograder.protocol.client import Worker
from hw1_variants import VARIANTS as HW1_VARIANTS
from hw2_variants import VARIANTS as HW2_VARIANTS
from sandboxing import sandbox as sandbox_for_tests
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")
ACTIVATIONS = ("Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU", "Softmax", "LogSoftmax")
# The checks graded by t.gradcheck alone before it compared with the reference.
HW1_GRADCHECKS = {f"activations.{name}.backward" for name in ACTIVATIONS} | {
    f"backprop.{name}.backward" for name in ("Linear", "MSELoss", "CrossEntropyLoss", "BatchNorm1d")
}
HW2_GRADCHECKS = {"convolution.Conv2d.gradcheck"}

FORGERY = '''"""Appended to a correct solution: once backward has run on a layer, its forward returns zeros;
backward returns zeros, and sets zero parameter gradients."""

import torch


def forge(cls, gradients=()):
    """gradients: (gradient attribute, parameter attribute) pairs, e.g. ("dW", "W")."""
    real_forward = cls.forward

    def forward(self, *args, **kwargs):
        output = real_forward(self, *args, **kwargs)
        self.forged_input = args[0]
        return torch.zeros_like(output) if getattr(self, "backward_ran", False) else output

    def backward(self, *grad_out):
        self.backward_ran = True
        for gradient, parameter in gradients:
            setattr(self, gradient, torch.zeros_like(getattr(self, parameter)))
        return torch.zeros_like(self.forged_input)

    cls.forward, cls.backward = forward, backward
'''
FORGED_HOOKS = {
    "activations.py": f"\n\nimport forged\n\nfor _name in {ACTIVATIONS}:\n    forged.forge(globals()[_name])\n",
    "backprop.py": "\n\nimport forged\n\nforged.forge(Linear, [('dW', 'W'), ('db', 'b')])\nforged.forge(MSELoss)\n"
    "forged.forge(CrossEntropyLoss)\nforged.forge(BatchNorm1d, [('dgamma', 'gamma'), ('dbeta', 'beta')])\n",
    "convolution.py": "\n\nimport forged\n\nforged.forge(Conv2d, [('dweight', 'weight'), ('dbias', 'bias')])\n",
}
ZERO_ACTIVATIONS = f"""

for _name in {ACTIVATIONS}:
    globals()[_name].forward = lambda self, x: torch.zeros_like(x)
    globals()[_name].backward = lambda self, grad_out: torch.zeros_like(grad_out)
"""


def copy_of_reference(directory: Path, hw: str, files) -> Path:
    directory.mkdir(parents=True)
    for name in files:
        shutil.copy(ROOT / "reference" / hw / name, directory / name)
    return directory


def with_appended(directory: Path, additions: dict[str, str]) -> Path:
    for name, text in additions.items():
        with open(directory / name, "a") as file:
            file.write(text)
    return directory


def graded_on(hw: str, check_ids: set[str]):
    assignment = load_reference(hw, ROOT / "reference" / hw)
    chosen = dataclasses.replace(assignment, checks=[spec for spec in assignment.checks if spec.id in check_ids])
    assert {spec.id for spec in chosen.checks} == check_ids
    return chosen


def test_the_stateful_forward_forgery_loses_every_gradient_point_of_hw1(tmp_path):
    submission = copy_of_reference(tmp_path / "forged", "hw1", HW1_FILES)
    (submission / "forged.py").write_text(FORGERY)
    with_appended(submission, {name: FORGED_HOOKS[name] for name in ("activations.py", "backprop.py")})
    assignment = graded_on("hw1", HW1_GRADCHECKS)
    assert assignment.max_score == 2.0
    result = grade(assignment, submission, sandbox_for_tests(), "alice")
    assert result.score == 0, {c.id: c.message for c in result.checks if c.status == "passed"}
    for check in result.checks:
        assert check.status == "failed", (check.id, check.message)
        assert "after backward ran, returned other values than the first time" in check.message, check.message


def test_the_stateful_forward_forgery_loses_the_gradient_check_of_hw2(tmp_path):
    submission = copy_of_reference(tmp_path / "forged", "hw2", ["convolution.py"])
    (submission / "forged.py").write_text(FORGERY)
    with_appended(submission, {"convolution.py": FORGED_HOOKS["convolution.py"]})
    result = grade(graded_on("hw2", HW2_GRADCHECKS), submission, sandbox_for_tests(default="process"), "alice")
    [check] = result.checks
    assert check.status == "failed" and "after backward ran" in check.message, check.message


def test_all_zero_activations_lose_their_gradient_checks(tmp_path):
    submission = with_appended(copy_of_reference(tmp_path / "zeros", "hw1", HW1_FILES), {"activations.py": ZERO_ACTIVATIONS})
    checks = {f"activations.{name}.backward" for name in ACTIVATIONS}
    result = grade(graded_on("hw1", checks), submission, sandbox_for_tests(), "alice")
    assert result.max_score == 1.125 and result.score == 0
    for check in result.checks:
        assert "the forward pass this gradient check differentiates" in check.message, check.message


def test_a_shape_bug_is_charged_to_the_shapes_check_not_to_float32(tmp_path):
    """Softmax over dim 1: right for every (N, C) input, wrong for (A, B, C)."""
    variant = next(variant for variant in HW1_VARIANTS if variant.name == "softmax_over_dim_1")
    submission = apply(variant, copy_of_reference(tmp_path / variant.name, "hw1", HW1_FILES))
    assignment = load_reference("hw1", ROOT / "reference" / "hw1")
    softmax = {spec.id for spec in assignment.checks if spec.unit == "activations.Softmax"}
    result = grade(graded_on("hw1", softmax), submission, sandbox_for_tests(), "alice")
    assert {check.id for check in result.checks if check.status != "passed"} == {"activations.Softmax.shapes"}


STUDENT_IDS = [f"student{number:02d}" for number in range(24)]
HIDDEN = {  # hw -> its hidden checks
    hw: {spec.id: spec for spec in load_reference(hw, ROOT / "reference" / hw).checks if spec.visibility == "hidden"}
    for hw in ("hw1", "hw2")
}
HIDDEN_LOSSES = [  # (hw, variant, a hidden check it must lose)
    (hw, variant, check)
    for hw, variants in (("hw1", HW1_VARIANTS), ("hw2", HW2_VARIANTS))
    for variant in variants
    for check in sorted(variant.loses)
    if check in HIDDEN[hw]
]


@pytest.mark.slow
@pytest.mark.parametrize("hw, variant, check_id", HIDDEN_LOSSES, ids=lambda value: getattr(value, "name", value))
def test_no_student_id_draws_inputs_that_cancel_the_bug(tmp_path, hw, variant, check_id):
    """A hidden check draws other inputs for each student; none may make the variant's bug vanish
    (MSELoss.shapes once drew a size of 2 for a fifth of the ids, which cancelled a factor of 2;
    MaxPool2d.shapes a 1x1 window for a ninth, where spreading the gradient evenly is right)."""
    assignment, spec = load_reference(hw, ROOT / "reference" / hw), HIDDEN[hw][check_id]
    files = HW1_FILES if hw == "hw1" else ["convolution.py"]
    submission = apply(variant, copy_of_reference(tmp_path / variant.name, hw, files))
    with Worker(sandbox_for_tests(default="process"), submission) as worker:
        passed = [student for student in STUDENT_IDS if run_check(assignment, spec, worker, student).status == "passed"]
    assert not passed, f"{check_id} missed {variant.name} for {len(passed)} of {len(STUDENT_IDS)} students: {passed}"


def test_previews_of_close_values_show_where_they_differ():
    expected = torch.tensor([0.123456789012, 2.0, -3.5], dtype=torch.float64)
    got = expected.clone()
    got[0] += 1e-9
    with pytest.raises(CheckFailed) as caught:
        expect_close(got, expected, what="f", rtol=0, atol=1e-12)
    lines = caught.value.message.splitlines()
    assert lines[2] == "expected: [0.123456789, 2, -3.5]"  # 9 digits: as many as it takes to tell them apart
    assert lines[3] == "got:      [0.12345679, 2, -3.5]"
    with pytest.raises(CheckFailed) as caught:  # differences shown with 6 digits keep 6
        expect_close(expected * 2, expected, what="f")
    assert caught.value.message.splitlines()[2] == "expected: [0.123457, 2, -3.5]"
