"""The guard patches torch for good, so it runs in child interpreters."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autograder.protocol.guard

GUARD_FILE = Path(autograder.protocol.guard.__file__)

GUARDED = [
    "torch.sigmoid",
    "torch.nn.functional.sigmoid",
    "torch.Tensor.sigmoid",
    "torch.nn.Sigmoid",
    "torch.autograd.grad",
    "torch.Tensor.backward",
    "torch.func",
    "torch.optim",
    "torch.autograd.Function.apply",  # a classmethod
    "torch.nn.Parameter",  # its __init__ is object's; the arguments go to __new__
    "torch.not_in_this_torch",
    "no_such_package.anything",
]

CHEATS = """\
import torch
from torch import sigmoid as imported_sigmoid
import torch.nn.functional as F


def direct(x):
    return torch.sigmoid(x)


def imported(x):
    return imported_sigmoid(x)


def method(x):
    return x.sigmoid()


def functional(x):
    return F.sigmoid(x)


def module(x):
    return torch.nn.Sigmoid()(x)


def autograd_grad(x):
    x = x.clone().requires_grad_()
    return torch.autograd.grad((x * x).sum(), x)[0]


def tensor_backward(x):
    x = x.clone().requires_grad_()
    (x * x).sum().backward()
    return x.grad


def func_module(x):
    return torch.func.vmap(torch.exp)(x)


def optimizer(x):
    return torch.optim.SGD([x.clone().requires_grad_()], lr=0.1)


def caught_by_the_student(x):
    try:
        return torch.sigmoid(input=x)
    except Exception:
        return 1 / (1 + torch.exp(-x))


class Subclassed(torch.nn.Sigmoid):
    pass


class OwnOptimizer(torch.optim.Optimizer):
    def __init__(self, params):
        super().__init__(params, {})


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


def custom_function(x):
    return Square.apply(x)
"""

LEGIT = """\
import torch
import torch.nn.functional as F


def legit(x):
    # torch.exp is not guarded; silu calls guarded APIs from inside torch and computes no sigmoid
    # operator of its own, which must pass.
    return torch.exp(x) + F.silu(x) + 1 / (1 + torch.exp(-x))
"""

# Other spellings of the same operations: only the dispatcher-level guard sees them.
SPELLINGS = """\
import threading

import torch


def aten_packet(x):
    return torch.ops.aten.sigmoid(x)  # the packet


def aten_overload(x):
    return torch.ops.aten.sigmoid.default(x)


def unbound_forward(x):
    return torch.nn.Sigmoid.forward(None, x)


def private_functorch(x):
    from torch._functorch.apis import grad  # torch.func.grad, not through the name the guard wraps
    return grad(lambda a: (a * a).sum())(x)


def requires_grad_flag(x):
    a = x.detach().clone()
    a.requires_grad = True
    return (a * a).sum()


def in_a_thread(x):
    results = []
    worker = threading.Thread(target=lambda: results.append(torch.ops.aten.sigmoid(x)))
    worker.start()
    worker.join()
    return results


def remove_the_guard(x):
    torch._C._pop_torch_dispatch_stack.__wrapped__(None)  # the original, behind the name guard
    return torch.ops.aten.sigmoid(x)
"""

def line_of(text: str, source: str = CHEATS) -> int:
    """The number of the only line of `source` that contains `text`."""
    (number,) = [n for n, line in enumerate(source.splitlines(), start=1) if text in line]
    return number


# Runs in the child: loads guard.py by path, since the sandbox sees only
# that file, installs it, then imports the student's modules.
DRIVER = """\
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("guard", sys.argv[1])
guard_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard_module)
guard = guard_module.Guard(json.loads(sys.argv[3]), sys.argv[2])
guard.install()
assert not any(name.startswith("autograder") for name in sys.modules), "the guard imported the package"

import torch
sys.path.insert(0, sys.argv[2])
outcomes = {}
x = torch.linspace(-2, 2, 5, dtype=torch.float64)

def attempt(label, call):
    try:
        call()
        outcomes[label] = "passed"
    except guard_module.ForbiddenAPIError as error:
        outcomes[label] = "refused: " + str(error)

%s

