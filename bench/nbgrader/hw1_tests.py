"""The test helper of the nbgrader side of bench/nbgrader_side_by_side.py: what each test cell calls.

The benchmark's nbgrader course puts this file and a copy of reference/hw1/ in
<course>/grading/ and runs `nbgrader autograde` with that folder on PYTHONPATH,
as a course installs its grading helpers on the grading host. Each test cell of
the hw1 notebook is

    from hw1_tests import run_check
    run_check("activations.Sigmoid.backward", globals())

and is worth the points of our check of that id. run_check runs that check's own
code (reference/hw1/public_checks.py, hidden_checks.py) in the notebook's kernel,
so both graders do the same work: the same inputs (public checks' fixed seeds;
hidden ones keyed by the student id, the folder nbgrader runs the notebook in,
and the course secret in $AUTOGRADER_SECRET), outputs against the reference and
torch, finite differences of each backward pass, optimizers step by step against
torch.optim (our Trial, checks/trial.py), and the same forbidden-API rules: the
notebook's `# file:` cells scanned once per kernel, and while the student's code
runs, a dispatch mode that refuses the unit's forbidden operators and autograd.

What nbgrader leaves out and a fair comparison must keep: the student's code is
called across a boundary that copies tensors in and out, as our worker's pipe
does, so a unit that writes into its inputs, or returns its own state, is judged
as we judge it. What it may skip: processes, pipes, jails and per-call time limits
(the kernel runs everything; nbgrader's cell timeout is the only limit).
"""

from __future__ import annotations

import contextlib
import random
import types
from pathlib import Path

import numpy
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from autograder.checks import forbidden
from autograder.checks.failures import CheckFailed
from autograder.checks.seeds import PUBLIC_STUDENT, check_seed, process_seed
from autograder.checks.tape import Tape
from autograder.checks.trial import Trial
from autograder.engine.assignment import load_reference
from autograder.protocol import fixtures
from autograder.protocol.guard import operators_for
from autograder.protocol.proxy import describe_call, describe_value
from autograder.submission.notebook import extract

REFERENCE = Path(__file__).resolve().parent / "reference" / "hw1"
NOTEBOOK = "hw1.ipynb"  # the student's notebook, in the folder nbgrader runs it in: autograded/<student>/hw1/

_kernel: dict = {}  # what one kernel (one student) works out once: the assignment, the forbidden units


def run_check(check_id: str, namespace: dict) -> None:
    """Our check `check_id` against the student's code in `namespace` (the notebook's globals);
    AssertionError with the check's message when it fails."""
    assignment = _assignment()
    spec = next(spec for spec in assignment.checks if spec.id == check_id)
    banned = _banned_units(assignment).get(spec.unit)
    if banned:
        raise AssertionError(banned)
    hidden = spec.visibility == "hidden"
    seed = check_seed(_student() if hidden else PUBLIC_STUDENT, assignment.name, spec.id,
                      assignment.secret if hidden else None)
    _seed_everything(process_seed(seed))  # what our worker does in each check's process (Dropout's masks)
    guard = OperatorGuard(operators_for(assignment.forbidden_for(spec.unit)))
    session = Boundary(namespace, assignment.modules, guard, show_scalars=not hidden)
    tape = Tape()
    try:
        spec.run(Trial(session, assignment.reference_root(tape), tape, seed))
    except CheckFailed as failure:
        raise AssertionError(failure.message if not hidden else failure.summary) from None
    finally:
        if guard.violations:
            raise AssertionError(f"{spec.unit} called a forbidden API: {'; '.join(guard.violations[:3])}")


def _assignment():
    if "assignment" not in _kernel:
        _kernel["assignment"] = load_reference("hw1", REFERENCE)
    return _kernel["assignment"]


def _student() -> str:
    folder = Path.cwd()  # nbgrader autogrades in autograded/<student>/<assignment>/
    if folder.parent.parent.name != "autograded":
        raise RuntimeError(f"hidden checks need the student id: run by `nbgrader autograde`, not in {folder}")
    return folder.parent.name


def _banned_units(assignment) -> dict[str, str]:
    """unit -> why it fails: its source in the notebook names a forbidden API (our static scan)."""
    if "banned" not in _kernel:
        files = extract(Path(NOTEBOOK).read_bytes(), NOTEBOOK).files
        banned = {}
        for module in assignment.modules:
            units = {spec.unit for spec in assignment.checks if spec.module == module}
            rules = {unit.split(".", 1)[1]: assignment.forbidden_in_source(unit) for unit in units}
            for name, violations in forbidden.scan_source(files.get(f"{module}.py", ""), rules).items():
                if violations:
                    listed = "; ".join(str(v) for v in violations[:5])
                    banned[f"{module}.{name}"] = f"{module}.{name} uses a forbidden API ({listed})"
        _kernel["banned"] = banned
    return _kernel["banned"]


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    numpy.random.seed(seed % (1 << 32))


