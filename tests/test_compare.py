import math

import pytest
import torch

from autograder.checks.compare import describe, expect_close, expect_equal, expect_tensor, tolerances
from autograder.checks.failures import CheckFailed

WHAT = "sigmoid(x: float64[4, 5])"


def reference() -> torch.Tensor:
    return torch.sigmoid(torch.linspace(-3, 3, 20, dtype=torch.float64)).reshape(4, 5)


def failure_of(actual, expected, **options) -> CheckFailed:
    with pytest.raises(CheckFailed) as caught:
        expect_close(actual, expected, what=WHAT, **options)
    return caught.value


def test_describe():
    assert describe(torch.zeros(4, 5, dtype=torch.float64)) == "float64[4, 5]"
    assert describe(torch.tensor(1.0)) == "float32[]"
    assert describe(3.0) == "float"
    assert describe(True) == "bool"
    assert describe(None) == "None"
    assert describe("a") == "str"
    assert describe((torch.zeros(3, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))) == (
        "tuple of 2: (float64[3], float64[])"
    )
    assert describe([1, [2.0]]) == "list of 2: [int, list of 1]"
    assert describe({}) == "dict"
    assert describe(tuple(range(8))) == "tuple of 8: (int, int, int, int, int, int, ...)"
    assert describe(torch.empty(2, device="meta")) == "float32[2] on meta"


def test_tolerances_depend_on_dtype_and_magnitude():
    expected = torch.tensor([-300.0, 2.0, math.inf, math.nan], dtype=torch.float64)
    assert tolerances(torch.float64, expected) == (1e-7, 1e-7)
    rtol, atol = tolerances(torch.float32, expected)
    assert rtol == 1e-5 and atol == pytest.approx(300e-5)  # the largest finite value sets atol
    assert tolerances(torch.float32, torch.tensor([0.5], dtype=torch.float64)) == (1e-5, 1e-5)
    assert tolerances(torch.int64, expected) == (0.0, 0.0)
    assert tolerances(torch.bool, expected) == (0.0, 0.0)


def test_expect_tensor():
    tensor = torch.zeros(2)
    assert expect_tensor(tensor, what=WHAT) is tensor
    with pytest.raises(CheckFailed, match=r"sigmoid\(x: float64\[4, 5\]\) returned a float, expected a torch.Tensor"):
        expect_tensor(0.5, what=WHAT)


def test_close_values_pass():
    expected = reference()
    expect_close(expected.clone(), expected, what=WHAT)
    expect_close(expected + 5e-8, expected, what=WHAT)


def test_wrong_values_report_the_worst_index_and_values():
    expected = reference()
    actual = expected.clone()
    actual[2, 3] = 0.611
    actual[0, 0] += 1e-3
    failure = failure_of(actual, expected)
    lines = failure.message.splitlines()
    assert lines[0] == f"{WHAT}: wrong values in 2 of 20 elements (float64 tolerance: rtol 1e-07, atol 1e-07)"
    assert lines[1].startswith(f"worst at index (2, 3): expected {expected[2, 3].item()!r}, got 0.611 (abs diff 0.14")
    assert lines[2].startswith("expected: [0.0474259, ")
    assert lines[3].startswith("got:      [0.0484259, ")
    # The summary shows no value: neither expected, nor got, nor the tolerance.
    assert failure.summary == f"{WHAT}: wrong values in 2 of 20 elements"



def test_the_worst_line_says_where_each_number_came_from():
    expected = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    sources = ("the reference's backward", "your backward")
    wrong = failure_of(torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64), expected, sources=sources)
    assert wrong.message.splitlines()[1] == ("worst at index (2,): expected 4.0 (the reference's backward), "
                                             "got 5.0 (your backward); abs diff 1, rel diff 0.25")
    nan = failure_of(torch.tensor([1.0, math.nan, 4.0], dtype=torch.float64), expected, sources=sources)
    assert nan.message.splitlines()[1] == "got nan (your backward) at index (1,), expected 2.0 (the reference's backward)"

