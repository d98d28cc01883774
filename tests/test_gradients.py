import dataclasses
import re

import pytest
import torch

from autograder.checks.failures import CheckFailed
from autograder.checks.gradients import check_gradients

DOUBLE = torch.float64


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_direction_from(generator: torch.Generator):
    return lambda shape: torch.randn(shape, generator=generator, dtype=DOUBLE)


def randn(*shape, generator) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=DOUBLE)


def sigmoid_case(shape, seed=0):
    generator = seeded(seed)
    x = randn(*shape, generator=generator)
    upstream = randn(*shape, generator=generator)
    s = torch.sigmoid(x)
    return x, upstream, upstream * s * (1 - s)


def test_correct_sigmoid_gradient_passes_elementwise_and_directionally():
    for shape in [(3, 4), (20, 30)]:
        x, upstream, gradient = sigmoid_case(shape)
        check_gradients(
            torch.sigmoid, {"input": x}, {"input": gradient}, upstream,
            what="Sigmoid.backward", random_direction=random_direction_from(seeded(1)),
        )


def test_correct_linear_gradients_pass():
    generator = seeded(2)
    x, W, b = randn(5, 3, generator=generator), randn(3, 4, generator=generator), randn(4, generator=generator)
    upstream = randn(5, 4, generator=generator)
    analytic = {"x": upstream @ W.T, "W": x.T @ upstream, "b": upstream.sum(0)}
    check_gradients(
        lambda x, W, b: x @ W + b, {"x": x, "W": W, "b": b}, analytic, upstream,
        what="Linear.backward", random_direction=random_direction_from(seeded(3)), max_elementwise=12,
    )


def test_correct_softmax_gradient_passes():
    generator = seeded(4)
    x, upstream = randn(3, 5, generator=generator), randn(3, 5, generator=generator)
    y = torch.softmax(x, dim=1)
    gradient = y * (upstream - (upstream * y).sum(dim=1, keepdim=True))
    check_gradients(
        lambda x: torch.softmax(x, dim=1), {"x": x}, {"x": gradient}, upstream,
        what="softmax.backward", random_direction=random_direction_from(seeded(5)),
    )


def test_wrong_element_is_reported_with_its_index_and_values():
    x, upstream, gradient = sigmoid_case((3, 4))
    wrong = gradient.clone()
    wrong[1, 2] += 0.1
    with pytest.raises(CheckFailed) as caught:
        check_gradients(
            torch.sigmoid, {"x": x}, {"x": wrong}, upstream,
            what="Sigmoid.backward", random_direction=random_direction_from(seeded(1)),
        )
    message = caught.value.message
    assert message.startswith(
        f"Sigmoid.backward: gradient wrt x is wrong at index (1, 2): your backward gives {wrong[1, 2].item()!r}, "
        "finite differences of your forward give "
    )
    numeric = float(re.search(r"your forward give (\S+),", message).group(1))
    assert numeric == pytest.approx(gradient[1, 2].item(), abs=1e-8)
    assert "relative error" in message
    assert message.endswith("(checked element by element, central differences, h=1e-06)")
    assert caught.value.summary == ("Sigmoid.backward: gradient wrt x from your backward disagrees with finite differences of your forward "
                                     "(1 of 12 elements)")


def test_the_worst_element_is_reported():
    x, upstream, gradient = sigmoid_case((4,))
    wrong = gradient.clone()
    wrong[0] += 0.01
    wrong[3] += 1.0
    with pytest.raises(CheckFailed, match=r"wrong at index \(3,\)") as caught:
        check_gradients(torch.sigmoid, {"x": x}, {"x": wrong}, upstream, what="f", random_direction=None)
    assert caught.value.summary == "f: gradient wrt x from your backward disagrees with finite differences of your forward (2 of 4 elements)"