class OperatorGuard(TorchDispatchMode):
    """Entered while the student's code runs: refuses the aten operators only the unit's forbidden
    APIs compute, and any operator on a tensor that requires grad (autograd is forbidden to all)."""

    def __init__(self, operators: set[str]):
        super().__init__()
        self.operators = operators
        self.violations: list[str] = []

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # as our guard: torch's dynamo-disabling wrapper costs ~3 s to import and ~20x per operator

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in self.operators:
            self._refuse(f"torch.ops.aten.{name} (what a forbidden API computes)")
        if any(isinstance(value, torch.Tensor) and value.requires_grad for value in (*args, *kwargs.values())):
            self._refuse(f"autograd (torch.ops.aten.{name} on a tensor that requires grad)")
        return func(*args, **kwargs)

    def _refuse(self, what: str) -> None:
        self.violations.append(what)  # recorded first: the student's code may catch the error
        raise RuntimeError(f"{what} is not allowed here: implement it with plain tensor operations")


class Boundary:
    """The `session` a Trial talks to: the student's code in this process, behind copies.

    Tensors going in are copied, tensors coming out are copied, and objects
    (modules, classes, instances, methods) come out as Student stand-ins, as our
    worker's pipe and proxies (protocol/proxy.py) do.
    """

    def __init__(self, namespace: dict, modules: list[str], guard: OperatorGuard, show_scalars: bool):
        self.guard = guard
        self.show_scalars = show_scalars
        self.last_call = ""
        names = _Namespace(namespace)  # the notebook defines every file's names in one namespace
        self.student = _Namespace({module: Student(self, names, module) for module in modules})
        self._running = 0  # nested calls into the student's code: the guard is entered once

    def call(self, target: Student, args, kwargs):
        self.last_call = describe_call(target._path, args, kwargs, scalars=self.show_scalars)
        inward_args = [self.inward(value) for value in args]
        inward_kwargs = {key: self.inward(value) for key, value in kwargs.items()}
        self._running += 1
        try:
            if self._running == 1:
                with self.guard:
                    result = target._target(*inward_args, **inward_kwargs)
            else:
                result = target._target(*inward_args, **inward_kwargs)
        finally:
            self._running -= 1
        return self.outward(result, self.last_call)

    def inward(self, value):
        if isinstance(value, Student):
            return value._target
        if isinstance(value, torch.Tensor):
            return value.detach().clone()
        if isinstance(value, (list, tuple)):
            return type(value)(self.inward(item) for item in value)
        if isinstance(value, dict):
            return {key: self.inward(item) for key, item in value.items()}
        return value

    def outward(self, value, path: str):
        if isinstance(value, torch.Tensor):
            return value.detach().clone()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self.outward(item, path) for item in value)
        return Student(self, value, path)

    def put(self, value) -> Student:
        """value placed on the student's side, uncopied when passed to its code (in-place changes show)."""
        return Student(self, self.inward(value), describe_value(value, scalars=self.show_scalars))

    def put_all(self, values: list) -> list[Student]:
        return [self.put(value) for value in values]

    def fetch(self, handle: Student):
        return self.outward(handle._target, handle._path)

    def fetch_all(self, handles: list[Student]) -> list:
        return [self.fetch(handle) for handle in handles]

    def fetching(self, handles):
        return contextlib.nullcontext(types.SimpleNamespace(values=None))  # no round trip to save: fetch_all

    def fixture(self, name: str) -> Student:
        return Student(self, getattr(fixtures, name), name)


class Student:
    """A student object seen from the checks: attribute reads come out copied, calls go through the Boundary."""

    __slots__ = ("_path", "_session", "_target")

    def __init__(self, session: Boundary, target, path: str):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.outward(getattr(self._target, name), f"{self._path}.{name}")

    def __setattr__(self, name: str, value) -> None:
        setattr(self._target, name, self._session.inward(value))

    def __call__(self, *args, **kwargs):
        value = self._session.call(self, args, kwargs)
        if isinstance(value, Student):  # an instance: named by its constructor call, as ours are
            object.__setattr__(value, "_path", describe_call(self._path, args, kwargs, shapes=False,
                                                              scalars=self._session.show_scalars))
        return value


class _Namespace:
    """Attribute access over a dict: the notebook's globals seen as a module."""

    def __init__(self, names: dict):
        self._names = names

    def __getattr__(self, name: str):
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(f"the notebook defines no {name!r}") from None
