"""Where a check's inputs and expected values come from.

A check draws its random inputs from `t.randn(...)` and asks the reference
solution through `t.reference`. Both go through a tape:

* live: computed on the spot (grading, with the reference at hand);
* recording: computed and written down (release, for public checks);
* replaying: read back from the public bundle, on a student's machine where
  the reference does not exist.

So a public check's code runs unchanged in all three places.

A replay must recognise the same question on any CPU. The inputs it draws are
the recorded ones, bit for bit, but what the check computes from them (`y = X @ w`)
rounds differently under other kernels. So a reference call's arguments are
recorded as values: a tensor the check drew from the tape, unchanged, as a
pointer to that entry ({"$drawn": [entry, position...]}), anything it computed
itself in full ({"$value": ...}); and a replay compares them with what it is
asked now, exactly in structure, types, shapes and integers, and within
floating-point last bits in float values (lastbits.difference).
"""

from __future__ import annotations

import hashlib
import types

import torch

from autograder.checks import lastbits
from autograder.checks.failures import CheckFailed
from autograder.protocol import wire

OBJECT = {"object": True}  # what the tape holds for a reference call that returned an object
REPLAYED_OBJECT = object()  # what a replay gives back for it
WENT_ANOTHER_WAY = "this check went another way than when it was recorded"


class Tape:
    """Live: the question and the reference's answer are computed on the spot."""

    replaying = False

    def draw(self, kind: str, spec: dict, produce, arguments: tuple | None = None):
        """What produce() gives; kind "input" (spec: how it is drawn) or "reference" (spec: the path
        called or read, with arguments = (args, kwargs) of a call)."""
        with lastbits.exempt():  # the question and the reference's own arithmetic: settled as a whole below
            value = produce()
        return lastbits.settle(value, kind)


class RecordingTape(Tape):
    def __init__(self):
        self.entries: list[dict] = []
        self._drawn: dict[tuple, list] = {}  # a tensor's identity (dtype, shape, bytes) -> [entry, position...]

    def draw(self, kind: str, spec: dict, produce, arguments: tuple | None = None):
        if arguments is not None:  # encoded before the reference runs: what it was asked, even if it changes them
            spec = dict(spec, args=[self._encode(value) for value in _comparable_arguments(arguments)])
        value = super().draw(kind, spec, produce)
        stored = OBJECT if isinstance(value, ReferenceProxy) else wire.dump_value(value)
        self._remember(value, [len(self.entries)])
        self.entries.append({"kind": kind, "spec": spec, "value": stored})
        return value

    def _remember(self, value, position: list) -> None:
        if isinstance(value, torch.Tensor):
            self._drawn.setdefault(_identity(value), position)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                self._remember(item, position + [index])

    def _encode(self, value):
        """JSON for a reference call's argument (as _comparable gives it), see the module's doc."""
        if isinstance(value, Recorded):
            return {"$object": str(value)}
        if isinstance(value, torch.Tensor):
            drawn = self._drawn.get(_identity(value))
            return {"$drawn": drawn} if drawn else {"$value": wire.dump_value(value)}
        if type(value) is list:
            return [self._encode(v) for v in value]
        if type(value) is tuple:
            return {"$tuple": [self._encode(v) for v in value]}
        if type(value) is dict:
            return {"$dict": {k: self._encode(v) for k, v in value.items()}}
        return value


class ReplayTape(Tape):
    replaying = True

    def __init__(self, entries: list[dict]):
        self.entries = entries
        self.position = 0
        self._value = _loader(entries)  # entry -> its recorded value

    def next_is(self, kind: str, path: str) -> bool:
        if self.position >= len(self.entries):
            return False
        entry = self.entries[self.position]
        return entry["kind"] == kind and entry["spec"].get("path") == path

    def draw(self, kind: str, spec: dict, produce=None, arguments: tuple | None = None):
        asked = _describe(kind, spec)
        if self.position >= len(self.entries):
            raise ReplayMismatch(f"{WENT_ANOTHER_WAY}: it asked for {asked}, after everything the recording has")
        entry = self.entries[self.position]
        recorded = entry["spec"]
        same_kind = entry["kind"] == kind and recorded.get("path") == spec.get("path")
        # An input must also be drawn alike (shape, dtype, scale); a call's arguments are compared below.
        detail = lastbits.difference(spec, recorded) if same_kind and kind == "input" else None
        if not same_kind or detail:
            raise ReplayMismatch(
                f"{WENT_ANOTHER_WAY}: it asked for {asked}, the recording has {_describe(entry['kind'], recorded)}"
                f"{f' ({detail})' if detail else ''}. "
                "An earlier result of yours probably has the wrong shape or type; see the other failed checks of this unit"
            )
        if arguments is not None:
            self._expect_same_arguments(spec["path"], arguments, recorded.get("args"))
        self.position += 1
        if entry["value"] == OBJECT:
            return REPLAYED_OBJECT
        value = self._value(self.position - 1)
        return lastbits.settle(value, kind) if kind == "reference" else value

    def _expect_same_arguments(self, path: str, arguments: tuple, recorded) -> None:
        if not isinstance(recorded, list):
            raise ReplayMismatch(
                f"the recording of the reference's {path} is in an older format (its arguments as a hash): "
                "this bundle comes from an older release; get public_checks/ again from the current assignment"
            )
        found = arguments_difference(_comparable_arguments(arguments), decode_arguments(recorded, self._value))
        if found:
            raise ReplayMismatch(
                f"{WENT_ANOTHER_WAY}: it asked the reference's {path} about other arguments: {found}. "
                "The check computes these arguments from its recorded inputs, and from earlier results of your "
                "code where it uses them: if another check of this unit failed, fix that first; otherwise "
                "public_checks/ does not match its checks.py (get both again)"
            )


