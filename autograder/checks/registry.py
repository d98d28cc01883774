"""How an assignment declares its checks.

    checks = CheckList()

    @checks.public("activations.Sigmoid.forward", points=0.25)
    def _(t):
        ...

A check id is `<file stem>.<unit>.<aspect>`; its unit (`activations.Sigmoid`)
is what loses the points when the student's code is wrong.

A check whose aspect is `timed` compares the student's time with the
reference's (t.expect_fast); it needs the reference, so it is hidden.
`cuda=points` registers a CUDA twin of a hidden check, `<id>.cuda`: the same
check on CUDA tensors, run where the grading host has a CUDA device; elsewhere
it is skipped and the course decides what it scores (see engine/course.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# <file stem>.<unit>.<aspect>, the aspect possibly dotted: Conv2d.forward.timed, conv2d.timed.cuda
CHECK_ID = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*(\.[A-Za-z_]\w*){1,3}$")
VISIBILITIES = ("public", "hidden")

# Autograd is forbidden to every unit (ASSIGNMENTS.md, rules for every unit).
AUTOGRAD_APIS = [
    "torch.Tensor.backward",
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.autograd.functional",
    "torch.autograd.Function",
    "torch.autograd.Function.apply",  # a custom Function is used through apply, never __init__
    "torch.func",
]

# What the run-time guard is made of (protocol/guard.py): no unit may take it apart.
GUARD_APIS = [
    "torch.utils._python_dispatch",
    "torch.utils._python_dispatch._disable_current_modes",
    "torch.utils._python_dispatch._pop_mode",
    "torch.utils._python_dispatch._pop_mode_temporarily",
    "torch._C._pop_torch_dispatch_stack",
    "torch._C._set_dispatch_mode",
    "torch._C._unset_dispatch_mode",
    "torch._C._DisableTorchDispatch",
]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    visibility: str
    run: Callable
    timeout: float = 30.0  # the whole check: seconds of its CPU time (protocol/limits.py)
    call_timeout: float = 10.0  # any single call into the student's code: seconds of CPU time
    device: str = "cpu"  # where the check's tensors live
    twin: str | None = None  # a CUDA check's CPU twin: the same check on CPU tensors

    @property
    def module(self) -> str:
        return self.id.split(".")[0]

    @property
    def timed(self) -> bool:
        return (self.twin or self.id).endswith(".timed")

    @property
    def unit(self) -> str:
        return ".".join(self.id.split(".")[:2])


class CheckList:
    def __init__(self):
        self.specs: list[CheckSpec] = []

    def public(self, check_id: str, points: float, **limits):
        return self._register(check_id, points, "public", limits)

    def hidden(self, check_id: str, points: float, cuda: float | None = None, **limits):
        return self._register(check_id, points, "hidden", limits, cuda)

    def _register(self, check_id: str, points: float, visibility: str, limits: dict, cuda: float | None = None):
        twin_id = f"{check_id}.cuda"
        for new_id, new_points in [(check_id, points)] + ([(twin_id, cuda)] if cuda is not None else []):
            if not CHECK_ID.match(new_id):
                raise ValueError(f"check id {new_id!r} must look like <file stem>.<unit>.<aspect>")
            if any(spec.id == new_id for spec in self.specs):
                raise ValueError(f"check id {new_id!r} is declared twice")
            if not new_points > 0:
                raise ValueError(f"check {new_id!r} must be worth a positive number of points")
        if visibility == "public" and check_id.endswith(".timed"):
            raise ValueError(f"timed check {check_id!r} must be hidden: it runs the reference, which students lack")

        def register(run):
            self.specs.append(CheckSpec(check_id, float(points), visibility, run, **limits))
            if cuda is not None:  # right after its twin: the runner grades the twin first
                self.specs.append(CheckSpec(twin_id, float(cuda), visibility, run, device="cuda", twin=check_id, **limits))
            return run

        return register
