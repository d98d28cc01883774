"""Where a check's inputs and expected values come from.

A check draws its random inputs from `t.randn(...)` and asks the reference
solution through `t.reference`. Both go through a tape:

* live: computed on the spot (grading, with the reference at hand);
* recording: computed and written down (release, for public checks);
* replaying: read back from the public bundle, on a student's machine where
  the reference does not exist.

So a public check's code runs unchanged in all three places.
"""

from __future__ import annotations

import hashlib
import json
import types

import torch

from autograder.checks.failures import CheckFailed
from autograder.protocol import wire

OBJECT = {"object": True}  # what the tape holds for a reference call that returned an object
REPLAYED_OBJECT = object()  # what a replay gives back for it


class Tape:
    replaying = False
    keeps_specs = False  # whether what was asked must be written down (record) or compared (replay)

    def draw(self, kind: str, spec: dict, produce):
        return produce()


class RecordingTape(Tape):
    keeps_specs = True

    def __init__(self):
        self.entries: list[dict] = []

    def draw(self, kind: str, spec: dict, produce):
        value = produce()
        stored = OBJECT if isinstance(value, ReferenceProxy) else wire.dump_value(value)
        self.entries.append({"kind": kind, "spec": spec, "value": stored})
        return value


class ReplayTape(Tape):
    replaying = True
    keeps_specs = True

    def __init__(self, entries: list[dict]):
        self.entries = entries
        self.position = 0

    def next_is(self, kind: str, path: str) -> bool:
        if self.position >= len(self.entries):
            return False
        entry = self.entries[self.position]
        return entry["kind"] == kind and entry["spec"].get("path") == path

    def draw(self, kind: str, spec: dict, produce=None):
        if self.position >= len(self.entries):
            raise ReplayMismatch(_describe(kind, spec), "nothing more")
        entry = self.entries[self.position]
        if entry["kind"] != kind or entry["spec"] != spec:
            raise ReplayMismatch(_describe(kind, spec), _describe(entry["kind"], entry["spec"]))
        self.position += 1
        return REPLAYED_OBJECT if entry["value"] == OBJECT else wire.load_value(entry["value"])


class ReplayMismatch(CheckFailed):
    def __init__(self, asked: str, recorded: str):
        super().__init__(
            f"this check went another way than when it was recorded: it asked for {asked:.200}, "
            f"the recording has {recorded:.200}. An earlier result of yours probably has the wrong "
            "shape or type; see the other failed checks of this unit"
        )


def _describe(kind: str, spec: dict) -> str:
    if kind == "input":
        shape = ", ".join(str(n) for n in spec.get("shape", []))
        return f"a {spec.get('fn')} input {spec.get('dtype', 'torch.int64').removeprefix('torch.')}[{shape}]"
    return f"the reference's {spec.get('path')}"


def digest(args, kwargs) -> str:
    """A fingerprint of a reference call's arguments, so a replay can tell it is asked the same thing."""
    plain = [[_fingerprintable(a) for a in args], {k: _fingerprintable(v) for k, v in kwargs.items()}]
    return hashlib.sha256(json.dumps(wire.dump_value(plain), sort_keys=True).encode()).hexdigest()[:16]


def _fingerprintable(value):
    if isinstance(value, ReferenceProxy):
        return f"<reference {value._path}>"
    if isinstance(value, (list, tuple)):
        return type(value)(_fingerprintable(v) for v in value)
    return value if wire.is_plain(value) else f"<{type(value).__name__}>"


def _copy(value):
    """Tensors leave the reference as copies: its state must not change under the check."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class ReferenceProxy:
    """`t.reference.activations.Sigmoid().forward(x)`, live or from a tape."""

    __slots__ = ("_target", "_path", "_tape")

    def __init__(self, target, path: str, tape: Tape):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_tape", tape)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        path = f"{self._path}.{name}" if self._path else name
        if self._tape.replaying:
            if self._tape.next_is("reference", path):
                return self._wrap(self._tape.draw("reference", {"path": path}), path)
            return ReferenceProxy(None, path, self._tape)
        value = getattr(self._target, name)
        if callable(value) or isinstance(value, types.ModuleType):
            return ReferenceProxy(value, path, self._tape)
        return self._tape.draw("reference", {"path": path}, lambda: self._wrap(_copy(value), path))

    def __setattr__(self, name: str, value) -> None:
        if not self._tape.replaying:
            setattr(self._target, name, _unwrap(value))

    def __call__(self, *args, **kwargs):
        path = f"{self._path}(...)"
        spec = {"path": path, "args": digest(args, kwargs) if self._tape.keeps_specs else None}
        if self._tape.replaying:
            return self._wrap(self._tape.draw("reference", spec), path)
        produce = lambda: self._wrap(_copy(self._target(*_unwrap(args), **_unwrap(kwargs))), path)  # noqa: E731
        return self._tape.draw("reference", spec, produce)

    def _wrap(self, value, path: str):
        if value is REPLAYED_OBJECT:
            return ReferenceProxy(None, path, self._tape)
        return value if wire.is_plain(value) else ReferenceProxy(value, path, self._tape)

    def __repr__(self) -> str:
        return f"<reference {self._path}>"


def _unwrap(value):
    if isinstance(value, ReferenceProxy):
        return value._target
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value
