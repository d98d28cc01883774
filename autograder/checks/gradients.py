"""Finite-difference checks of the gradients a student's backward pass returns.

Everything is float64. The quantity checked is the vector-Jacobian product
d/dx sum(upstream * f(x)), which is what a backward pass given `upstream`
returns for input x.

The differences are taken first (`finite_differences`) and compared with the
backward pass's gradients afterwards (`expect_matches_differences`), so a
caller can evaluate f at all its points before the student's backward has run
(Trial.gradcheck does: a forward that changes once backward ran cannot bend
the numbers it is judged by).
"""

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from autograder.checks.compare import describe, expect_tensor, format_shape
from autograder.checks.failures import CheckFailed


@dataclass
class Differences:
    """Central differences of f for one input: per element, or along random unit directions."""

    shape: torch.Size
    h: float
    elementwise: torch.Tensor | None = None  # the numeric gradient, element by element
    directions: list[tuple[torch.Tensor, float]] | None = None  # (unit direction, numeric derivative along it)


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
    for name, point in inputs.items():
        expect_gradient(analytic.get(name), point.shape, name=name, what=what)
    numeric = finite_differences(
        f, inputs, upstream, what=what, random_direction=random_direction,
        h=h, max_elementwise=max_elementwise, directions=directions,
    )
    expect_matches_differences(analytic, numeric, what=what, rtol=rtol, atol=atol)


def finite_differences(
    f: Callable[..., object],
    inputs: dict[str, torch.Tensor],
    upstream: torch.Tensor,
    *,
    what: str,
    random_direction: Callable[[torch.Size], torch.Tensor],
    h: float = 1e-6,
    max_elementwise: int = 64,
    directions: int = 3,
    evaluate: Callable[[Iterator[dict]], Iterator] | None = None,
) -> dict[str, Differences]:
    """name -> central differences of sum(upstream * f(**inputs)) with respect to inputs[name].

    Each evaluation gets fresh copies of the inputs, so a student function that writes into its
    inputs can neither corrupt the caller's tensors nor the later evaluations. evaluate(argument
    sets) gives f's outputs for an input's evaluations, in order, as they are consumed: by default
    f on each set in turn; Trial.gradcheck's asks the student's process for many in one request.
    Outputs are judged in order, and the first one that is not a float64 tensor of upstream's
    shape ends the check, as do f's exceptions (raised where that evaluation's output would be).
    """
    evaluate = evaluate or (lambda argument_sets: (f(**arguments) for arguments in argument_sets))

    def objective(output) -> float:
        output = expect_tensor(output, what=what)
        if output.shape != upstream.shape or output.dtype != torch.float64:
            # Differences of a float32 output are rounding noise, not a gradient.
            raise CheckFailed(
                f"{what}: returned {describe(output)}, expected float64{format_shape(upstream.shape)}"
            )
        return (upstream.detach().double() * output.detach().double()).sum().item()

    def slopes(name: str, points: Iterator[torch.Tensor]) -> list[float]:
        """(objective(plus) - objective(minus)) / 2h for points plus, minus, plus, minus, ..."""
        arguments = ({**{key: value.detach().clone() for key, value in inputs.items()}, name: point} for point in points)
        values = (objective(output) for output in evaluate(arguments))
        return [(plus - minus) / (2 * h) for plus, minus in zip(values, values)]

    numeric = {}
    for name, point in inputs.items():
        point = point.detach()
        if point.numel() <= max_elementwise:
            indices = list(itertools.product(*(range(size) for size in point.shape)))

            def elementwise(point=point, indices=indices):
                for index in indices:
                    plus, minus = point.clone(), point.clone()
                    plus[index] += h
                    minus[index] -= h
                    yield plus
                    yield minus

            values = torch.empty(point.shape, dtype=torch.float64)
            for index, slope in zip(indices, slopes(name, elementwise())):
                values[index] = slope
            numeric[name] = Differences(point.shape, h, elementwise=values)
        else:
            drawn = []

            def along_directions(point=point, drawn=drawn):
                for _ in range(directions):
                    direction = random_direction(point.shape).to(torch.float64)
                    drawn.append(direction / direction.norm())
                    yield point + h * drawn[-1]
                    yield point - h * drawn[-1]

            found = slopes(name, along_directions())
            numeric[name] = Differences(point.shape, h, directions=list(zip(drawn, found)))
    return numeric