def test_wrong_gradient_fails_directionally():
    x, upstream, gradient = sigmoid_case((10, 10))
    wrong = gradient.clone()
    wrong[4, 7] += 5.0
    with pytest.raises(CheckFailed) as caught:
        check_gradients(
            torch.sigmoid, {"x": x}, {"x": wrong}, upstream,
            what="Sigmoid.backward", random_direction=random_direction_from(seeded(1)),
        )
    assert caught.value.message.startswith(
        "Sigmoid.backward: gradient wrt x is wrong along a random direction: your backward gives "
    )
    assert "checked along 3 random directions" in caught.value.message
    assert re.fullmatch(
        r"Sigmoid.backward: gradient wrt x from your backward disagrees with finite differences of your forward "
        r"\(along [123] of 3 random directions\)", caught.value.summary
    )


def test_directions_are_normalized():
    # A huge direction would make x + h*v leave the region where the
    # linearization holds; normalized, the check passes.
    x, upstream, gradient = sigmoid_case((10, 10))
    check_gradients(
        torch.sigmoid, {"x": x}, {"x": gradient}, upstream,
        what="f", random_direction=lambda shape: 1e6 * torch.ones(shape, dtype=DOUBLE),
    )


def test_the_first_wrong_input_in_dict_order_is_reported():
    generator = seeded(6)
    x, W, b = randn(2, 3, generator=generator), randn(3, 2, generator=generator), randn(2, generator=generator)
    upstream = randn(2, 2, generator=generator)
    analytic = {"x": upstream @ W.T, "W": x.T @ upstream, "b": upstream.sum(0) + 1}
    analytic["W"][0, 1] += 1
    with pytest.raises(CheckFailed, match=r"gradient wrt W is wrong at index \(0, 1\)"):
        check_gradients(
            lambda x, W, b: x @ W + b, {"x": x, "W": W, "b": b}, analytic, upstream,
            what="Linear.backward", random_direction=None,
        )


def test_gradient_of_the_wrong_shape_or_type():
    x, upstream, gradient = sigmoid_case((3, 4))
    for bad, description in [(gradient[0], "float64[4]"), (gradient.tolist(), "list of 3: [list of 4, list of 4, list of 4]"),
                             (None, "None")]:
        with pytest.raises(CheckFailed) as caught:
            check_gradients(torch.sigmoid, {"W": x}, {"W": bad}, upstream, what="f", random_direction=None)
        assert caught.value.message == f"f: gradient wrt W: your backward returned {description}, expected a tensor of shape [3, 4]"


