"""Comparing what a student's code returned with the reference.

Every failure says what was called (`what`), what was expected, what came
back and where they differ most. The `summary` of each failure names shapes,
dtypes and counts only, never a value, so hidden checks can show it.
"""

import math

import numpy as np
import torch

from autograder.checks.failures import CheckFailed

# How many items of a list/tuple, and how many tensor values, a message shows.
_PREVIEW_ITEMS = 6
# Longest repr of a non-tensor value that a message shows.
_PREVIEW_CHARS = 200


def describe(value) -> str:
    """A short type/shape description of `value`, e.g. "float64[4, 5]".

    Lists and tuples show their items one level deep: "list of 2: [int, list of 3]".
    """
    return _describe(value, show_items=True)


def _describe(value, show_items: bool) -> str:
    if isinstance(value, torch.Tensor):
        text = f"{_dtype_name(value.dtype)}{format_shape(value.shape)}"
        if value.device.type != "cpu":
            text += f" on {value.device}"
        return text
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        if not show_items:
            return f"{type(value).__name__} of {len(value)}"
        items = [_describe(item, show_items=False) for item in value[:_PREVIEW_ITEMS]]
        if len(value) > _PREVIEW_ITEMS:
            items.append("...")
        opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        return f"{type(value).__name__} of {len(value)}: {opening}{', '.join(items)}{closing}"
    return type(value).__name__


def format_shape(shape: torch.Size) -> str:
    """torch.Size([4, 5]) -> "[4, 5]"."""
    return f"[{', '.join(str(size) for size in shape)}]"


def tolerances(dtype: torch.dtype, expected: torch.Tensor) -> tuple[float, float]:
    """(rtol, atol) for an output of `dtype` compared with a reference `expected`."""
    if dtype == torch.float64:
        return 1e-7, 1e-7
    if dtype.is_floating_point:
        # Low-precision outputs carry absolute rounding errors that grow with
        # the magnitude of the values, so atol scales with the largest one.
        return 1e-5, 1e-5 * max(1.0, _largest_finite(expected.detach()))
    return 0.0, 0.0


def expect_tensor(actual, *, what: str) -> torch.Tensor:
    """`actual` itself, or CheckFailed when it is not a tensor."""
    if not isinstance(actual, torch.Tensor):
        raise CheckFailed(f"{what} returned {_with_article(describe(actual))}, expected a torch.Tensor")
    return actual


def expect_close(
    actual,
    expected: torch.Tensor,
    *,
    what: str,
    dtype: torch.dtype | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    sources: tuple[str, str] | None = None,
) -> None:
    """CheckFailed unless `actual` matches `expected` within dtype-aware tolerances.

    `sources` names where the expected and the actual values came from ("the reference's backward",
    "your backward"), said beside the worst values; the previews below stay "expected:" and "got:".

    `dtype` is the dtype `actual` must have (default: `expected.dtype`); the
    values are compared in float64 with |actual - expected| <= atol + rtol * |expected|.
    NaN matches NaN and infinities must match exactly.
    """
    actual = expect_tensor(actual, what=what)
    dtype = expected.dtype if dtype is None else dtype
    _expect_layout(actual, expected, dtype, what=what)

    default_rtol, default_atol = tolerances(dtype, expected)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol

    got = actual.detach().to("cpu", torch.float64)
    want = expected.detach().to("cpu", torch.float64)
    if _all_within(got, want, rtol, atol):
        return
    allowed = atol + rtol * want.abs()
    within = (got - want).abs() <= allowed
    both_nan = want.isnan() & got.isnan()
    same_infinity = want.isinf() & (got == want)
    wrong = ~torch.where(torch.isfinite(want), within, both_nan | same_infinity)
    if not wrong.any():
        return

    # Rank the wrong elements by how far they are outside the tolerance; a
    # NaN or infinity where a finite value belongs ranks above everything.
    excess = torch.where(torch.isfinite(got) & torch.isfinite(want), (got - want).abs() - allowed, math.inf)
    excess = torch.where(wrong, excess, -math.inf)
    worst = _index_of(excess.reshape(-1).argmax().item(), want.shape)
    nonfinite = wrong & torch.isfinite(want) & ~torch.isfinite(got)

    summary = f"{what}: wrong values in {int(wrong.sum())} of {want.numel()} elements"
    if nonfinite.any():
        summary += f", {int(nonfinite.sum())} of them nan or inf where a finite value was expected"
    # The summary leaves the tolerance values out: a scaled atol would tell
    # the largest expected value.
    lines = [
        f"{summary} ({_dtype_name(dtype)} tolerance: rtol {rtol:.3g}, atol {atol:.3g})",
        _worst_line(worst, want[worst].item(), got[worst].item(), dtype, sources),
        *_previews(want, got),
    ]
    raise CheckFailed("\n".join(lines), summary=summary)


