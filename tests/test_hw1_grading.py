"""hw1 graded end to end through real workers: the reference, the stubs, a
differently written correct solution, single-bug variants, and broken files.

All submissions are graded once, concurrently (the grader mostly waits on its
workers), and the tests below assert on the results.
"""

import dataclasses
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from sandboxing import sandbox as sandbox_for_tests
from hw1_variants import VARIANTS
from variants import apply, assert_loses_only_its_unit, lost, unit_of

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
STUDENT_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


@dataclass(frozen=True)
class Broken:
    """A submission whose one file is broken in a way that must cost only that file's (or unit's) points."""

    name: str
    file: str
    content: bytes | None  # None: the file is missing
    broken: frozenset
    status: str  # what the broken checks must report
    says: str  # what their message must mention


BROKEN_FILES = [
    Broken("missing_file", "optimizers.py", None, frozenset({"optimizers"}), "error", "optimizers.py is missing"),
    Broken("syntax_error", "activations.py", b"import torch\nclass Sigmoid(:\n    pass\n", frozenset({"activations"}), "error", "SyntaxError"),
    Broken("raises_at_import", "backprop.py", b"import torch\nraise RuntimeError('half-finished')\n", frozenset({"backprop"}), "error", "half-finished"),
    Broken("not_utf8", "neurons.py", b'"""Neurons, by Ren\xe9 (saved as Latin-1)."""\n' + (REFERENCE / "neurons.py").read_bytes(), frozenset({"neurons"}), "error", "not valid UTF-8"),
    Broken("import_never_returns", "optimizers.py", b"while True:\n    pass\n", frozenset({"optimizers"}), "timeout", "without returning"),
]


def submission_from_reference(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in STUDENT_FILES:
        shutil.copy(REFERENCE / name, directory / name)
    return directory


def patched(directory: Path, variant) -> Path:
    return apply(variant, submission_from_reference(directory))


def with_broken_file(directory: Path, case: Broken) -> Path:
    submission_from_reference(directory)
    if case.content is None:
        (directory / case.file).unlink()
    else:
        (directory / case.file).write_bytes(case.content)
    return directory


def wrong_signature(directory: Path) -> Path:
    submission_from_reference(directory)
    path = directory / "neurons.py"
    source = path.read_text()
    start = source.index("def threshold_neuron(")
    end = source.index(":\n", start)
    path.write_text(source[:start] + "def threshold_neuron(x, w)" + source[end:])
    return directory


@pytest.fixture(scope="session")
def assignment():
    return load_reference("hw1", REFERENCE)


@pytest.fixture(scope="session")
def graded(assignment, tmp_path_factory):
    base = tmp_path_factory.mktemp("hw1")
    jobs = {
        "reference": (REFERENCE, "alice"),
        "stubs": (ROOT / "assignments" / "hw1", "alice"),
        "alternative": (ROOT / "tests" / "submissions" / "hw1_alternative", "alice"),
        "wrong_signature": (wrong_signature(base / "wrong_signature"), "alice"),
        "regrade_a": (patched(base / "regrade", _variant("gelu_tanh_approximation")), "alice"),
        "regrade_b": (base / "regrade", "alice"),
        "other_student": (base / "regrade", "bob"),
    }
    for variant in VARIANTS:
        # Only the patched file's checks: the other files are the reference's, which scores full marks.
        jobs[variant.name] = (patched(base / variant.name, variant), "alice", variant.file)
    for case in BROKEN_FILES:
        jobs[case.name] = (with_broken_file(base / case.name, case), "alice")
    sandbox = sandbox_for_tests()

    def run(job):
        directory, student, *only_file = job
        graded_on = assignment
        if only_file:
            stem = only_file[0].removesuffix(".py")
            graded_on = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.module == stem])
        return grade(graded_on, directory, sandbox, student, reveal_hidden=True)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(jobs, pool.map(run, jobs.values())))


def _variant(name):
    return next(v for v in VARIANTS if v.name == name)




def test_reference_gets_full_marks(graded):
    result = graded["reference"]
    assert (result.score, result.max_score) == (15.0, 15.0)
    assert all(c.status == "passed" for c in result.checks)