def test_forward_that_returns_no_tensor_or_the_wrong_shape():
    x, upstream, gradient = sigmoid_case((3,))
    with pytest.raises(CheckFailed, match=r"f returned a list of 3: \[float, float, float\], expected a torch.Tensor"):
        check_gradients(lambda x: x.tolist(), {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)
    with pytest.raises(CheckFailed, match=r"f: returned float64\[1, 3\], expected float64\[3\]"):
        check_gradients(lambda x: x[None], {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)
    with pytest.raises(CheckFailed, match=r"f: returned float32\[3\], expected float64\[3\]"):
        check_gradients(lambda x: x.float(), {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)


def test_exceptions_of_the_function_propagate():
    x, upstream, gradient = sigmoid_case((3,))

    def broken(x):
        raise ZeroDivisionError("student bug")

    with pytest.raises(ZeroDivisionError):
        check_gradients(broken, {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)


def test_inputs_are_never_modified():
    x, upstream, gradient = sigmoid_case((3, 4))
    before = x.clone()

    def modifies_its_input(x):
        out = torch.sigmoid(x)
        x.zero_()  # must neither reach the caller nor the next evaluation
        return out

    check_gradients(modifies_its_input, {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)
    assert torch.equal(x, before)

    generator = seeded(7)
    x, W = randn(2, 3, generator=generator), randn(3, 2, generator=generator)
    x_before, W_before = x.clone(), W.clone()
    upstream = randn(2, 2, generator=generator)

    def modifies_the_other_input(x, W):
        out = x @ W
        x.mul_(2)
        W.mul_(2)
        return out

    analytic = {"x": upstream @ W.T, "W": x.T @ upstream}
    check_gradients(
        modifies_the_other_input, {"x": x, "W": W}, analytic, upstream, what="f", random_direction=None
    )
    assert torch.equal(x, x_before) and torch.equal(W, W_before)


def test_nan_in_the_analytic_gradient_fails():
    x, upstream, gradient = sigmoid_case((3,))
    gradient[1] = float("nan")
    with pytest.raises(CheckFailed, match=r"wrong at index \(1,\): your backward gives nan"):
        check_gradients(torch.sigmoid, {"x": x}, {"x": gradient}, upstream, what="f", random_direction=None)


def test_zero_dim_input():
    x = torch.tensor(0.3, dtype=DOUBLE)
    upstream = torch.tensor(2.0, dtype=DOUBLE)
    check_gradients(lambda x: x**2, {"x": x}, {"x": 2 * x * upstream}, upstream, what="square", random_direction=None)
    with pytest.raises(CheckFailed, match=r"wrong at index \(\): your backward gives 0.6"):
        check_gradients(lambda x: x**2, {"x": x}, {"x": 2 * x}, upstream, what="square", random_direction=None)


# ---------------------------------------------------------------------------
# t.gradcheck: the student's forward and backward in a real worker, the
# reference's in the grader, live and replayed from a recorded bundle.
# ---------------------------------------------------------------------------

REFERENCE_UNITS = '''
import torch


class Cube:
    def __init__(self, scale):
        self.scale = scale

    def forward(self, x):
        self.x = x
        return self.scale * x**3

    def backward(self, grad_out):
        return 3 * self.scale * self.x**2 * grad_out
'''

GRADCHECKS = '''
from autograder.checks import CheckList

checks = CheckList()


def gradcheck(t, shape, against_reference):
    mine, ref = t.student.units.Cube(0.5), t.reference.units.Cube(0.5)
    x = t.randn(*shape)
    reference = (lambda x: ref.forward(x), lambda g: {"x": ref.backward(g)}) if against_reference else None
    t.gradcheck(lambda x: mine.forward(x), {"x": x}, lambda g: {"x": mine.backward(g)}, reference=reference)


@checks.public("units.Cube.elementwise", points=1)
def _(t):
    gradcheck(t, (3, 4), against_reference=True)


@checks.public("units.Cube.directions", points=1)
def _(t):
    gradcheck(t, (9, 9), against_reference=True)


@checks.public("units.Cube.own_formula", points=1)
def _(t):
    gradcheck(t, (3, 4), against_reference=False)
'''

CORRECT = REFERENCE_UNITS
# Each a class body replacing Cube's methods: what a student could hand in.
STUDENTS = {
    "correct": "",
    # zeros once backward has run, and a zero backward: finite differences taken after backward see 0 = 0
    "zeros_after_backward": '''
    def forward(self, x):
        self.x = x
        return 0 * x if getattr(self, "backward_ran", False) else self.scale * x**3

    def backward(self, grad_out):
        self.backward_ran = True
        return 0 * grad_out
''',
    # a forward that drifts from call to call
    "forward_drifts": '''
    calls = 0

    def forward(self, x):
        self.x = x
        self.calls += 1
        return self.scale * x**3 + 1e-3 * self.calls
''',
    # forward and backward wrong by the same factor: consistent with each other, not with the reference
    "consistent_wrong_scale": '''
    def forward(self, x):
        self.x = x
        return 2 * self.scale * x**3

    def backward(self, grad_out):
        return 6 * self.scale * self.x**2 * grad_out
''',
    # right forward, backward off by a factor
    "wrong_backward": '''
    def backward(self, grad_out):
        return 2 * self.scale * self.x**2 * grad_out
''',
}


def student_units(body: str) -> str:
    """The reference's Cube with body's methods defined after its own (so they win)."""
    return CORRECT + body


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    """The tiny assignment "cube": (assignment, its replayed bundle, {student: submission folder})."""
    from autograder.engine.assignment import load_reference
    from autograder.release.release import record_public
    from sandboxing import sandbox

    base = tmp_path_factory.mktemp("cube")
    reference = base / "reference" / "cube"
    reference.mkdir(parents=True)
    (reference / "units.py").write_text(REFERENCE_UNITS)
    (reference / "public_checks.py").write_text(GRADCHECKS)
    assignment = load_reference("cube", reference)
    bundle = dataclasses.replace(assignment, reference_dir=None, recordings=record_public(assignment, sandbox("process")))
    submissions = {}
    for name, body in STUDENTS.items():
        submissions[name] = base / "students" / name
        submissions[name].mkdir(parents=True)
        (submissions[name] / "units.py").write_text(student_units(body))
    return assignment, bundle, submissions


@pytest.fixture(scope="module")
def cube_graded(cube):
    """(student, "live" or "replayed") -> {check id: (status, message)}: each check in a fresh
    child of one worker per student, as grading runs it."""
    from autograder.engine.runner import run_check
    from autograder.protocol.client import Worker
    from sandboxing import sandbox

    assignment, bundle, submissions = cube
    graded = {}
    for name, directory in submissions.items():
        with Worker(sandbox("process"), directory) as worker:
            for how, graded_on in (("live", assignment), ("replayed", bundle)):
                verdicts = {spec.id: run_check(graded_on, spec, worker, "alice") for spec in graded_on.checks}
                graded[name, how] = {check: (v.status, v.message) for check, v in verdicts.items()}
    return graded


CUBE_CHECKS = ("units.Cube.elementwise", "units.Cube.directions", "units.Cube.own_formula")
HOW = ("live", "replayed")


@pytest.mark.parametrize("how", HOW)
def test_a_correct_student_passes_every_gradcheck(cube_graded, how):
    assert cube_graded["correct", how] == {check: ("passed", "") for check in CUBE_CHECKS}


@pytest.mark.parametrize("how", HOW)
def test_a_forward_that_changes_after_backward_fails_with_or_without_a_reference(cube_graded, how):
    for check, (status, message) in cube_graded["zeros_after_backward", how].items():
        assert status == "failed", check
        assert "called at the same inputs after backward ran, returned other values than the first time" in message
        assert re.search(r"worst at index \(\d+, \d+\): expected \S+, got -?0\.0", message)  # what came back last


@pytest.mark.parametrize("how", HOW)
def test_repeated_forwards_must_agree(cube_graded, how):
    for check, (status, message) in cube_graded["forward_drifts", how].items():
        assert status == "failed", check
        # the reference sees the drift in the first output already; without one, the second call shows it
        expected = "the forward pass this gradient check differentiates" if check != "units.Cube.own_formula" else (
            "called a second time on the same inputs, returned other values than the first time")
        assert expected in message, (check, message)


@pytest.mark.parametrize("how", HOW)
def test_forward_and_backward_are_compared_with_the_reference(cube_graded, how):
    consistent = cube_graded["consistent_wrong_scale", how]
    for check in ("units.Cube.elementwise", "units.Cube.directions"):
        status, message = consistent[check]
        assert status == "failed" and "the forward pass this gradient check differentiates" in message
    assert consistent["units.Cube.own_formula"] == ("passed", "")  # its own formula: self-consistent is all we know
    wrong = cube_graded["wrong_backward", how]
    for check in ("units.Cube.elementwise", "units.Cube.directions"):
        status, message = wrong[check]
        assert status == "failed" and "gradient wrt x, your backward's against the reference's" in message
        # each number says where it came from, in the pytest-like display
        assert re.search(r"worst at index \(\d+,?\)?.*: expected \S+ \(the reference's backward\), got \S+ \(your backward\); abs diff", message), message
        assert "\nexpected: [" in message and "\ngot:      [" in message
    status, message = wrong["units.Cube.own_formula"]
    assert status == "failed"
    assert "your backward gives" in message and "finite differences of your forward give" in message
