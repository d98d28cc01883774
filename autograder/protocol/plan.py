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

A check's batched calls (`Calls`, recorded by Session.record_calls) are the
same kind of program with two more things: a step's target may be an object the
check's process already holds (a wire.Ref of a handle the grader has, resolved
there; a timed race's program runs in two processes, so its recording refuses
them), and the step ["callmethod", target, name, args, kwargs] (the `callmethod`
request's getattr and call). The worker runs it with `run_calls`, which mirrors a
request per step: a step that raises ends the run with the results so far and
that step's number, and the run stops after a result that the grader would
refuse (`expect`), so the student's code runs exactly as far as it would have,
call by call.

Only the standard library, torch and the protocol's own modules are imported
here: the worker runs this module in the sandbox.
"""

from __future__ import annotations

import torch

from autograder.protocol import wire

SLOT = "slot"
OBJECT = "object"  # a step's target in a check's batched calls: an object the check's process holds


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


# --- the grader's side: a check's calls, recorded for many argument sets ----


class Calls:
    """function(**inputs), a check's function that sets attributes of objects living in the check's
    process and calls them, recorded once to run for many argument sets in one request.

    Session.record_calls records it: the function runs once on `Input` stand-ins while the session
    hands each request to `set` or `call` here instead of sending it. Every argument and every value
    set is a use: an input of the program that each argument set fills anew (`input_set`), so every
    call gets fresh copies of what it is passed, as a request of its own would. The result is one
    call's result, indexed by `keys` as the function indexed it. `describes` holds, per step, what
    its request would have been described as (StudentError names the step that raised).
    """

    def __init__(self, examples: dict, handle_of):
        self.examples = examples  # input name -> its value at recording (call descriptions show it)
        self.handle_of = handle_of  # value -> its wire.Ref if it is a handle of this check's process, else None
        self.uses: list = []  # per use: the value, with Input stand-ins for the inputs
        self.steps: list[list] = []
        self.describes: list[str] = []
        self.producing: list[int] = []  # the steps that put a value in a slot (calls), in order
        self.result_step: int | None = None
        self.keys: tuple = ()

    @property
    def describe(self) -> str:
        """What the whole program is described as: its last call (the one a forward pass makes last)."""
        calls = [d for step, d in zip(self.steps, self.describes) if step[0] != "set"]
        return calls[-1] if calls else self.describes[-1]

    def record(self, function) -> "Calls":
        try:
            returned = function(**{name: Input(name, value) for name, value in self.examples.items()})
        except PlanError:
            raise
        except Exception as exc:  # Python logic on a stand-in, say: evaluated call by call instead
            raise PlanError(f"the function could not be recorded ({type(exc).__name__}: {exc})") from exc
        if not isinstance(returned, Result) or returned._calls is not self:
            raise PlanError("a recorded function must return the result of one of its calls")
        self.result_step, self.keys = returned._step, returned._keys
        return self

    def request(self, op: str, fields: dict, args, describe: str) -> None:
        """A request the function makes other than a call: only setting an attribute is recorded."""
        if op != "set":
            raise PlanError(f"{describe}: a recorded function may only set attributes of the check's objects and call them")
        self._step(["set", _held(fields["ref"]), str(fields["name"]), self._use(args[0])], describe)

    def call(self, target: wire.Ref, method: str | None, args, kwargs, describe: str) -> "Result":
        if target.kind == "class":  # a new object each evaluation: a handle today, not a value
            raise PlanError(f"{describe}: a recorded function may not construct objects")
        encoded = [self._use(a) for a in args], {k: self._use(v) for k, v in kwargs.items()}
        step = ["callmethod", _held(target.id), method, *encoded] if method else ["call", _held(target.id), *encoded]
        self._step(step, describe)
        self.producing.append(len(self.steps) - 1)
        return Result(self, len(self.steps) - 1, ())

    def _step(self, step: list, describe: str) -> None:
        self.steps.append(step)
        self.describes.append(describe)

    def _use(self, value) -> wire.Ref:
        """A new input of the program holding value (its stand-ins filled per argument set)."""
        self._check_use(value, 0)
        self.uses.append(value)
        return wire.Ref(len(self.uses), SLOT, SLOT)  # slot 0 holds the modules

    def _check_use(self, value, depth: int) -> None:
        if depth > wire.MAX_NESTING:
            raise PlanError("an argument is nested too deeply")
        if isinstance(value, Result):
            raise PlanError("a recorded function may not pass one call's result to another")
        if isinstance(value, Input) or self.handle_of(value) is not None:
            return
        if type(value) in (list, tuple) or (type(value) is dict and all(type(k) is str for k in value)):
            for item in value.values() if type(value) is dict else value:
                self._check_use(item, depth + 1)
        elif not wire.is_plain(value):
            raise PlanError(f"a {type(value).__name__} cannot be sent to the check's process")

    def wire_form(self) -> list:
        """The program as run_calls takes it before the input sets: inputs, steps, result slot, keys."""
        result = 1 + len(self.uses) + self.producing.index(self.result_step)
        return [[str(n) for n in range(1, len(self.uses) + 1)], self.steps, wire.Ref(result, SLOT, SLOT), list(self.keys)]

    def index(self, result):
        """result indexed by keys, as the function indexed its call's result."""
        for key in self.keys:
            result = result[key]
        return result

    def input_set(self, arguments: dict) -> dict:
        """One evaluation's inputs: each use with the stand-ins replaced by arguments[name]."""
        return {str(n): _substitute(use, arguments) for n, use in enumerate(self.uses, start=1)}


def _held(ref_id: int) -> wire.Ref:
    """A step's target: an object the check's process holds under this handle id."""
    return wire.Ref(ref_id, OBJECT, OBJECT)


def _substitute(value, arguments: dict):
    if isinstance(value, Input):
        return arguments[value._name]
    if type(value) in (list, tuple):
        return type(value)(_substitute(v, arguments) for v in value)
    if type(value) is dict:
        return {k: _substitute(v, arguments) for k, v in value.items()}
    return value


class _StandIn:
    """A value of a recorded Calls program: whatever the function does to it beyond what the
    subclass allows makes the recording fail (and the function runs call by call)."""

    __slots__ = ()

    def __getattr__(self, name: str):
        if name.startswith("__"):  # keep Python's protocol probes local
            raise AttributeError(name)
        self._refuse()

    def _refuse(self, *_, **__):
        raise PlanError(f"{self!r} is only known in the check's process: a recorded function may only pass it on")

    __bool__ = __iter__ = __len__ = __index__ = __int__ = __float__ = __call__ = _refuse


class Input(_StandIn):
    """An input of a recorded function; call descriptions show its value at recording (`example`)."""

    __slots__ = ("_name", "example")

    def __init__(self, name: str, example):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "example", example)

    def __setattr__(self, name, value):
        self._refuse()

    __getitem__ = _StandIn._refuse

    def __repr__(self) -> str:
        return f"<recorded input {self._name}>"


