"""`autograder release`: stubs, README, and the public bundle replayed without the reference."""

import json
from pathlib import Path

import pytest
import torch

from autograder.engine.assignment import load_bundle
from autograder.engine.runner import grade
from autograder.protocol import wire
from autograder.release.release import ReleaseError, make_stub, release
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "assignments"
ASSIGNMENTS = ("hw1", "hw2")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """name -> a fresh release of reference/<name>, made once per module."""
    made = {}

    def get(name):
        if name not in made:
            made[name] = tmp_path_factory.mktemp("released") / name
            release(name, ROOT, sandbox_for_tests(), out=made[name])
        return made[name]

    return get


@pytest.fixture(scope="module")
def fresh(released):
    return released("hw1")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_assignment_matches_the_reference(released, name):
    """Fails when reference/<name> changed and `autograder release <name>` was not run (and committed)."""
    fresh, committed = released(name), RELEASED / name
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for relative in files:
        if relative.name == "manifest.json":
            assert_same_recordings(json.loads((fresh / relative).read_text()), json.loads((committed / relative).read_text()), name)
        else:
            assert (fresh / relative).read_text() == (committed / relative).read_text(), f"{relative} is out of date: run `autograder release {name}`"


def assert_same_recordings(new, old, name):
    """Same structure; recorded tensors equal up to the last bits another CPU's kernels may round differently."""
    assert new["assignment"] == old["assignment"]
    assert new["signatures"] == old["signatures"], f"signatures changed: run `autograder release {name}`"
    assert new["recordings"].keys() == old["recordings"].keys(), f"public checks changed: run `autograder release {name}`"
    for check_id, entries in new["recordings"].items():
        assert len(entries) == len(old["recordings"][check_id]), check_id
        for a, b in zip(entries, old["recordings"][check_id]):
            assert (a["kind"], a["spec"]) == (b["kind"], b["spec"]), check_id
            if "buffers" in a["value"]:
                assert_close_values(wire.load_value(a["value"]), wire.load_value(b["value"]), check_id)


def assert_close_values(a, b, where):
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.allclose(a.double(), b.double(), rtol=1e-12, atol=1e-12, equal_nan=True), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for x, y in zip(a, b):
            assert_close_values(x, y, where)
    else:
        assert a == b or (a != a and b != b), where


def test_stubs_keep_signatures_and_docstrings_but_no_solution(fresh):
    stub = (fresh / "activations.py").read_text()
    assert "class Sigmoid" in stub and "def backward(self, grad_out)" in stub
    assert 'raise NotImplementedError("Sigmoid.forward: write your solution here")' in stub
    assert "BEGIN SOLUTION" not in stub and "torch.exp(-x.abs())" not in stub


def test_readme_has_the_task_and_the_points(fresh):
    readme = (fresh / "README.md").read_text()
    assert "<!-- POINTS -->" not in readme
    assert "| `backprop.BatchNorm1d` |" in readme and "**15**" in readme


def test_bundle_replays_without_the_reference(fresh):
    bundle = load_bundle("hw1", fresh / "public_checks")
    assert bundle.reference_dir is None and all(s.visibility == "public" for s in bundle.checks)
    result = grade(bundle, ROOT / "tests" / "submissions" / "hw1_alternative", sandbox_for_tests(), "local",
                   visibilities=("public",))
    assert result.score == result.max_score == 8.0


def test_hw2_bundle_replays_without_the_reference(released):
    bundle = load_bundle("hw2", released("hw2") / "public_checks")
    assert not any(spec.timed or spec.device == "cuda" for spec in bundle.checks)  # those need the reference
    sandbox = sandbox_for_tests()
    result = grade(bundle, ROOT / "tests" / "submissions" / "hw2_offsets", sandbox, "local", visibilities=("public",))
    assert result.score == result.max_score == 4.5, {c.id: c.message for c in result.checks if c.status != "passed"}
    stubs = grade(bundle, released("hw2"), sandbox, "local", visibilities=("public",))
    assert stubs.score == 0 and all("NotImplementedError" in c.message for c in stubs.checks)


@pytest.mark.parametrize("source, problem", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_refused(source, problem):
    with pytest.raises(ReleaseError, match=problem):
        make_stub(source, "f.py")


def test_stub_raises_at_the_region_indentation():
    source = 'class A:\n    def f(self, x):\n        """doc"""\n        # BEGIN SOLUTION\n        y = x\n        return y\n        # END SOLUTION\n'
    stub = make_stub(source, "a.py")
    assert stub == 'class A:\n    def f(self, x):\n        """doc"""\n        raise NotImplementedError("A.f: write your solution here")\n'


def test_a_replay_that_diverges_fails_the_check_cleanly(fresh, tmp_path):
    """A wrong output shape makes the gradient check ask for another upstream shape than recorded."""
    for name in ("neurons.py", "activations.py", "backprop.py", "optimizers.py"):
        (tmp_path / name).write_text((ROOT / "reference" / "hw1" / name).read_text())
    source = (tmp_path / "activations.py").read_text()
    (tmp_path / "activations.py").write_text(source.replace(
        "self.y = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))\n        return self.y",
        "self.y = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))\n        return self.y.sum(-1)"))
    bundle = load_bundle("hw1", fresh / "public_checks")
    result = grade(bundle, tmp_path, sandbox_for_tests(), "local", visibilities=("public",))
    lost = {c.id: c for c in result.checks if c.status != "passed"}
    assert set(lost) == {"activations.Sigmoid.forward", "activations.Sigmoid.backward"}
    assert all(c.status == "failed" for c in lost.values())
    assert "shape" in lost["activations.Sigmoid.forward"].message
