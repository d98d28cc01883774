"""`autograder new <hw>`: a new homework's reference/<hw>/, ready for `release` and `grade` at once.

It writes one solution file (`layers.py`: a function and a layer with a hand-written backward,
each with `# BEGIN SOLUTION` / `# END SOLUTION` regions), public and hidden checks with an
example of the common kinds (for timed checks and fixtures, see hw1 and hw2), and the README and
notebook templates that `release` turns into the students' README.md and <hw>.ipynb.
docs/authoring.md explains each file; the instructor replaces the example units with the
homework's own.
"""

from __future__ import annotations

import re
from pathlib import Path

from autograder.engine.course import CourseError, load_course

# A homework's name is a Python package name's part (reference/<hw>/ is imported as a package)
# and a course.toml source, so: a letter, then letters, digits or '_'.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
PLACEHOLDER = "{hw}"


class ScaffoldError(Exception):
    pass


def scaffold(name: str, root: Path) -> list[Path]:
    """Write reference/<name>/ under root; the files written, in order."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r} cannot name a homework: use a letter, then letters, digits or '_' "
                            f"(at most 32 in all), e.g. hw9")
    if not root.is_dir():
        raise ScaffoldError(f"{root} is not a folder: pass the course repository's folder as --root")
    folder = root / "reference" / name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: `new` never overwrites a homework; "
                            f"pick another name, or remove the folder first")
    folder.mkdir(parents=True)
    written = []
    for filename, template in FILES.items():
        path = folder / filename
        path.write_text(template.replace(PLACEHOLDER, name), encoding="utf-8")
        written.append(path)
    return written


def course_hint(name: str, root: Path) -> str:
    """What course.toml still needs for name's scores to count in the final grade ("" when nothing)."""
    try:
        course = load_course(root)
    except CourseError as exc:
        return f"note: {exc}"
    if course.component_of(name) is not None:
        return ""
    return (f"note: no component of {root / 'course.toml'} has source \"{name}\" yet: grading works without one, "
            f"but its scores count in no final grade until you add\n\n"
            f"[[components]]\nid = \"{name}\"\ntitle = \"...\"\npoints = 10\nsource = \"{name}\"\n\n"
            f"(and change [course] total, or another component's points, so that they still add up)")


SOLUTION = '''\
"""{hw}, `layers.py`: a linear map, and the SiLU activation with a hand-written backward pass."""

import torch


def affine(x, W, b):
    """(x: (N, d_in), W: (d_in, d_out), b: (d_out,)) -> (N, d_out): x @ W + b, in the dtype of x."""
    # BEGIN SOLUTION
    return x @ W + b
    # END SOLUTION


class SiLU:
    """x * sigmoid(x), element-wise, for inputs of any shape, with a hand-written backward."""

    def forward(self, x):
        """(...) -> (...); caches what backward needs."""
        # BEGIN SOLUTION
        self.x = x
        self.s = 1 / (1 + torch.exp(-x))
        return x * self.s
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); grad_out * silu'(x), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)."""
        # BEGIN SOLUTION
        return grad_out * self.s * (1 + self.x * (1 - self.s))
        # END SOLUTION
'''

PUBLIC = '''\
"""{hw} public checks: students run them with `autograder check {hw}`.

`autograder release {hw}` runs each against the reference and records what it drew
and what the reference answered into assignments/{hw}/public_checks/, so that a
student's `check` replays them without the reference. A public check is seeded the
same for everybody; its inputs are no secret. Students get a copy of this file.
"""

import torch

from autograder.checks import CheckList

checks = CheckList()
F64, F32 = torch.float64, torch.float32

# What each unit may not call, checked in the student's source and while it runs.
# Autograd is forbidden to every unit without being listed here.
FORBIDDEN = {
    "layers.affine": ["torch.nn.functional.linear", "torch.nn.Linear"],
    "layers.SiLU": ["torch.nn.functional.silu", "torch.nn.SiLU", "torch.sigmoid", "torch.Tensor.sigmoid",
                    "torch.special.expit", "torch.nn.functional.sigmoid"],
}


def affine_inputs(t, n, d_in, d_out, dtype=F64):
    return t.randn(n, d_in, dtype=dtype), t.randn(d_in, d_out, dtype=dtype), t.randn(d_out, dtype=dtype)


# An output against the reference's: t.student is the student's code (living in the worker),
# t.reference the reference solution; expect_close picks the tolerance from the dtypes.
@checks.public("layers.affine.values", points=1)
def _(t):
    x, W, b = affine_inputs(t, 5, 3, 4)
    t.expect_close(t.student.layers.affine(x, W, b), t.reference.layers.affine(x, W, b))


@checks.public("layers.SiLU.forward", points=1)
def _(t):
    x = t.randn(4, 5, scale=2.0)
    t.expect_close(t.student.layers.SiLU().forward(x), t.reference.layers.SiLU().forward(x))


def silu_gradcheck(t, x, against_reference):
    """t.gradcheck of SiLU: backward(upstream) -> {input name: gradient} for forward(**inputs)."""
    mine = t.student.layers.SiLU()

    def forward_of(layer):
        return lambda x: layer.forward(x)

    def backward_of(layer):
        return lambda upstream: {"x": layer.backward(upstream)}

    reference = None
    if against_reference:
        ref = t.reference.layers.SiLU()
        reference = (forward_of(ref), backward_of(ref))
    t.gradcheck(forward_of(mine), {"x": x}, backward_of(mine), reference=reference)


# A backward pass: the forward output and the gradient against the reference's, and the
# gradient against central finite differences of the student's own forward (float64 inputs).
@checks.public("layers.SiLU.backward", points=1)
def _(t):
    silu_gradcheck(t, t.randn(3, 4), against_reference=True)
'''