print(json.dumps({"outcomes": outcomes, "violations": guard.violations}))
"""


def run_guarded(tmp_path: Path, modules: dict[str, str], body: str, guarded=GUARDED) -> dict:
    student_dir = tmp_path / "student"
    student_dir.mkdir()
    for name, source in modules.items():
        (student_dir / f"{name}.py").write_text(source)
    driver = DRIVER % textwrap.dedent(body)
    completed = subprocess.run(
        [sys.executable, "-c", driver, str(GUARD_FILE), str(student_dir), json.dumps(guarded)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


def refusal(api: str, location: str) -> str:
    return f"refused: {api} is not allowed here ({location}): implement it with plain tensor operations"


AUTOGRAD_MUL = "autograd (torch.ops.aten.mul on a tensor that requires grad)"

# function of CHEATS -> (the API it calls, the text of the line that calls it)
DIRECT_CHEATS = {
    "direct": ("torch.sigmoid", "return torch.sigmoid(x)"),
    "imported": ("torch.sigmoid", "return imported_sigmoid(x)"),
    "method": ("torch.Tensor.sigmoid", "return x.sigmoid()"),
    "functional": ("torch.nn.functional.sigmoid", "return F.sigmoid(x)"),
    "module": ("torch.nn.Sigmoid", "return torch.nn.Sigmoid()(x)"),
    # Building the graph is refused before the call: the dispatcher sees a tensor that requires grad.
    "autograd_grad": (AUTOGRAD_MUL, "torch.autograd.grad("),
    "tensor_backward": (AUTOGRAD_MUL, ".sum().backward()"),
    "func_module": ("torch.func.vmap", "torch.func.vmap("),
    "optimizer": ("torch.optim.SGD", "torch.optim.SGD("),
    "custom_function": ("torch.autograd.Function.apply", "Square.apply(x)"),
}


@pytest.fixture(scope="module")
def cheats_run(tmp_path_factory) -> dict:
    """Every cheat of CHEATS, tried in one child (starting one costs seconds)."""
    return run_guarded(tmp_path_factory.mktemp("cheats"), {"activations": CHEATS}, f"""\
        import activations
        for name in {list(DIRECT_CHEATS)!r}:
            attempt(name, lambda: getattr(activations, name)(x))
        attempt("caught", lambda: activations.caught_by_the_student(x))
        attempt("subclassed", lambda: activations.Subclassed())
        attempt("own_optimizer", lambda: activations.OwnOptimizer([x.clone().requires_grad_()]))
        """)


def test_forbidden_calls_from_student_files_are_refused(cheats_run):
    locations = {name: f"activations.py:{line_of(text)} in {name}" for name, (_, text) in DIRECT_CHEATS.items()}
    for name, (api, _) in DIRECT_CHEATS.items():
        assert cheats_run["outcomes"][name] == refusal(api, locations[name])
    assert cheats_run["violations"][: len(DIRECT_CHEATS)] == [
        f"{api} {'reached from' if api == AUTOGRAD_MUL else 'called at'} {locations[name]}"
        for name, (api, _) in DIRECT_CHEATS.items()
    ]


def test_violations_are_recorded_even_when_the_student_catches_the_error(cheats_run):
    assert cheats_run["outcomes"]["caught"] == "passed"
    location = f"activations.py:{line_of('torch.sigmoid(input=x)')} in caught_by_the_student"
    assert cheats_run["violations"][len(DIRECT_CHEATS)] == f"torch.sigmoid called at {location}"


def test_subclasses_defined_by_the_student_are_refused_wherever_constructed(cheats_run):
    super_call = f"activations.py:{line_of('super().__init__(params, {})')} in __init__"
    assert cheats_run["outcomes"]["subclassed"] == refusal("torch.nn.Sigmoid", "class activations.Subclassed")
    assert cheats_run["outcomes"]["own_optimizer"] == refusal("torch.optim.Optimizer", super_call)
    assert cheats_run["violations"][len(DIRECT_CHEATS) + 1 :] == [
        "torch.nn.Sigmoid subclassed by class activations.Subclassed",
        f"torch.optim.Optimizer called at {super_call}",
    ]


def test_calls_from_torch_and_from_other_files_pass(tmp_path):
    result = run_guarded(tmp_path, {"legit": LEGIT}, """\
        import legit
        attempt("legit", lambda: legit.legit(x))
        # The worker itself (not a student file) may use everything guarded.
        attempt("worker_sigmoid", lambda: torch.sigmoid(x))
        attempt("worker_method", lambda: x.sigmoid())
        attempt("worker_module", lambda: torch.nn.Sigmoid()(x))
        attempt("worker_optimizer", lambda: torch.optim.SGD([x.clone().requires_grad_()], lr=0.1))
        attempt("worker_backward", lambda: (x.clone().requires_grad_() ** 2).sum().backward())
        attempt("worker_vmap", lambda: torch.func.vmap(torch.exp)(x))
        assert torch.allclose(legit.legit(x), torch.exp(x) + x * torch.sigmoid(x) + torch.sigmoid(x))
        """)
    assert set(result["outcomes"].values()) == {"passed"}
    assert result["violations"] == []


def test_the_guarded_callables_keep_working(tmp_path):
    result = run_guarded(tmp_path, {}, """\
        y = torch.randn(3, 4, dtype=torch.float64).requires_grad_()
        p = torch.nn.Parameter(torch.randn(3))
        assert torch.equal(torch.sigmoid(x), 1 / (1 + torch.exp(-x)))
        assert torch.equal(p.sigmoid(), torch.sigmoid(p))
        assert torch.nn.Sigmoid.__init__.__name__ == "__init__"
        assert torch.sigmoid.__name__ == "sigmoid"
        (g,) = torch.autograd.grad(y.sigmoid().sum(), y)
        assert torch.allclose(g, torch.sigmoid(y) * (1 - torch.sigmoid(y)))
        optimizer = torch.optim.Adam([p], lr=0.1)
        p.grad = torch.ones(3)
        optimizer.step()
        assert torch.Tensor(2).shape == (2,)  # torch.Tensor.__init__ is untouched
        assert torch.equal(torch.nn.Parameter(torch.ones(2)), torch.ones(2))
        x.requires_grad_()
        torch.nn.functional.softplus(x).sum().backward()
        assert torch.allclose(x.grad, torch.sigmoid(x))

        class Cube(torch.autograd.Function):  # apply is a guarded classmethod
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x**3

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 3 * x**2 * grad

        y = torch.tensor([2.0], requires_grad=True)
        Cube.apply(y).backward()
        assert y.grad.item() == 12.0
        """)
    assert result["violations"] == []


def test_guarding_a_module_leaves_its_re_exported_classes_alone(tmp_path):
    student = """\
