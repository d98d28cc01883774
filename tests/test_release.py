"""`autograder release`: stubs, README, and the public bundle replayed without the reference."""

import json
import shutil
from pathlib import Path

import pytest

from autograder.checks import lastbits
from autograder.engine.assignment import load_bundle
from autograder.engine.course import load_course
from autograder.engine.runner import grade
from autograder.protocol import wire
from autograder.release.install import TORCH_INSTALL
from autograder.release.release import ReleaseError, make_stub, manifest_text, release, release_differences
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "assignments"
ASSIGNMENTS = ("hw1", "hw2", "hw3")


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


# hw3's release trains its public classifier (~25 s): make test-quality keeps it in step
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.quality) if name == "hw3" else name
                                  for name in ASSIGNMENTS])
def test_committed_assignment_matches_the_reference(released, name):
    """Fails when reference/<name> changed and `autograder release <name>` was not run (and committed).
    The recordings may differ in floating-point last bits: this host's kernels may round otherwise."""
    assert release_differences(released(name), RELEASED / name) == [], f"run `autograder release {name}`"


def edited_manifest(fresh: Path, into: Path, edit) -> Path:
    """A copy of the release fresh whose manifest's recordings went through edit(check id, entries)."""
    copy = shutil.copytree(fresh, into)
    path = copy / "public_checks" / "manifest.json"
    manifest = json.loads(path.read_text())
    for check, entries in manifest["recordings"].items():
        edit(check, entries)
    path.write_text(manifest_text(manifest))
    return copy


def test_the_sync_comparison_allows_last_bits_and_nothing_more(fresh, tmp_path):
    def other_cpu(check, entries):  # every recorded value as another CPU's kernels might round it
        for entry in entries:
            if entry["value"] != {"object": True}:
                entry["value"] = wire.dump_value(lastbits.settle(wire.load_value(entry["value"]), "reference"))

    with lastbits.perturbed():
        elsewhere = edited_manifest(fresh, tmp_path / "elsewhere", other_cpu)
    assert (elsewhere / "public_checks" / "manifest.json").read_text() != (fresh / "public_checks" / "manifest.json").read_text()
    assert release_differences(elsewhere, fresh) == []

    def one_answer_off(check, entries):  # the least a changed reference would do
        if check == "neurons.linear_regression_fit.fit":
            answer = wire.load_value(entries[-1]["value"])
            answer[1] *= 1 + 1e-7
            entries[-1]["value"] = wire.dump_value(answer)

    changed = release_differences(edited_manifest(fresh, tmp_path / "changed", one_answer_off), fresh)
    assert len(changed) == 1 and changed[0].startswith(
        "public_checks/manifest.json: neurons.linear_regression_fit.fit: entry 3 (the reference's "
        "neurons.linear_regression_fit(...)): the answer: float64[4]: 1 of 4 values differ beyond last bits, most at index (1,)")

    def other_shape(check, entries):
        if check == "backprop.MSELoss.forward":
            entries[0]["spec"]["shape"] = [6, 4]

    assert release_differences(edited_manifest(fresh, tmp_path / "shape", other_shape), fresh) == [
        "public_checks/manifest.json: backprop.MSELoss.forward: entry 0 (a randn input float64[6, 3]): "
        "got 4 at ['shape'][1], recorded 3"]
    (elsewhere / "neurons.py").write_text((elsewhere / "neurons.py").read_text() + "\n")
    assert release_differences(elsewhere, fresh) == ["neurons.py differs"]


def test_stubs_keep_signatures_and_docstrings_but_no_solution(fresh):
    stub = (fresh / "activations.py").read_text()
    assert "class Sigmoid" in stub and "def backward(self, grad_out)" in stub
    assert 'raise NotImplementedError("Sigmoid.forward: write your solution here")' in stub
    assert "BEGIN SOLUTION" not in stub and "torch.exp(-x.abs())" not in stub


def test_readme_has_the_task_and_the_points(fresh):
    readme = (fresh / "README.md").read_text()
    assert "<!-- POINTS -->" not in readme
    assert "| `backprop.BatchNorm1d` |" in readme and "**15**" in readme
    # How to install, from course.toml, after the title and what the homework asks and before its first section
    install = readme.index("## Install\n")
    assert readme.index("Fill in every") < install < readme.index("## Rules for every unit")
    assert f"{TORCH_INSTALL}\npip install \"{load_course(ROOT).package}\"\n" in readme[install:]


def test_bundle_replays_without_the_reference(fresh):
    bundle = load_bundle("hw1", fresh / "public_checks")
    assert bundle.reference_dir is None and all(s.visibility == "public" for s in bundle.checks)
    result = grade(bundle, ROOT / "tests" / "submissions" / "hw1_alternative", sandbox_for_tests(), "local",
                   visibilities=("public",))
    assert result.score == result.max_score == 8.0


@pytest.mark.quality
def test_hw3_bundle_replays_without_the_reference_its_classifier_trained_again(released):
    """The public classifier check's data come back from the generator (the bundle holds a seed and a
    digest): the reference, graded from the bundle alone, scores every public point."""
    bundle = load_bundle("hw3", released("hw3") / "public_checks")
    result = grade(bundle, ROOT / "reference" / "hw3", sandbox_for_tests(), "local", visibilities=("public",))
    assert result.score == result.max_score, {c.id: c.message for c in result.checks if c.status != "passed"}
    [classifier] = [c for c in result.checks if c.id == "recurrent.train_text_classifier.accuracy"]
    assert "held-out accuracy 0.9" in classifier.message


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


def test_a_wrong_shape_fails_cleanly_on_replay(fresh, tmp_path):
    """A wrong output shape fails its unit's checks with a shape message: the replay asks the recording
    the same questions (the upstream gradient is shaped from the reference's output), so nothing is
    blamed on a divergence. test_last_bits covers a replay that does diverge."""
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