def test_points_follow_the_course_split(assignment):
    per_file = {}
    for spec in assignment.checks:
        per_file[spec.module] = per_file.get(spec.module, 0) + spec.points
    assert per_file == {"neurons": 3, "activations": 4, "backprop": 5, "optimizers": 3}
    assert {spec.visibility for spec in assignment.checks} == {"public", "hidden"}


def test_stubs_get_zero_without_crashing(graded):
    result = graded["stubs"]
    assert result.score == 0 and result.max_score == 15
    assert all(c.status in ("error", "failed") for c in result.checks)
    assert not any("internal error" in c.message for c in result.checks)
    assert any("NotImplementedError" in c.message for c in result.checks)


def test_correct_solution_written_differently_gets_full_marks(graded):
    result = graded["alternative"]
    assert result.score == 15.0, {c.id: c.message for c in result.checks if c.status != "passed"}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_single_bug_loses_only_its_unit(graded, variant):
    assert_loses_only_its_unit(graded[variant.name], variant)


@pytest.mark.parametrize("case", BROKEN_FILES, ids=lambda c: c.name)
def test_broken_file_costs_only_its_units(graded, case):
    result = graded[case.name]
    for check in result.checks:
        if check.id.split(".")[0] in case.broken:
            assert check.status == case.status and case.says in check.message, (check.id, check.message)
        else:
            assert check.status == "passed", (check.id, check.message)


def test_wrong_signature_costs_only_that_unit(graded):
    result = graded["wrong_signature"]
    assert {unit_of(c) for c in lost(result)} == {"neurons.threshold_neuron"}
    messages = [c.message for c in result.checks if c.status != "passed"]
    assert all("TypeError" in m and "threshold_neuron" in m for m in messages)


def test_forbidden_api_message_names_the_call(graded):
    static = {c.id: c for c in graded["sigmoid_forbidden_torch_sigmoid"].checks}
    assert "torch.sigmoid" in static["activations.Sigmoid.forward"].message
    at_runtime = {c.id: c for c in graded["tanh_forbidden_tensor_method"].checks}
    assert "torch.Tensor.tanh" in at_runtime["activations.Tanh.forward"].message


def test_regrade_is_identical_and_students_get_different_inputs(graded):
    first, again, other = graded["regrade_a"], graded["regrade_b"], graded["other_student"]
    assert first.to_dict()["checks"] == again.to_dict()["checks"]  # messages show values: same inputs
    hidden = lambda r: {c.id: c.message for c in r.checks if c.visibility == "hidden" and c.status != "passed"}  # noqa: E731
    public = lambda r: {c.id: c.message for c in r.checks if c.visibility == "public"}  # noqa: E731
    assert hidden(first) and hidden(first).keys() == hidden(other).keys()
    assert all(hidden(first)[k] != hidden(other)[k] for k in hidden(first))  # other values
    assert public(first) == public(other)  # public checks are the same for everybody


EXFILTRATE = """
def perceptron_fit(X, y, lr=1.0, epochs=10):
    print("inputs:", X.tolist())
    return [X.tolist(), y.tolist()]

def threshold_neuron(x, w, theta):
    raise ValueError(f"leak {x.tolist()} {theta}")

def linear_regression_fit(X, y):
    return X
"""


def test_hidden_checks_give_away_no_values(assignment, tmp_path):
    """Not the expected values, and not the inputs, however a submission tries to bring them back."""
    directory = patched(tmp_path / "leaky", _variant("gelu_tanh_approximation"))
    with open(directory / "neurons.py", "a") as neurons:
        neurons.write(EXFILTRATE)
    result = grade(assignment, directory, sandbox_for_tests(), "alice")
    hidden = [c for c in result.checks if c.visibility == "hidden" and c.status != "passed"]
    assert {unit_of(c.id) for c in hidden} >= {"activations.GELU", "neurons.perceptron_fit", "neurons.threshold_neuron"}
    for check in hidden:
        assert not re.search(r"\d\.\d{3}", check.message), check.message  # no float values at all
        assert "leak" not in check.message and "inputs:" not in check.message, check.message
    public = {c.id: c.message for c in result.checks if c.visibility == "public"}
    assert "leak" in public["neurons.threshold_neuron.output"]  # public checks show everything