HIDDEN = '''\
"""{hw} hidden checks: run only by `autograder grade` and `batch`, never shipped to students.

Their inputs are drawn from a seed of (student id, assignment, check id) under the course
secret (reference/grading-secret): every student gets other sizes and values, a regrade
the same ones. Students see each hidden check's id and outcome, never its inputs.
"""

from autograder.checks import CheckList

from .public_checks import F32, affine_inputs, silu_gradcheck

checks = CheckList()


def sizes(t, count, low=2, high=7):
    """count random sizes in [low, high): the hidden shapes differ per student."""
    return t.randint(low, high, count).tolist()


# The dtype kept (float32 in, float32 out, compared with the float64 answer at float32's
# tolerance) and the inputs left unchanged: expect_inputs_kept puts them into the student's
# process and compares them afterwards. cuda=... adds a twin, "layers.affine.float32.cuda",
# the same check on CUDA tensors where the grading host has a CUDA device (elsewhere it is
# skipped and scored as course.toml's [grading] cuda_absent says).
@checks.hidden("layers.affine.float32", points=1, cuda=0.5)
def _(t):
    x, W, b = affine_inputs(t, *sizes(t, 3), dtype=F32)
    got = t.expect_inputs_kept(t.student.layers.affine, x, W, b)
    t.expect_close(got, x.double() @ W.double() + b.double(), dtype=F32)


# A gradient judged by finite differences of the student's own forward alone (no reference):
# inputs of over 64 elements are checked along random directions. timeout: seconds of CPU
# time for the whole check (call_timeout: for any one call into the student's code).
@checks.hidden("layers.SiLU.gradient", points=1, timeout=60)
def _(t):
    silu_gradcheck(t, t.randn(*sizes(t, 2, 8, 12)), against_reference=False)


# Properties: finite output at large inputs, a bound any right answer keeps (t.expect's
# message may show values; its summary, which students see of a hidden check, must not).
@checks.hidden("layers.SiLU.stable", points=1)
def _(t):
    x = t.randn(*sizes(t, 2), scale=30.0)
    layer = t.student.layers.SiLU()
    y = layer.forward(x)
    t.expect_finite(y)
    t.expect_close(y, t.reference.layers.SiLU().forward(x))
    lowest = float(y.min())
    t.expect(lowest >= -0.2785, f"SiLU.forward returned {lowest}, below SiLU's minimum -0.2785 (at x = -1.278)",
             "SiLU.forward returned a value below SiLU's minimum -0.2785")
'''

README = '''\
# {hw}: an example homework (scaffolded by `autograder new {hw}`)

Fill in every `raise NotImplementedError(...)` in `layers.py`. Check your work at any
time, inside this folder:

```sh
autograder check {hw}
```

## Rules for every unit

- Outputs have the dtype and device of the inputs (float32 in, float32 out).
- Never modify an input tensor in place.
- No autograd, and no `torch.nn` / `torch.nn.functional` equivalent of the unit you
  implement (`SiLU` may not call `torch.sigmoid` or `F.silu`). Both your source and its
  behaviour while running are checked.

## layers.py

| unit | what it does |
|---|---|
| `affine(x, W, b)` | `x: (N, d_in)`, `W: (d_in, d_out)`, `b: (d_out,)` -> `x @ W + b` |
| `SiLU` | `forward(x) = x * sigmoid(x)` for any shape; `backward(grad_out)` returns the gradient wrt `x` of the most recent `forward` |

## Points

Public checks run on your machine with `autograder check {hw}`; hidden checks run at
grading time on inputs drawn for you. A check is all or nothing.

<!-- POINTS -->

## Handing in

`autograder submit {hw} --student <your id>` checks your files and writes
`<your id>-{hw}.zip` to upload.
'''

NOTEBOOK = '''\
# %% [markdown]
# # {hw}: an example homework
#
# Write your solutions in `layers.py` (the task is in `README.md`). This notebook
# imports it, draws what it computes, and runs the public checks.

# %%
# autoreload: an edit to a .py file takes effect when you rerun a cell.
%load_ext autoreload
%autoreload 2
import matplotlib.pyplot as plt
import torch

import layers
from autograder.jupyter import attempt, check  # attempt(): a unit not written yet is said, not raised

# %% [markdown]
# ## SiLU and its derivative

# %%
x = torch.linspace(-6, 6, 601, dtype=torch.float64)


def curves():
    unit = layers.SiLU()
    return unit.forward(x), unit.backward(torch.ones_like(x))


got = attempt("SiLU", curves)
if got is not None:
    plt.plot(x, got[0], label="silu(x)")
    plt.plot(x, got[1], "--", label="silu'(x)")
    plt.legend()

# %% [markdown]
# ## The public checks
#
# The same checks as `autograder check {hw}` in a terminal. Save your `.py` files first.

# %%
check("{hw}")
'''

# The names engine/assignment.py and release.py look for (spelled out here: importing
# engine.assignment loads torch, which `new` has no use for).
FILES = {
    "layers.py": SOLUTION,
    "public_checks.py": PUBLIC,
    "hidden_checks.py": HIDDEN,
    "README.md": README,  # release fills in <!-- POINTS --> and adds the install section
    "notebook.py": NOTEBOOK,  # release writes <hw>.ipynb from it (release/notebook.py)
}