class Result(_StandIn):
    """A call's result in a recorded function: it may be indexed by numbers and names, and returned."""

    __slots__ = ("_calls", "_step", "_keys")

    def __init__(self, calls: Calls, step: int, keys: tuple):
        object.__setattr__(self, "_calls", calls)
        object.__setattr__(self, "_step", step)
        object.__setattr__(self, "_keys", keys)

    def __setattr__(self, name, value):
        self._refuse()

    def __getitem__(self, key):
        if type(key) not in (int, str):
            raise PlanError(f"a recorded result may be indexed by an int or a str, not by a {type(key).__name__}")
        return Result(self._calls, self._step, self._keys + (key,))

    def __repr__(self) -> str:
        return f"<recorded result of {self._calls.describes[self._step]}>"


# --- the worker's side: running ---------------------------------------------


def run(inputs: list, steps: list, result, input_sets: list, modules) -> list:
    """The program once per input set, in order; the results, non-plain values as wire.Opaque.

    modules(name) imports the student's module `name` (what slot 0 reads give).
    """
    results = []
    for values in input_sets:
        slots = _first_slots(inputs, values, modules)
        for step in steps:
            value = _action(step, slots, None)()
            if step[0] != "set":
                slots.append(value)
        results.append(_fill(result, slots, None, opaque=True))
    return results


def run_calls(inputs: list, steps: list, result, keys: list, input_sets: list, expect, *,
              modules, objects, describe_error, after_step) -> dict:
    """A check's batched calls (Calls.wire_form) once per input set, each step as its request would run.

    objects(id): the object this process holds under a handle id; describe_error(exc): a request's
    error reply for exc; after_step(): what the worker does after every request. The result slot is
    taken as a reply carries it as soon as its call returns, then indexed by keys. expect: None or
    {"dtype", "shape"}: stop after a result that is not such a tensor (the grader refuses it there).

    Returns {"results", "raw", "failed"}: the results so far; raw: whether the last one could not be
    indexed here (and comes unindexed: the grader indexes it, and fails as it would); failed: None, or
    {"step", "error"} where a step raised (its input set has no result).
    """
    results = []
    for values in input_sets:
        slots, taken = _first_slots(inputs, values, modules), None
        for number, step in enumerate(steps):
            action = _action(step, slots, objects)
            try:
                value = action()
            except BaseException as exc:  # the student's code may raise anything, as in a request of its own
                return {"results": results, "raw": False, "failed": {"step": number, "error": describe_error(exc)}}
            finally:
                after_step()
            if step[0] != "set":
                slots.append(value)
                if isinstance(result, wire.Ref) and len(slots) - 1 == result.id:
                    taken = _as_replied(value)
        indexed = _index(taken, keys)
        if indexed is _UNINDEXABLE:
            return {"results": results + [taken], "raw": True, "failed": None}
        results.append(indexed)
        if expect is not None and not _as_expected(indexed, expect):
            break
    return {"results": results, "raw": False, "failed": None}


