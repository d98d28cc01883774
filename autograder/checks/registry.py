"""How an assignment declares its checks.

    checks = CheckList()

    @checks.public("activations.Sigmoid.forward", points=0.25)
    def _(t):
        ...

A check id is `<file stem>.<unit>.<aspect>`; its unit (`activations.Sigmoid`)
is what loses the points when the student's code is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

CHECK_ID = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_][\w]*$")
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


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    visibility: str
    run: Callable
    timeout: float = 30.0  # the whole check
    call_timeout: float = 10.0  # any single call into the student's code

    @property
    def module(self) -> str:
        return self.id.split(".")[0]

    @property
    def unit(self) -> str:
        return ".".join(self.id.split(".")[:2])


class CheckList:
    def __init__(self):
        self.specs: list[CheckSpec] = []

    def public(self, check_id: str, points: float, **limits):
        return self._register(check_id, points, "public", limits)

    def hidden(self, check_id: str, points: float, **limits):
        return self._register(check_id, points, "hidden", limits)

    def _register(self, check_id: str, points: float, visibility: str, limits: dict):
        if not CHECK_ID.match(check_id):
            raise ValueError(f"check id {check_id!r} must look like <file stem>.<unit>.<aspect>")
        if any(spec.id == check_id for spec in self.specs):
            raise ValueError(f"check id {check_id!r} is declared twice")
        if not points > 0:
            raise ValueError(f"check {check_id!r} must be worth a positive number of points")

        def register(run):
            self.specs.append(CheckSpec(check_id, float(points), visibility, run, **limits))
            return run

        return register
