"""`autograder submit`: a student's copy of assignments/hw1 checked and packed into a zip with its manifest;
and the signatures it holds files to, extracted and compared statically."""

import ast
import hashlib
import json
import shutil
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.engine.assignment import load_bundle
from autograder.submission.signatures import mismatches, render, same_default, unit_signatures
from autograder.submission.validate import validate

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "assignments" / "hw1"
REFERENCE = ROOT / "reference" / "hw1"
FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


def student_copy(tmp_path: Path) -> Path:
    """A copy of the released hw1 (no reference/ beside it) with the reference solutions as the student's files."""
    folder = tmp_path / "hw1"
    shutil.copytree(RELEASED, folder)
    for name in FILES:
        shutil.copy(REFERENCE / name, folder / name)
    return folder


def submit(*args):
    return CliRunner().invoke(main, ["submit", "hw1", *map(str, args)], catch_exceptions=False)


def edit(path: Path, old: str, new: str) -> int:
    """Replace old (once) by new in path; returns the line new starts on."""
    source = path.read_text()
    assert source.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(source.replace(old, new))
    return source[: source.index(old)].count("\n") + 1


def test_a_clean_submission_is_packed_with_its_manifest(tmp_path, monkeypatch):
    folder = student_copy(tmp_path)
    monkeypatch.chdir(folder)  # as a student runs it: in their copy of the assignment
    before = time.time()
    run = submit("--student", "alice")
    assert run.exit_code == 0, run.output
    written = folder / "alice-hw1.zip"
    with zipfile.ZipFile(written) as archive:
        assert sorted(archive.namelist()) == sorted([*FILES, "manifest.json"])
        assert all(archive.read(name) == (REFERENCE / name).read_bytes() for name in FILES)
        manifest = json.loads(archive.read("manifest.json"))
    hashes = {name: hashlib.sha256((REFERENCE / name).read_bytes()).hexdigest() for name in FILES}
    assert manifest["files"] == hashes
    assert {k: manifest[k] for k in ("format", "student", "assignment", "problems")} == {
        "format": 1, "student": "alice", "assignment": "hw1", "problems": []}
    assert manifest["autograder_version"]
    handed_in = datetime.strptime(manifest["submitted_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert before - 1 <= handed_in <= time.time() + 1, manifest["submitted_at"]
    assert "problem" not in run.output
    assert all(digest[:12] in run.output for digest in hashes.values()), run.output
    assert "upload alice-hw1.zip" in run.output
    assert "not written yet" not in run.output


def test_a_file_left_as_the_stub_is_said_and_packed_anyway(tmp_path, monkeypatch):
    folder = student_copy(tmp_path)
    shutil.copy(RELEASED / "optimizers.py", folder / "optimizers.py")  # forgot to write it
    monkeypatch.chdir(folder)
    run = submit("--student", "alice")
    assert run.exit_code == 0 and (folder / "alice-hw1.zip").is_file(), run.output
    unwritten = [line for line in run.output.splitlines() if line.startswith("not written yet: ")]
    stub = (RELEASED / "optimizers.py").read_text().splitlines()
    sgd_line = next(i for i, line in enumerate(stub, 1) if "SGD.step: write your solution here" in line)
    assert unwritten[0] == f"not written yet: optimizers.py:{sgd_line}: `SGD.step` still raises NotImplementedError: its checks will score 0"
    assert [line.split("`")[1] for line in unwritten] == ["SGD.step", "AdaGrad.step", "RMSProp.step", "Adam.step", "AdamW.step"]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A submission with one of each problem, submitted with --force: (command run, problem -> its line, zip)."""
    folder = student_copy(tmp_path_factory.mktemp("broken"))
    lines = {
        "syntax": edit(folder / "neurons.py", "def linear_regression_fit(X, y):", "def linear_regression_fit(X, y:"),
        "forbidden": edit(folder / "activations.py", "class Sigmoid:\n    def forward(self, x):\n",
                          "class Sigmoid:\n    def forward(self, x):\n        return torch.sigmoid(x)\n") + 2,
        "renamed": edit(folder / "activations.py", "def __init__(self, alpha=1.0):", "def __init__(self, a=1.0):"),
        "default": edit(folder / "activations.py", "def __init__(self, slope=0.1):", "def __init__(self, slope=0.2):"),
        "missing unit": edit(folder / "backprop.py", "class MSELoss:", "class MSE:"),
        "import": edit(folder / "backprop.py", "import math\n", "import nonexistent_pkg\nimport math\n"),
    }
    (folder / "optimizers.py").unlink()
    written = tmp_path_factory.mktemp("out") / "upload.zip"
    return submit(str(folder), "--student", "bob", "-o", written, "--force"), lines, written


@pytest.mark.parametrize("problem, expected", [
    ("missing file", "problem: optimizers.py: missing from "),
    ("syntax", "problem: neurons.py:{syntax}: syntax error: "),
    ("import", "problem: backprop.py:{import}: importing backprop.py raises ModuleNotFoundError: No module named 'nonexistent_pkg'"),
    ("renamed", "problem: activations.py:{renamed}: `ELU.__init__` has other parameters than the assignment's: "
                "parameter 2 is `a`, expected `alpha`. Expected `def __init__(self, alpha=1.0)`, found `def __init__(self, a=1.0)`"),
    ("default", "problem: activations.py:{default}: `LeakyReLU.__init__` has other parameters than the assignment's: "
                "`slope` defaults to 0.2, expected 0.1."),
    ("missing unit", "problem: backprop.py: `MSELoss` is missing: expected `class MSELoss:` at the top level of backprop.py"),
    ("forbidden", "problem: activations.py:{forbidden}: `Sigmoid` uses torch.sigmoid, which is forbidden in it"),
])
def test_each_problem_is_reported_where_it_is(broken, problem, expected):
    run, lines, _ = broken
    assert expected.format(**lines) in run.output, run.output


def test_force_writes_the_zip_with_the_problems_recorded(broken):
    run, _, written = broken
    assert run.exit_code == 0, run.output
    with zipfile.ZipFile(written) as archive:
        assert sorted(archive.namelist()) == ["activations.py", "backprop.py", "manifest.json", "neurons.py"]
        manifest = json.loads(archive.read("manifest.json"))
    assert run.output.count("problem: ") == len(manifest["problems"]) == 7
    assert all(f"problem: {problem}\n" in run.output for problem in manifest["problems"]), manifest["problems"]
    assert "with 7 problem(s) recorded in it" in run.output


def test_problems_without_force_write_nothing(tmp_path):
    folder = tmp_path / "hw1"
    shutil.copytree(RELEASED / "public_checks", folder / "public_checks")
    (folder / "Neurons.py").write_bytes((REFERENCE / "neurons.py").read_bytes())
    run = CliRunner().invoke(main, ["submit", "hw1", str(folder), "--student", "carl", "-o", str(tmp_path / "carl.zip")])
    assert run.exit_code == 1
    assert "problem: neurons.py: missing, but Neurons.py is here: rename it to neurons.py" in run.output
    assert "4 problem(s), so nothing was written" in run.output
    assert not (tmp_path / "carl.zip").exists()


def test_a_syntax_error_shows_its_line_and_starts_no_worker(tmp_path):
    (tmp_path / "neurons.py").write_text("import torch\n\ndef threshold_neuron(x w, theta):\n    pass\n")
    bundle = load_bundle("hw1", RELEASED / "public_checks")
    problems = validate(bundle, tmp_path, sandbox=None).problems  # no file to import: no sandbox needed
    first = str(problems[0])  # Python's own words for the error vary with its version
    assert first.startswith("neurons.py:3: syntax error: ") and first.endswith("\n    def threshold_neuron(x w, theta):"), first
    assert [p.file for p in problems] == list(FILES)


# -- signatures -----------------------------------------------------------------------------------

REFERENCE_SOURCE = '''
import torch

def fit(X, y, lr=1.0, epochs=10, *, betas=(0.9, 0.999)):
    pass

def _helper(z):
    pass

class Layer:
    def __init__(self, n, eps=1e-5):
        pass
    def forward(self, x):
        pass
    def _cache(self):
        pass

class Loss:
    def forward(self, pred, target):
        pass

class Chain:
    def __init__(self, *layers):
        pass
'''


def check(student_source: str) -> list[tuple[int | None, str]]:
    return mismatches(unit_signatures(REFERENCE_SOURCE, "ref.py"), ast.parse(student_source), "mine.py")


def test_signatures_keep_public_units_and_contract_methods_only():
    found = unit_signatures(REFERENCE_SOURCE, "ref.py")
    assert sorted(found) == ["Chain", "Layer", "Loss", "fit"]
    assert render("fit", found["fit"]["parameters"]) == "def fit(X, y, lr=1.0, epochs=10, *, betas=(0.9, 0.999))"
    assert sorted(found["Layer"]["methods"]) == ["__init__", "forward"]
    assert found["Layer"]["methods"]["__init__"][2] == {"name": "eps", "kind": "positional", "default": "1e-05"}
    # no __init__: built with no arguments
    assert found["Loss"]["methods"]["__init__"] == [{"name": "self", "kind": "positional"}]
    assert render("__init__", found["Chain"]["methods"]["__init__"]) == "def __init__(self, *layers)"


def test_inherited_contract_methods_are_part_of_a_class_signature():
    found = unit_signatures("class A:\n    def forward(self, x): pass\nclass B(A):\n    def step(self): pass\n", "ref.py")
    assert sorted(found["B"]["methods"]) == ["__init__", "forward", "step"]


STUDENT_OK = '''
def fit(X, y, lr=1.0, epochs=10.0, verbose=False, *, betas=(0.9, 0.999), seed=0):
    pass
class Base:
    def forward(self, x):
        pass
class Layer(Base):
    def __init__(self, n, eps=0.00001):
        pass
class Loss(SomethingImported):  # its methods may come from there
    pass
class Chain:
    def __init__(self, *parts, **options):
        pass
def extra(): pass
'''


def test_extra_helpers_parameters_with_defaults_and_equal_defaults_pass():
    assert check(STUDENT_OK) == []


@pytest.mark.parametrize("student, expected", [
    ("def fit(X, Y, lr=1.0, epochs=10, *, betas=(0.9, 0.999)): pass",
     "parameter 2 is `Y`, expected `y`"),
    ("def fit(X, y, epochs=10, lr=1.0, *, betas=(0.9, 0.999)): pass",
     "parameter 3 is `epochs`, expected `lr`; parameter 4 is `lr`, expected `epochs`"),
    ("def fit(X, y, lr=1.0, *, betas=(0.9, 0.999)): pass", "`epochs` is missing"),
    ("def fit(X, y, lr=0.1, epochs=10, *, betas=(0.9, 0.999)): pass", "`lr` defaults to 0.1, expected 1.0"),
    ("def fit(X, y, lr=1.0, epochs=10, *, betas=[0.9, 0.999]): pass", "`betas` defaults to [0.9, 0.999], expected (0.9, 0.999)"),
    ("def fit(X, y, lr=1.0, epochs=10, *, betas=(0.9, 0.999), seed): pass", "`seed` has no default"),
    ("def fit(X, y, *, lr=1.0, epochs=10, betas=(0.9, 0.999)): pass", "`lr` is keyword-only (after `*`)"),
])
def test_a_changed_function_signature_says_what_changed(student, expected):
    found = {line: text for line, text in check(student) if "`fit`" in text}
    assert list(found) == [1] and expected in found[1], found
    assert "Expected `def fit(X, y, lr=1.0, epochs=10, *, betas=(0.9, 0.999))`" in found[1]


def test_missing_units_and_methods_and_wrong_kinds():
    student = ("fit = None\n"
               "def Layer(n): pass\n"
               "class Loss:\n    def backward(self): pass\n"
               "class Chain:\n    def __init__(self, layers): pass\n")
    found = [text for _, text in check(student)]
    assert found[0] == "`fit` is missing: expected `def fit(X, y, lr=1.0, epochs=10, *, betas=(0.9, 0.999))` at the top level of mine.py"
    assert found[1] == "`Layer` is a function here: expected `class Layer:`"
    assert found[2] == "`Loss` has no method `forward`: expected `def forward(self, pred, target)` in it"
    assert "`*layers` is missing" in found[3]
    assert len(found) == 4


def test_a_required_constructor_argument_where_none_is_expected_is_a_problem():
    student = "class Loss:\n    def __init__(self, reduction):\n        pass\n    def forward(self, pred, target):\n        pass\n"
    found = [(line, text) for line, text in check(student) if "`Loss" in text]
    assert found == [(2, "`Loss.__init__` has other parameters than the assignment's: `reduction` has no default. "
                         "Expected `def __init__(self)`, found `def __init__(self, reduction)`: keep the names, order and "
                         "defaults given (a parameter you add needs a default)")]


@pytest.mark.parametrize("a, b, same", [
    ("1e-3", "0.001", True), ("1.0", "1", True), ("False", "0", False), ("None", "None", True),
    ("(0.9, 0.999)", "(0.9, 0.999)", True), ("(0.9, 0.999)", "(0.9, 0.99)", False),
    ("torch.float64", "torch.float64", True), ("torch.float64", "torch.float32", False),
])
def test_defaults_compare_as_values_where_they_are_literals(a, b, same):
    assert same_default(a, b) is same