def expect_equal(actual, expected, *, what: str) -> None:
    """CheckFailed unless `actual` equals `expected` exactly.

    Handles Python scalars, strings, None, tensors of any dtype (same shape,
    dtype and values; NaN equals NaN), and lists/tuples of these, recursively.
    Types must match: 3 and 3.0 are different answers.
    """
    difference = _first_difference(actual, expected, where="")
    if difference is None:
        return
    message, summary = difference
    raise CheckFailed(f"{what}: {message}", summary=f"{what}: {summary}")


def _expect_layout(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, *, what: str) -> None:
    """Device type, shape and dtype, in that order."""
    if actual.device.type != expected.device.type:
        raise CheckFailed(
            f"{what}: output is on {actual.device}, expected {expected.device.type} "
            "(outputs must stay on the device of the inputs)"
        )
    if actual.shape != expected.shape:
        raise CheckFailed(
            f"{what}: wrong shape: expected {format_shape(expected.shape)}, got {format_shape(actual.shape)}"
        )
    if actual.dtype != dtype:
        raise CheckFailed(
            f"{what}: wrong dtype: expected {_dtype_name(dtype)}, got {_dtype_name(actual.dtype)} "
            "(outputs must keep the dtype of the inputs)"
        )


def _worst_line(index: tuple[int, ...], expected: float, got: float, dtype: torch.dtype, sources: tuple[str, str] | None = None) -> str:
    shown_expected, shown_got = _format_number(expected, torch.float64), _format_number(got, dtype)
    if sources:
        shown_expected, shown_got = f"{shown_expected} ({sources[0]})", f"{shown_got} ({sources[1]})"
    if math.isfinite(expected) and not math.isfinite(got):
        return f"got {shown_got} at index {index}, expected {shown_expected}"
    line = f"worst at index {index}: expected {shown_expected}, got {shown_got}"
    if math.isfinite(expected) and math.isfinite(got):
        difference = abs(got - expected)
        diff = f"abs diff {difference:.3g}" + (f", rel diff {difference / abs(expected):.3g}" if expected != 0 else "")
        line += f"; {diff}" if sources else f" ({diff})"  # the sources are in parentheses already
    return line


def _first_difference(actual, expected, where: str) -> tuple[str, str] | None:
    """(message, value-free summary) for the first place they differ, or None."""
    at = f" at {where}" if where else ""
    # Any tensor subclass (a Parameter, say) counts as a tensor.
    same_kind = (
        isinstance(actual, torch.Tensor) if isinstance(expected, torch.Tensor) else type(actual) is type(expected)
    )
    if not same_kind:
        text = f"returned {_with_article(describe(actual))}{at}, expected {_with_article(describe(expected))}"
        return text, text
    if isinstance(expected, torch.Tensor):
        return _tensor_difference(actual, expected, at)
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            text = f"returned {_with_article(describe(actual))}{at}, expected {_with_article(describe(expected))}"
            return text, text
        for position, (actual_item, expected_item) in enumerate(zip(actual, expected)):
            difference = _first_difference(actual_item, expected_item, f"{where}[{position}]")
            if difference is not None:
                return difference
        return None
    both_nan = isinstance(expected, float) and math.isnan(expected) and math.isnan(actual)
    if actual == expected or both_nan:
        return None
    return (
        f"wrong value{at}: expected {_short_repr(expected)}, got {_short_repr(actual)}",
        f"wrong value{at} ({_with_article(type(expected).__name__)})",
    )