def test_float32_output_gets_float32_tolerance():
    expected = reference()
    off_by_float32_rounding = expected.float() * (1 + 4e-6)
    expect_close(off_by_float32_rounding, expected, what=WHAT, dtype=torch.float32)
    # The same relative error in float64 is far outside float64's tolerance.
    with pytest.raises(CheckFailed, match="float64 tolerance"):
        expect_close(expected * (1 + 4e-6), expected, what=WHAT)
    failure = failure_of(expected.float() * 1.001, expected, dtype=torch.float32)
    assert "float32 tolerance: rtol 1e-05, atol 1e-05" in failure.message


def test_float32_values_are_shown_at_float32_precision():
    expected = reference()
    actual = expected.float()
    actual[2, 3] = 0.611
    failure = failure_of(actual, expected, dtype=torch.float32)
    assert "got 0.611 (" in failure.message


def test_explicit_tolerances_override_the_defaults():
    expected = reference()
    expect_close(expected + 1e-3, expected, what=WHAT, atol=2e-3)
    failure = failure_of(expected + 1e-3, expected, rtol=0.0, atol=5e-4)
    assert "rtol 0, atol 0.0005" in failure.message


def test_wrong_type_shape_dtype():
    expected = reference()
    assert failure_of(0.5, expected).message == f"{WHAT} returned a float, expected a torch.Tensor"
    failure = failure_of([expected], expected)
    assert failure.message == f"{WHAT} returned a list of 1: [float64[4, 5]], expected a torch.Tensor"
    assert failure_of(None, expected).message == f"{WHAT} returned None, expected a torch.Tensor"
    assert failure_of(3, expected).message == f"{WHAT} returned an int, expected a torch.Tensor"
    failure = failure_of(expected.T, expected)
    assert failure.message == f"{WHAT}: wrong shape: expected [4, 5], got [5, 4]"
    assert failure.summary == failure.message
    failure = failure_of(expected.float(), expected)
    assert failure.message == (
        f"{WHAT}: wrong dtype: expected float64, got float32 (outputs must keep the dtype of the inputs)"
    )


def test_the_shape_is_checked_before_the_dtype():
    expected = reference()
    assert "wrong shape" in failure_of(expected.float().T, expected).message


def test_wrong_device():
    expected = reference()
    meta = torch.empty(4, 5, dtype=torch.float64, device="meta")
    failure = failure_of(meta, expected)
    assert failure.message.startswith(f"{WHAT}: output is on meta, expected cpu")


def test_nan_where_finite_expected_is_reported():
    expected = reference()
    actual = expected.clone()
    actual[0, 1] += 0.5  # finite and wrong: ranks below the NaN
    actual[2, 3] = math.nan
    failure = failure_of(actual, expected)
    lines = failure.message.splitlines()
    assert lines[0].startswith(f"{WHAT}: wrong values in 2 of 20 elements, 1 of them nan or inf")
    assert lines[1] == f"got nan at index (2, 3), expected {expected[2, 3].item()!r}"
    assert "0.75" not in failure.summary


def test_nan_matches_nan_and_infinities_must_match():
    expected = torch.tensor([math.nan, math.inf, -math.inf, 1.0], dtype=torch.float64)
    expect_close(expected.clone(), expected, what="iou(a, b)")
    with pytest.raises(CheckFailed, match=r"worst at index \(0,\): expected nan, got 0.0"):
        expect_close(torch.tensor([0.0, math.inf, -math.inf, 1.0], dtype=torch.float64), expected, what="iou(a, b)")
    with pytest.raises(CheckFailed, match=r"worst at index \(1,\): expected inf, got -inf"):
        expect_close(torch.tensor([math.nan, -math.inf, -math.inf, 1.0], dtype=torch.float64), expected, what="f")
    with pytest.raises(CheckFailed, match=r"worst at index \(2,\): expected -inf, got 1e\+300"):
        expect_close(torch.tensor([math.nan, math.inf, 1e300, 1.0], dtype=torch.float64), expected, what="f")