import torch
import torch.nn.functional as F


def uses_functional(x):
    return F.relu(x)


def uses_re_exports(x):
    return torch.Tensor([1.0]) + torch.relu(x)
"""
    result = run_guarded(tmp_path, {"student": student}, """\
        import student
        attempt("uses_functional", lambda: student.uses_functional(x))
        attempt("uses_re_exports", lambda: student.uses_re_exports(x))
        """, guarded=["torch.nn.functional"])
    location = f"student.py:{line_of('return F.relu(x)', student)} in uses_functional"
    assert result["outcomes"] == {
        "uses_functional": refusal("torch.nn.functional.relu", location),
        "uses_re_exports": "passed",
    }


def test_student_files_are_found_through_symlinks(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (real_dir / "activations.py").write_text(CHEATS)
    linked_dir = tmp_path / "student"
    linked_dir.symlink_to(real_dir, target_is_directory=True)
    # The module's file name goes through the link; the guard must still place it.
    driver = DRIVER % 'import activations\nattempt("direct", lambda: activations.direct(x))'
    completed = subprocess.run(
        [sys.executable, "-c", driver, str(GUARD_FILE), str(linked_dir), json.dumps(GUARDED)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["outcomes"]["direct"].startswith("refused: torch.sigmoid")


def test_other_spellings_of_a_forbidden_operation_are_refused_at_the_dispatcher(tmp_path):
    guarded = GUARDED + ["torch.utils._python_dispatch", "torch._C._pop_torch_dispatch_stack"]
    result = run_guarded(tmp_path, {"spellings": SPELLINGS}, """\
        import spellings
        for name in ("aten_packet", "aten_overload", "unbound_forward", "private_functorch", "requires_grad_flag"):
            attempt(name, lambda: getattr(spellings, name)(x))
        attempt("in_a_thread", lambda: spellings.in_a_thread(x))
        attempt("remove_the_guard", lambda: spellings.remove_the_guard(x))
        guard.check_dispatcher()
        """, guarded=guarded)
    outcomes, violations = result["outcomes"], result["violations"]
    sigmoid = "torch.ops.aten.sigmoid (what a forbidden API computes)"
    for name, text in [("aten_packet", "# the packet"), ("aten_overload", "sigmoid.default(x)")]:
        assert outcomes[name] == refusal(sigmoid, f"spellings.py:{line_of(text, SPELLINGS)} in {name}")
    assert outcomes["unbound_forward"] == refusal(sigmoid, f"spellings.py:{line_of('Sigmoid.forward(None', SPELLINGS)} in unbound_forward")
    assert outcomes["private_functorch"].startswith("refused: autograd (a backward pass of the autograd engine)")
    assert outcomes["requires_grad_flag"].startswith("refused: autograd (torch.ops.aten.mul on a tensor that requires grad)")
    # The thread's refusal ends the thread, not the call; it is on record all the same.
    assert outcomes["in_a_thread"] == "passed"
    assert any(v.startswith(sigmoid) and "in <lambda>" in v for v in violations)
    # Taking the guard apart is on record, and the guard is back in place for what follows.
    assert outcomes["remove_the_guard"] == "passed"
    assert "the run-time guard (a torch dispatch mode) was removed by the student's code" in violations


def test_the_static_scan_reads_aten_spellings(tmp_path):
    from autograder.checks.forbidden import scan_source
    from autograder.engine.assignment import load_reference

    assignment = load_reference("hw1", Path(__file__).resolve().parent.parent / "reference" / "hw1")
    source = "import torch\naten = torch.ops.aten\n\nclass GELU:\n    def forward(self, x):\n        return aten.gelu.default(x)\n"
    (violation,) = scan_source(source, {"GELU": assignment.forbidden_in_source("activations.GELU")})["GELU"]
    assert violation.name == "torch.ops.aten.gelu.default" and violation.line == 6
    assert scan_source(source, {"GELU": assignment.forbidden_in_source("activations.Tanh")}) == {}
