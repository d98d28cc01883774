"""A timed race's program: what one measurement does to the student's code, run
in the worker once per input set, all inside one request.

The grader records the program by running a check's set-up and timed lambdas
once on placeholders (`record`): every attribute read, attribute assignment
and call on the student's code or on the inputs becomes a step. The worker
runs the steps for each input set that came with the request (`run`), so the
layer's construction, its parameters, a forward before a timed backward and
the timed call itself all happen on the clock, and no input reaches the
student's process before the request that uses it.

Wire form: a slot is a value the program holds (0: the student's modules,
1..: the inputs in `inputs` order, then one per step). Slots travel as handles
of kind "slot". A step is ["get", slot, name], ["set", slot, name, value] or
["call", slot, args, kwargs]; get and call put their value in the next slot.
The result is plain data with slots in it.

Only the standard library, torch and the protocol's own modules are imported
here: the worker runs this module in the sandbox.
"""

from __future__ import annotations

from autograder.protocol import wire

SLOT = "slot"


class PlanError(TypeError):
    """A check's timed lambdas did something a recorded program cannot repeat."""


# --- the grader's side: recording -------------------------------------------


class Plan:
    def __init__(self, inputs: list[str]):
        self.inputs = list(inputs)
        self.steps: list[list] = []
        self.slots = 1 + len(self.inputs)
        self.result = None

    def wire_form(self) -> list:
        """The plan as plain data (slots as handles): what the worker's `run` takes before the input sets."""
        return [self.inputs, self.steps, self.result]


def record(prepare, timed, input_names: list[str]) -> Plan:
    """The program of timed(**prepare(code, **inputs)), prepare defaulting to passing code and inputs on."""
    plan = Plan(input_names)
    code = Placeholder(plan, 0, "")
    inputs = {name: Placeholder(plan, slot, name) for slot, name in enumerate(plan.inputs, start=1)}
    prepared = prepare(code, **inputs) if prepare else dict(code=code, **inputs)
    plan.result = _encode(timed(**prepared), "the timed result")
    return plan


class Placeholder:
    """Stands for a value the program will hold in the worker: reading, setting and calling are recorded."""

    __slots__ = ("_path", "_plan", "_slot")

    def __init__(self, plan: Plan, slot: int, path: str):
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_slot", slot)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str):
        if name.startswith("__"):  # keep Python's protocol probes local
            raise AttributeError(name)
        return self._then(["get", self._slot, name], f"{self._path}.{name}" if self._path else name)

    def __setattr__(self, name: str, value) -> None:
        where = f"{self._path}.{name}"
        self._plan.steps.append(["set", self._slot, name, _encode(value, f"the value set to {where}")])

    def __call__(self, *args, **kwargs):
        encoded = [_encode(a, f"an argument of {self._path}") for a in args]
        named = {k: _encode(v, f"argument {k} of {self._path}") for k, v in kwargs.items()}
        return self._then(["call", self._slot, encoded, named], f"{self._path}(...)")

    def _then(self, step: list, path: str) -> Placeholder:
        plan = self._plan
        plan.steps.append(step)
        plan.slots += 1
        return Placeholder(plan, plan.slots - 1, path)

    def _refuse(self, *_, **__):
        raise PlanError(
            f"{self._path or 'the code'} is a value of the timed program, not known while it is recorded: "
            "a timed check may only read, set and call attributes, and pass values on"
        )

    __bool__ = __iter__ = __len__ = __getitem__ = __index__ = __int__ = __float__ = _refuse

    def __repr__(self) -> str:
        return f"<timed program value {self._path}>"


def _encode(value, what: str, depth: int = 0):
    """value with placeholders as slot handles; the rest must be plain data (it is sent as it is)."""
    if depth > wire.MAX_NESTING:
        raise PlanError(f"{what} is nested too deeply")
    if isinstance(value, Placeholder):
        return wire.Ref(value._slot, SLOT, SLOT)
    if type(value) in (list, tuple):
        return type(value)(_encode(v, what, depth + 1) for v in value)
    if type(value) is dict:
        return {k: _encode(v, what, depth + 1) for k, v in value.items()}
    if not wire.is_plain(value):
        raise PlanError(f"{what} is a {type(value).__name__}: a timed program can only pass plain data on")
    return value


# --- the worker's side: running ---------------------------------------------


def run(inputs: list, steps: list, result, input_sets: list, modules) -> list:
    """The program once per input set, in order; the results, non-plain values as wire.Opaque.

    modules(name) imports the student's module `name` (what slot 0 reads give).
    """
    results = []
    for values in input_sets:
        if not (isinstance(values, dict) and sorted(values) == sorted(inputs)):
            raise ValueError(f"an input set must have exactly the inputs {inputs}")
        slots = [_Modules(modules)] + [values[name] for name in inputs]
        for step in steps:
            value = _do(step, slots)
            if step[0] != "set":
                slots.append(value)
        results.append(_fill(result, slots, opaque=True))
    return results


class _Modules:
    def __init__(self, modules):
        self._modules = modules

    def __getattr__(self, name: str):
        return self._modules(name)


def _do(step: list, slots: list):
    kind, target = step[0], _slot(slots, step[1])
    if kind == "get":
        return getattr(target, str(step[2]))
    if kind == "set":
        setattr(target, str(step[2]), _fill(step[3], slots))
        return None
    if kind == "call":
        return target(*_fill(step[2], slots), **_fill(step[3], slots))
    raise ValueError(f"unknown step {kind!r:.20}")


def _slot(slots: list, number) -> object:
    if not (type(number) is int and 0 <= number < len(slots)):
        raise ValueError(f"the program refers to slot {number!r:.20}, which it does not hold")
    return slots[number]


def _fill(value, slots: list, opaque: bool = False):
    """value with each slot handle replaced by what the slot holds; with opaque, a non-plain one as wire.Opaque."""
    if isinstance(value, wire.Ref):
        if value.kind != SLOT:
            raise ValueError("a program may only refer to its own slots")
        held = _slot(slots, value.id)
        if opaque and not wire.is_plain(held):
            return wire.Opaque(_type_name(held))
        return held
    if type(value) in (list, tuple):
        return type(value)(_fill(v, slots, opaque) for v in value)
    if type(value) is dict:
        return {k: _fill(v, slots, opaque) for k, v in value.items()}
    return value


def _type_name(value) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