class _Modules:
    def __init__(self, modules):
        self._modules = modules

    def __getattr__(self, name: str):
        return self._modules(name)


def _first_slots(inputs: list, values, modules) -> list:
    if not (isinstance(values, dict) and sorted(values) == sorted(inputs)):
        raise ValueError(f"an input set must have exactly the inputs {inputs}")
    return [_Modules(modules)] + [values[name] for name in inputs]


def _action(step, slots: list, objects):
    """The step, ready to run: its target and values are resolved first, so that a malformed step
    raises ValueError here and only the student's code runs in what is returned."""
    if not (type(step) is list and len(step) >= 3):
        raise ValueError(f"a step must be a list of its kind, target and more, got {step!r:.40}")
    kind, target = step[0], _target(step[1], slots, objects)
    if kind == "get" and len(step) == 3:
        return lambda: getattr(target, str(step[2]))
    if kind == "set" and len(step) == 4:
        value = _fill(step[3], slots, objects)
        return lambda: setattr(target, str(step[2]), value)
    if kind == "call" and len(step) == 4:
        args, kwargs = _arguments(step[2], step[3], slots, objects)
        return lambda: target(*args, **kwargs)
    if kind == "callmethod" and len(step) == 5:
        args, kwargs = _arguments(step[3], step[4], slots, objects)
        return lambda: getattr(target, str(step[2]))(*args, **kwargs)
    raise ValueError(f"unknown step {kind!r:.20} of {len(step)} items")


def _arguments(args, kwargs, slots: list, objects) -> tuple[list, dict]:
    if not (type(args) is list and type(kwargs) is dict):
        raise ValueError("a call's arguments must be a list and a dict")
    return _fill(args, slots, objects), _fill(kwargs, slots, objects)


def _target(target, slots: list, objects):
    if isinstance(target, wire.Ref):
        return _object(target, objects)
    return _slot(slots, target)


def _object(ref: wire.Ref, objects):
    """The object a handle names: only in a check's batched calls (a timed race's program runs in two processes)."""
    if ref.kind == SLOT:
        raise ValueError("a slot is named by its number where a step names its target")
    if objects is None:
        raise ValueError("a timed program may only refer to its own slots")
    return objects(ref.id)


def _slot(slots: list, number) -> object:
    if not (type(number) is int and 0 <= number < len(slots)):
        raise ValueError(f"the program refers to slot {number!r:.20}, which it does not hold")
    return slots[number]


def _fill(value, slots: list, objects, opaque: bool = False):
    """value with each slot handle replaced by what the slot holds (with opaque, a non-plain one as
    wire.Opaque), and each other handle by the object it names (objects: see _object)."""
    if isinstance(value, wire.Ref):
        if value.kind != SLOT:
            return _object(value, objects)
        held = _slot(slots, value.id)
        if opaque and not wire.is_plain(held):
            return wire.Opaque(_type_name(held))
        return held
    if type(value) in (list, tuple):
        return type(value)(_fill(v, slots, objects, opaque) for v in value)
    if type(value) is dict:
        return {k: _fill(v, slots, objects, opaque) for k, v in value.items()}
    return value


def _as_replied(value):
    """value as the reply to its call would carry it, taken now: plain data with its tensors copied
    (later steps may change them in place), or wire.Opaque."""
    if not wire.is_plain(value):
        return wire.Opaque(_type_name(value))
    return _copied(value)


def _copied(value):
    if isinstance(value, torch.Tensor):
        return value.detach().as_subclass(torch.Tensor).clone()
    if type(value) in (list, tuple):
        return type(value)(_copied(v) for v in value)
    if type(value) is dict:
        return {k: _copied(v) for k, v in value.items()}
    return value


_UNINDEXABLE = object()


def _index(value, keys: list):
    """value[key] for each key in turn, as the grader would index the reply; _UNINDEXABLE where that
    is not plain indexing of plain data, or raises (the grader then indexes it and fails as it would)."""
    for key in keys:
        if not (type(value) in (list, tuple, dict) or type(value) is torch.Tensor) or type(key) not in (int, str):
            return _UNINDEXABLE
        try:
            value = value[key]
        except BaseException:
            return _UNINDEXABLE
    return value


def _as_expected(value, expect) -> bool:
    """Whether value is a tensor of the dtype and shape the grader expects (see run_calls)."""
    return (
        isinstance(expect, dict)
        and type(value) is torch.Tensor
        and wire.DTYPE_NAMES.get(value.dtype) == expect.get("dtype")
        and list(value.shape) == expect.get("shape")
    )


def _type_name(value) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