def test_values_at_the_edge_of_the_tolerance_get_torchs_verdict():
    """The fast numpy path decides only what torch's rule decides the same way, to the last bit."""
    generator = torch.Generator().manual_seed(5)
    expected = torch.randn(200, dtype=torch.float64, generator=generator) * 10.0 ** torch.randint(-8, 8, (200,), generator=generator)
    allowed = 1e-7 + 1e-7 * expected.abs()
    for offset in (allowed, torch.nextafter(allowed, torch.zeros(())), torch.nextafter(allowed, torch.full((), math.inf))):
        for sign in (1.0, -1.0):
            actual = expected + sign * offset
            within = ((actual - expected).abs() <= allowed).all().item()  # the rule, in torch
            if within:
                expect_close(actual, expected, what="f")
            else:
                failure_of(actual, expected)
    expect_close(torch._neg_view(expected), -expected, what="f")  # a view with its negative bit set
    expect_close(expected[::2], expected[::2].clone(), what="f")  # strided
    halves = torch.tensor([1.0, 2.5, -3.0], dtype=torch.bfloat16)  # no numpy dtype: torch decides
    expect_close(halves.clone(), halves, what="f")
    with pytest.raises(CheckFailed, match="wrong values in 1 of 3"):
        expect_close(halves + torch.tensor([0.0, 0.0, 1.0], dtype=torch.bfloat16), halves, what="f")


def test_integer_outputs_must_match_exactly():
    expected = torch.tensor([1, 2, 3])
    expect_close(torch.tensor([1, 2, 3]), expected, what="argmax(x)")
    with pytest.raises(CheckFailed, match=r"worst at index \(2,\): expected 3.0, got 4.0"):
        expect_close(torch.tensor([1, 2, 4]), expected, what="argmax(x)")


def test_zero_dim_values():
    expected = torch.tensor(0.25, dtype=torch.float64)
    expect_close(torch.tensor(0.25, dtype=torch.float64), expected, what="loss(x)")
    with pytest.raises(CheckFailed, match=r"worst at index \(\): expected 0.25, got 0.5"):
        expect_close(torch.tensor(0.5, dtype=torch.float64), expected, what="loss(x)")


def test_outputs_that_require_grad_are_compared():
    expected = reference()
    expect_close(expected.clone().requires_grad_(), expected, what=WHAT)


def test_expect_equal_scalars_strings_and_sequences():
    expect_equal((3, [1.5, "a"], None), (3, [1.5, "a"], None), what="shapes()")
    expect_equal(math.nan, math.nan, what="f()")
    with pytest.raises(CheckFailed) as caught:
        expect_equal((3, 5), (3, 4), what="out_shape(x)")
    assert caught.value.message == "out_shape(x): wrong value at [1]: expected 4, got 5"
    assert "4" not in caught.value.summary and "5" not in caught.value.summary
    with pytest.raises(CheckFailed, match=r"f\(\): returned a float, expected an int"):
        expect_equal(3.0, 3, what="f()")
    with pytest.raises(CheckFailed, match=r"returned a list of 2: \[int, int\], expected a tuple of 2"):
        expect_equal([3, 4], (3, 4), what="f()")
    with pytest.raises(CheckFailed, match=r"returned a tuple of 1: \(int\), expected a tuple of 2"):
        expect_equal((3,), (3, 4), what="f()")
    with pytest.raises(CheckFailed, match="expected 'relu', got 'sigmoid'"):
        expect_equal("sigmoid", "relu", what="name()")


def test_expect_equal_tensors():
    expected = torch.tensor([[1.0, math.nan], [3.0, 4.0]])
    expect_equal(expected.clone(), expected, what="f(x)")
    expect_equal(torch.nn.Parameter(expected.clone()), expected, what="f(x)")
    with pytest.raises(CheckFailed) as caught:
        expect_equal(torch.tensor([[1.0, math.nan], [3.0, 5.0]]), expected, what="f(x)")
    lines = caught.value.message.splitlines()
    assert lines[0] == "f(x): wrong values in 1 of 4 elements"
    assert lines[1] == "first at index (1, 1): expected 4.0, got 5.0"
    assert caught.value.summary == lines[0]
    with pytest.raises(CheckFailed, match=r"returned an int64\[2\], expected a float32\[2, 2\]"):
        expect_equal(torch.tensor([1, 2]), expected, what="f(x)")
    with pytest.raises(CheckFailed, match=r"returned a float64\[2, 2\], expected a float32\[2, 2\]"):
        expect_equal(expected.double(), expected, what="f(x)")
    with pytest.raises(CheckFailed, match=r"first at index \(0,\): expected True, got False"):
        expect_equal(torch.tensor([False, True]), torch.tensor([True, True]), what="mask(x)")
