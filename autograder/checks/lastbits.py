"""Another CPU's last bits, on purpose: a test mode for verdicts that must not depend on them.

Two hosts give the same floating-point operation slightly different results: other
BLAS kernels sum in another order, AVX-512, AVX2 and ARM kernels contract into FMAs
differently and approximate exp or tanh differently. A check's verdict must not
notice. Inside `perturbed()`, every floating-point result of rounding arithmetic
that this thread computes with torch moves by 1 to `ulps` units in the last place,
with random sign, as if computed elsewhere:

* the values a check computes itself (`x @ W + b`, `((pred - target) ** 2).mean()`),
  torch's own modules and optimizers it compares against, and the checks library's
  arithmetic;
* the reference's answers, as the tape hands them to the check (`settle`): live, as
  recorded, or as read back from a public bundle.

Left alone: what does not round (copies, conversions, views, indexing, selection
such as max or where, comparisons, creation, random draws), results that are exact
anyway (integers and other numbers with a short significand, zeros, infinities, NaN),
the tape's draws (the question a check asks: inputs; see `exempt`) unless
`inputs=True` (a release on a host whose random-number kernels round differently),
and everything outside this thread, so the student's process is never touched.

    with lastbits.perturbed() as perturbation:
        result = grade(...)
    assert perturbation.nudged > 0
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# aten operators (overload packets, in-place "_" dropped) whose floating-point results
# are copies, selections or exact: no CPU rounds them differently.
EXACT_OPS = frozenset({
    # views and metadata changes (their in-place forms, squeeze_ and the like, write no values)
    "view", "squeeze", "unsqueeze", "transpose", "t", "permute", "expand", "as_strided", "swapdims", "swapaxes",
    "unfold", "diagonal", "select", "slice", "narrow", "split", "split_with_sizes", "unbind", "chunk", "resize_as",
    # copies, conversions, layout
    "_to_copy", "copy", "clone", "_copy_from", "_copy_from_and_resize", "lift_fresh", "lift_fresh_copy", "detach",
    "alias", "_unsafe_view", "view_copy", "reshape_copy", "expand_copy", "permute_copy", "t_copy", "transpose_copy",
    "unsqueeze_copy", "squeeze_copy", "select_copy", "slice_copy", "as_strided_copy", "diagonal_copy", "unfold_copy",
    "cat", "stack", "repeat", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "replication_pad1d",
    "replication_pad2d", "flip", "roll", "tril", "triu", "diag_embed", "resize", "set",
    # indexing and scattering without arithmetic
    "index", "index_select", "gather", "take", "masked_select", "masked_fill", "masked_scatter", "where",
    "scatter", "select_scatter", "slice_scatter", "diagonal_scatter", "as_strided_scatter",
    # selection, sign and rounding to integers
    "abs", "neg", "sign", "sgn", "copysign", "floor", "ceil", "round", "trunc", "frac", "clamp", "clamp_min",
    "clamp_max", "relu", "threshold", "hardtanh", "nan_to_num", "maximum", "minimum", "fmax", "fmin", "max",
    "min", "amax", "amin", "aminmax", "sort", "topk", "kthvalue", "median", "nanmedian", "mode", "cummax", "cummin",
    "max_pool2d_with_indices", "max_pool2d", "unique_dim", "_unique2",
    # creation
    "zeros", "ones", "full", "empty", "empty_strided", "zeros_like", "ones_like", "full_like", "empty_like",
    "new_zeros", "new_ones", "new_full", "new_empty", "new_empty_strided", "fill", "zero", "scalar_tensor",
    "arange", "linspace", "logspace", "eye",
    # to Python, to booleans
    "_local_scalar_dense", "equal", "is_nonzero",
})

# index_put_ adds only when asked to (x[i] += v); otherwise it copies.
_ACCUMULATES = {"index_put": "accumulate", "_index_put_impl": "accumulate"}
# Operators that update arguments their schema does not mark as written: (argument names).
_WRITES_UNMARKED = {"native_batch_norm": ("running_mean", "running_var")}

_state = threading.local()  # .active: the Perturbation of this thread; .exempt: nesting depth of exempt()


class Perturbation(TorchDispatchMode):
    """The dispatch mode behind `perturbed()`; `nudged` counts the values it moved."""

    def __init__(self, ulps: int, seed: int, inputs: bool):
        super().__init__()
        self.ulps = ulps
        self.inputs = inputs
        self.generator = torch.Generator().manual_seed(seed)
        self.nudged = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if getattr(_state, "exempt", 0) or not _rounds(func, kwargs):
            return out
        schema = func._schema
        for returned, value in zip(schema.returns, out if isinstance(out, (tuple, list)) else (out,)):
            if returned.alias_info is None:  # a fresh result; an alias is a view or an argument written in place
                self._nudge_all(value)
        written = {a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write}
        written.update(_WRITES_UNMARKED.get(_name(func), ()))
        for position, argument in enumerate(schema.arguments):
            if argument.name in written:
                self._nudge_all(args[position] if position < len(args) else kwargs.get(argument.name))
        return out

    def _nudge_all(self, value) -> None:
        if isinstance(value, torch.Tensor):
            self.nudge(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._nudge_all(item)

    def nudge(self, tensor: torch.Tensor) -> None:
        """Move tensor's rounded values (in place) by 1..ulps ulps, random sign."""
        if not tensor.is_floating_point() or tensor.numel() == 0:
            return
        info = torch.finfo(tensor.dtype)
        short_bits = (round(-math.log2(info.eps)) + 1) // 2  # half the significand: float64 26, float32 12
        wide = tensor.detach().to("cpu", torch.float64)
        mantissa, exponent = torch.frexp(wide)
        # A short significand (integers, halves, counts) comes from exact arithmetic, not rounding.
        rounded = torch.isfinite(wide) & (wide.abs() >= info.tiny) & ((mantissa * 2.0**short_bits).frac() != 0)
        steps = torch.randint(1, self.ulps + 1, wide.shape, generator=self.generator, dtype=torch.float64)
        signs = torch.randint(0, 2, wide.shape, generator=self.generator, dtype=torch.float64) * 2 - 1
        ulp = torch.ldexp(torch.full_like(wide, info.eps), exponent - 1)  # spacing of the dtype at each value
        moved = torch.where(rounded, wide + signs * steps * ulp, wide)
        with torch.no_grad():
            tensor.copy_(moved.to(tensor.dtype))
        self.nudged += int(rounded.sum())


