"""Finite-difference checks of the gradients a student's backward pass returns.

Everything is float64. The quantity checked is the vector-Jacobian product
d/dx sum(upstream * f(x)), which is what a backward pass given `upstream`
returns for input x.
"""

import itertools
import math
from collections.abc import Callable

import torch

from autograder.checks.compare import describe, expect_tensor, format_shape
from autograder.checks.failures import CheckFailed


def check_gradients(
    f: Callable[..., object],
    inputs: dict[str, torch.Tensor],
    analytic: dict[str, object],
    upstream: torch.Tensor,
    *,
    what: str,
    random_direction: Callable[[torch.Size], torch.Tensor],
    h: float = 1e-6,
    max_elementwise: int = 64,
    directions: int = 3,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """CheckFailed unless each `analytic[name]` matches central differences of f.

    `f(**inputs)` runs the student's forward pass (exceptions propagate).
    `analytic[name]` is the gradient the student's backward returned for
    `inputs[name]` at these inputs, given `upstream`. Inputs with at most
    `max_elementwise` elements are checked element by element; larger ones
    along `directions` random unit directions drawn from `random_direction(shape)`.
    Inputs are checked in dict order; the first wrong one is reported.
    """

    def objective(name: str, perturbed: torch.Tensor) -> float:
        # Every call gets fresh copies, so a student function that writes
        # into its inputs can neither corrupt the caller's tensors nor the
        # later evaluations.
        arguments = {key: value.detach().clone() for key, value in inputs.items()}
        arguments[name] = perturbed
        output = expect_tensor(f(**arguments), what=what)
        if output.shape != upstream.shape or output.dtype != torch.float64:
            # Differences of a float32 output are rounding noise, not a gradient.
            raise CheckFailed(
                f"{what}: returned {describe(output)}, expected float64{format_shape(upstream.shape)}"
            )
        return (upstream.detach().double() * output.detach().double()).sum().item()

    for name, point in inputs.items():
        gradient = _expect_gradient(analytic.get(name), point, name=name, what=what)
        point = point.detach()
        if point.numel() <= max_elementwise:
            _check_elementwise(objective, name, point, gradient, h=h, rtol=rtol, atol=atol, what=what)
        else:
            _check_directions(
                objective, name, point, gradient, random_direction,
                h=h, directions=directions, rtol=rtol, atol=atol, what=what,
            )


def _expect_gradient(gradient, point: torch.Tensor, *, name: str, what: str) -> torch.Tensor:
    if not isinstance(gradient, torch.Tensor) or gradient.shape != point.shape:
        raise CheckFailed(
            f"{what}: gradient wrt {name}: backward returned {describe(gradient)}, "
            f"expected shape {format_shape(point.shape)}"
        )
    return gradient.detach().to("cpu", torch.float64)


def _check_elementwise(objective, name, point, gradient, *, h, rtol, atol, what) -> None:
    failures = []  # (excess over tolerance, index, analytic, numeric)
    for index in itertools.product(*(range(size) for size in point.shape)):
        plus, minus = point.clone(), point.clone()
        plus[index] += h
        minus[index] -= h
        numeric = (objective(name, plus) - objective(name, minus)) / (2 * h)
        analytic = gradient[index].item()
        excess = _excess(analytic, numeric, rtol=rtol, atol=atol)
        if excess > 0:
            failures.append((excess, index, analytic, numeric))
    if not failures:
        return
    _, index, analytic, numeric = max(failures, key=lambda failure: failure[0])
    raise CheckFailed(
        f"{what}: gradient wrt {name} is wrong at index {index}: "
        f"{_comparison(analytic, numeric)} (checked element by element, central differences, h={h:g})",
        summary=f"{what}: gradient wrt {name} is wrong ({len(failures)} of {point.numel()} elements)",
    )


def _check_directions(objective, name, point, gradient, random_direction, *, h, directions, rtol, atol, what) -> None:
    failures = []  # (excess over tolerance, analytic, numeric)
    for _ in range(directions):
        direction = random_direction(point.shape).to(torch.float64)
        direction = direction / direction.norm()
        numeric = (objective(name, point + h * direction) - objective(name, point - h * direction)) / (2 * h)
        analytic = (gradient * direction).sum().item()
        excess = _excess(analytic, numeric, rtol=rtol, atol=atol)
        if excess > 0:
            failures.append((excess, analytic, numeric))
    if not failures:
        return
    _, analytic, numeric = max(failures, key=lambda failure: failure[0])
    raise CheckFailed(
        f"{what}: gradient wrt {name} is wrong along a random direction: "
        f"{_comparison(analytic, numeric)} (checked along {directions} random directions, "
        f"central differences, h={h:g})",
        summary=f"{what}: gradient wrt {name} is wrong (along {len(failures)} of {directions} random directions)",
    )


def _excess(analytic: float, numeric: float, *, rtol: float, atol: float) -> float:
    """How far |analytic - numeric| is above the tolerance; inf for NaN or inf."""
    if not (math.isfinite(analytic) and math.isfinite(numeric)):
        return math.inf
    return abs(analytic - numeric) - (atol + rtol * max(abs(analytic), abs(numeric)))


def _comparison(analytic: float, numeric: float) -> str:
    relative = abs(analytic - numeric) / abs(numeric) if numeric != 0 else math.inf
    return f"analytic {analytic!r}, numeric {numeric!r}, relative error {relative:.1e}"