class ReplayMismatch(CheckFailed):
    """A replay asked what its recording does not hold."""


def decode_arguments(encoded: list, recorded_value) -> tuple[list, dict]:
    """(args, kwargs) from their recorded JSON; recorded_value(entry) gives a drawn entry's value."""

    def decode(value):
        if isinstance(value, list):
            return [decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$drawn" in value:
            entry, *position = value["$drawn"]
            found = recorded_value(entry)
            for index in position:
                found = found[index]
            return found
        if "$value" in value:
            return wire.load_value(value["$value"])
        if "$tuple" in value:
            return tuple(decode(v) for v in value["$tuple"])
        if "$dict" in value:
            return {k: decode(v) for k, v in value["$dict"].items()}
        return Recorded(value["$object"])

    args, kwargs = encoded
    return decode(args), decode(kwargs)


class Recorded(str):
    """How a non-data argument (a reference object, some other object) is recorded: its name."""


def _comparable_arguments(arguments: tuple) -> tuple[list, dict]:
    args, kwargs = arguments
    return [_comparable(a) for a in args], {k: _comparable(v) for k, v in kwargs.items()}


def _comparable(value):
    """An argument as it is recorded: data as plain data, a reference object or any other object by name."""
    if isinstance(value, ReferenceProxy):
        return Recorded(f"<reference {value._path}>")
    if type(value) in (list, tuple):
        return type(value)(_comparable(v) for v in value)
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: _comparable(v) for k, v in value.items()}
    if value is None or isinstance(value, torch.Tensor):
        return value
    for plain in (bool, int, float, str):  # numpy scalars and other subclasses as the plain type, as wire.py does
        if isinstance(value, plain):
            return plain(value)
    return Recorded(f"<{type(value).__name__}>")


def arguments_difference(arguments: tuple[list, dict], recorded: tuple[list, dict]) -> str | None:
    """Which argument of a reference call differs from its recording beyond last bits, and how."""
    (args, kwargs), (recorded_args, recorded_kwargs) = arguments, recorded
    if len(args) != len(recorded_args) or sorted(kwargs) != sorted(recorded_kwargs):
        return f"{_signature(args, kwargs)}, recorded {_signature(recorded_args, recorded_kwargs)}"
    named = [(f"argument #{n}", a, r) for n, (a, r) in enumerate(zip(args, recorded_args), start=1)]
    named += [(f"argument {key}", kwargs[key], recorded_kwargs[key]) for key in recorded_kwargs]
    for name, got, expected in named:
        found = lastbits.difference(got, expected)
        if found:
            return f"{name}: {found}"
    return None


def _signature(args: list, kwargs: dict) -> str:
    keywords = f" and keywords {', '.join(sorted(kwargs))}" if kwargs else ""
    return f"{len(args)} positional argument(s){keywords}"


def _identity(tensor: torch.Tensor) -> tuple:
    plain = tensor.detach().cpu().contiguous()
    content = hashlib.sha256(plain.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest() if plain.numel() else ""
    return str(plain.dtype), tuple(plain.shape), content


def _describe(kind: str, spec: dict) -> str:
    if kind == "input":
        shape = ", ".join(str(n) for n in spec.get("shape", []))
        return f"a {spec.get('fn')} input {spec.get('dtype', 'torch.int64').removeprefix('torch.')}[{shape}]"
    return f"the reference's {spec.get('path')}"


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
        spec, arguments = {"path": path}, (args, kwargs)
        if self._tape.replaying:
            return self._wrap(self._tape.draw("reference", spec, arguments=arguments), path)
        produce = lambda: self._wrap(_copy(self._target(*_unwrap(args), **_unwrap(kwargs))), path)  # noqa: E731
        return self._tape.draw("reference", spec, produce, arguments)

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


def recording_difference(new: list[dict], old: list[dict]) -> str | None:
    """Where two recordings of one check differ beyond floating-point last bits (None: they do not):
    the same draws and reference calls in the same order, asked and answered alike. The sync test of
    released bundles compares with this, so a release on any CPU gives a bundle it accepts."""
    if len(new) != len(old):
        return f"{len(new)} tape entries, recorded {len(old)}"
    new_values, old_values = _loader(new), _loader(old)
    for index, (entry, recorded) in enumerate(zip(new, old)):
        where = f"entry {index} ({_describe(recorded['kind'], recorded['spec'])})"
        if (entry["kind"], entry["spec"].get("path")) != (recorded["kind"], recorded["spec"].get("path")):
            return f"{where}: now {_describe(entry['kind'], entry['spec'])}"
        asked, asked_before = dict(entry["spec"]), dict(recorded["spec"])
        args, args_before = asked.pop("args", None), asked_before.pop("args", None)
        found = lastbits.difference(asked, asked_before)
        if not found and (args, args_before) != (None, None):
            if isinstance(args, list) and isinstance(args_before, list):
                found = arguments_difference(decode_arguments(args, new_values), decode_arguments(args_before, old_values))
            else:
                found = "its arguments are recorded in another format (one release is older)"
        if not found and OBJECT in (entry["value"], recorded["value"]):
            found = None if entry["value"] == recorded["value"] else "an object in one recording, a value in the other"
        elif not found:
            answer = lastbits.difference(new_values(index), old_values(index))
            found = answer and f"the answer: {answer}"
        if found:
            return f"{where}: {found}"
    return None


def _loader(entries: list[dict]):
    """entry -> its recorded value, each loaded once."""
    loaded: dict[int, object] = {}

    def value(index: int):
        if index not in loaded:
            loaded[index] = wire.load_value(entries[index]["value"])
        return loaded[index]

    return value