def _name(func) -> str:
    name = func.overloadpacket.__name__
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def _rounds(func, kwargs) -> bool:
    name = _name(func)
    if name in _ACCUMULATES:
        return bool(kwargs.get(_ACCUMULATES[name], False))
    return name not in EXACT_OPS and torch.Tag.nondeterministic_seeded not in func.tags


@contextlib.contextmanager
def perturbed(ulps: int = 4, seed: int = 0, inputs: bool = False):
    """Inside, this thread's floating-point results round as on another CPU (see the module's doc)."""
    if getattr(_state, "active", None) is not None:
        raise RuntimeError("lastbits.perturbed() is already active in this thread")
    mode = Perturbation(ulps, seed, inputs)
    _state.active = mode
    try:
        with mode:
            yield mode
    finally:
        _state.active = None


@contextlib.contextmanager
def exempt():
    """Inside, nothing is perturbed: the tape produces the question (inputs) and the reference's
    answer here; `settle` then perturbs the answer once, as a whole."""
    _state.exempt = getattr(_state, "exempt", 0) + 1
    try:
        yield
    finally:
        _state.exempt -= 1


def settle(value, kind: str):
    """value as another CPU would have computed it: what the tape hands a check.

    kind "reference" (the reference's answers) is perturbed in perturbed(); kind
    "input" (drawn inputs) only with perturbed(inputs=True). Tensors inside lists,
    tuples and dicts are copied before they move; other values pass unchanged.
    """
    mode = getattr(_state, "active", None)
    if mode is None or (kind == "input" and not mode.inputs):
        return value
    with exempt():
        return _settled(value, mode)