def _tensor_difference(actual: torch.Tensor, expected: torch.Tensor, at: str) -> tuple[str, str] | None:
    if (actual.shape, actual.dtype, actual.device.type) != (expected.shape, expected.dtype, expected.device.type):
        text = f"returned {_with_article(describe(actual))}{at}, expected {_with_article(describe(expected))}"
        return text, text
    got, want = actual.detach().cpu(), expected.detach().cpu()
    equal = got == want
    if want.is_floating_point() or want.is_complex():
        equal |= want.isnan() & got.isnan()
    if equal.all():
        return None
    differing = ~equal
    first = _index_of(differing.reshape(-1).nonzero()[0].item(), want.shape)
    summary = f"wrong values{at} in {int(differing.sum())} of {want.numel()} elements"
    message = "\n".join([
        summary,
        f"first at index {first}: expected {want[first].item()}, got {got[first].item()}",
        *_previews(want, got),
    ])
    return message, summary


def _index_of(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, tuple(shape)))


def _preview(values: torch.Tensor, digits: int = 6) -> str:
    """The first few values, flattened, with `digits` significant digits."""
    flat = values.reshape(-1)
    shown = [f"{value:.{digits}g}" if isinstance(value, float) else str(value) for value in flat[:_PREVIEW_ITEMS].tolist()]
    if flat.numel() > _PREVIEW_ITEMS:
        shown.append(f"... ({flat.numel()} values)")
    return f"[{', '.join(shown)}]"


def _previews(want: torch.Tensor, got: torch.Tensor) -> list[str]:
    """The "expected:" and "got:" previews, with as many digits (6 to 17) as it takes for the
    shown values that differ to look different: identical-looking previews of different values mislead."""
    shown_want, shown_got = want.reshape(-1)[:_PREVIEW_ITEMS], got.reshape(-1)[:_PREVIEW_ITEMS]
    shown_differ = not torch.equal(shown_want.nan_to_num(), shown_got.nan_to_num())
    for digits in (6, 9, 12, 17):
        expected, actual = _preview(want, digits), _preview(got, digits)
        if expected != actual or not shown_differ:
            break
    return [f"expected: {expected}", f"got:      {actual}"]


def _format_number(value, dtype: torch.dtype) -> str:
    """The shortest text that gives back `value` in `dtype` (0.611, not 0.6110000014305115)."""
    if isinstance(value, (bool, int)):
        return str(value)
    if dtype == torch.float16:
        return str(np.float16(value))
    if dtype in (torch.float32, torch.bfloat16):
        return str(np.float32(value))
    return repr(value)


def _with_article(description: str) -> str:
    """The description with "a" or "an" in front (an int64[3]); None stays None."""
    if description == "None":
        return description
    return f"{'an' if description[0] in 'aeiou' else 'a'} {description}"


def _short_repr(value) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 3] + "..."


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _as_numpy(tensor: torch.Tensor) -> np.ndarray | None:
    """tensor's values as a numpy array sharing its memory; None where numpy cannot hold them (bfloat16, CUDA)."""
    try:
        return tensor.resolve_neg().numpy()
    except (RuntimeError, TypeError):
        return None


def _largest_finite(tensor: torch.Tensor) -> float:
    """The largest magnitude among tensor's finite values (0 if none), in numpy where it can (see _all_within)."""
    values = _as_numpy(tensor)
    if values is None:
        finite = tensor[torch.isfinite(tensor)]
        return finite.abs().max().item() if finite.numel() else 0.0
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def _all_within(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> bool:
    """Whether every expected value is finite and matched within tolerance: the common case, decided in
    numpy, ~10x faster than torch's operators on the small tensors checks compare. The same IEEE
    operations in the same order as expect_close's, so it never accepts what that would refuse."""
    g, w = _as_numpy(got), _as_numpy(want)
    if g is None or w is None:
        return False
    with np.errstate(all="ignore"):
        return bool(np.isfinite(w).all() and (np.abs(g - w) <= atol + rtol * np.abs(w)).all())