def expect_matches_differences(
    analytic: dict[str, object],
    numeric: dict[str, Differences],
    *,
    what: str,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """CheckFailed unless each analytic[name] (from the student's backward) matches numeric[name]."""
    for name, differences in numeric.items():
        gradient = expect_gradient(analytic.get(name), differences.shape, name=name, what=what)
        if differences.elementwise is not None:
            _compare_elementwise(name, gradient, differences, rtol=rtol, atol=atol, what=what)
        else:
            _compare_directions(name, gradient, differences, rtol=rtol, atol=atol, what=what)


def expect_gradient(gradient, shape: torch.Size, *, name: str, what: str) -> torch.Tensor:
    """The gradient wrt `name` that backward returned, as float64 on the CPU; CheckFailed unless a tensor of `shape`."""
    if not isinstance(gradient, torch.Tensor) or gradient.shape != shape:
        raise CheckFailed(
            f"{what}: gradient wrt {name}: your backward returned {describe(gradient)}, "
            f"expected a tensor of shape {format_shape(shape)}"
        )
    return gradient.detach().to("cpu", torch.float64)


def _compare_elementwise(name, gradient, differences: Differences, *, rtol, atol, what) -> None:
    failures = []  # (excess over tolerance, index, analytic, numeric)
    for index in itertools.product(*(range(size) for size in differences.shape)):
        analytic, numeric = gradient[index].item(), differences.elementwise[index].item()
        excess = _excess(analytic, numeric, rtol=rtol, atol=atol)
        if excess > 0:
            failures.append((excess, index, analytic, numeric))
    if not failures:
        return
    _, index, analytic, numeric = max(failures, key=lambda failure: failure[0])
    raise CheckFailed(
        f"{what}: gradient wrt {name} is wrong at index {index}: "
        f"{_comparison(analytic, numeric)} (checked element by element, central differences, h={differences.h:g})",
        summary=f"{what}: gradient wrt {name} from your backward disagrees with finite differences of your forward "
                f"({len(failures)} of {gradient.numel()} elements)",
    )


def _compare_directions(name, gradient, differences: Differences, *, rtol, atol, what) -> None:
    failures = []  # (excess over tolerance, analytic, numeric)
    for direction, numeric in differences.directions:
        analytic = (gradient * direction).sum().item()
        excess = _excess(analytic, numeric, rtol=rtol, atol=atol)
        if excess > 0:
            failures.append((excess, analytic, numeric))
    if not failures:
        return
    count = len(differences.directions)
    _, analytic, numeric = max(failures, key=lambda failure: failure[0])
    raise CheckFailed(
        f"{what}: gradient wrt {name} is wrong along a random direction: "
        f"{_comparison(analytic, numeric)} (checked along {count} random directions, "
        f"central differences, h={differences.h:g})",
        summary=f"{what}: gradient wrt {name} from your backward disagrees with finite differences of your forward "
                f"(along {len(failures)} of {count} random directions)",
    )


def _excess(analytic: float, numeric: float, *, rtol: float, atol: float) -> float:
    """How far |analytic - numeric| is above the tolerance; inf for NaN or inf."""
    if not (math.isfinite(analytic) and math.isfinite(numeric)):
        return math.inf
    return abs(analytic - numeric) - (atol + rtol * max(abs(analytic), abs(numeric)))


def _comparison(analytic: float, numeric: float) -> str:
    relative = abs(analytic - numeric) / abs(numeric) if numeric != 0 else math.inf
    return (
        f"your backward gives {analytic!r}, finite differences of your forward give {numeric!r}, "
        f"relative error {relative:.1e}"
    )