def _settled(value, mode: Perturbation):
    if isinstance(value, torch.Tensor):
        copy = value.detach().clone()
        mode.nudge(copy)
        return copy
    if isinstance(value, (list, tuple)):
        return type(value)(_settled(item, mode) for item in value)
    if isinstance(value, dict):
        return {key: _settled(item, mode) for key, item in value.items()}
    return value


# --- telling last bits from real differences ---------------------------------------------
# Two computations of the same value on different CPUs agree to within a few hundred units
# of rounding (float64: 1.1e-16 each; float32: 6e-8) relative to the largest value involved,
# even after sums of thousands of terms or a small least-squares solve. These tolerances sit
# far above that and far below what grading notices (compare.py: rtol 1e-7 for float64,
# 1e-5 for float32): a difference they let through cannot change a verdict.
RTOL = {torch.float64: 1e-9, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 1e-2}


def difference(got, recorded, where: str = "") -> str | None:
    """Where got and recorded differ beyond floating-point last bits, in words; None if they do not.

    Structure, types, shapes, dtypes, integers, booleans and strings must be equal;
    floating-point values may differ by RTOL[dtype] of the largest |recorded| value of
    their tensor (Python floats: of their own size). NaN matches NaN, infinities match
    themselves.
    """
    at = f" at {where}" if where else ""
    mismatch = f"got {_kind(got)}{at}, recorded {_kind(recorded)}"
    if isinstance(recorded, torch.Tensor):
        return _tensor_difference(got, recorded, at) if isinstance(got, torch.Tensor) else mismatch
    if type(got) is not type(recorded):
        return mismatch
    if isinstance(recorded, (list, tuple)):
        if len(got) != len(recorded):
            return mismatch
        for position, (item, recorded_item) in enumerate(zip(got, recorded)):
            found = difference(item, recorded_item, f"{where}[{position}]")
            if found:
                return found
        return None
    if isinstance(recorded, dict):
        if sorted(got) != sorted(recorded):
            return f"got keys {sorted(got)}{at}, recorded {sorted(recorded)}"
        for key in recorded:
            found = difference(got[key], recorded[key], f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(recorded, float):
        if (math.isnan(recorded) and math.isnan(got)) or abs(got - recorded) <= RTOL[torch.float64] * abs(recorded):
            return None
        return f"got {got!r}{at}, recorded {recorded!r} (by {abs(got - recorded):.3g}, beyond last bits)"
    return None if got == recorded else f"got {got!r:.80}{at}, recorded {recorded!r:.80}"


def _tensor_difference(got: torch.Tensor, recorded: torch.Tensor, at: str) -> str | None:
    if (got.dtype, got.shape, got.device.type) != (recorded.dtype, recorded.shape, recorded.device.type):
        return f"got {_kind(got)}{at}, recorded {_kind(recorded)}"
    got, recorded = got.detach().cpu(), recorded.detach().cpu()
    if not recorded.is_floating_point():
        differing = got != recorded
        if not differing.any():
            return None
        index = _first(differing)
        return (f"{_kind(got)}{at}: {int(differing.sum())} of {recorded.numel()} values differ, first at index "
                f"{index}: recorded {recorded[index].item()!r}, got {got[index].item()!r}")
    want, have = recorded.double(), got.double()
    finite = torch.isfinite(want)
    scale = want[finite].abs().max().item() if finite.any() else 0.0
    allowed = RTOL[recorded.dtype] * scale
    same_special = (want == have) | (want.isnan() & have.isnan())
    off = torch.where(finite, (have - want).abs(), torch.where(same_special, 0.0, math.inf))
    off = torch.where(off.isnan(), math.inf, off)  # a NaN where a number was recorded
    beyond = off > allowed
    if not beyond.any():
        return None
    index = _first(off == off.max())
    return (f"{_kind(got)}{at}: {int(beyond.sum())} of {recorded.numel()} values differ beyond last bits, most at "
            f"index {index}: recorded {want[index].item()!r}, got {have[index].item()!r} (by {off[index].item():.3g}; "
            f"last bits allow {allowed:.3g}, {RTOL[recorded.dtype]:g} of its largest value)")


def _first(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')}[{', '.join(str(n) for n in value.shape)}]"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{value!r:.80}" if value is None or type(value) in (int, float, str, bool) else f"a {type(value).__name__}"
