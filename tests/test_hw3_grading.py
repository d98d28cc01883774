"""Grading hw3 end to end: the reference, the stubs, a file that does not parse, single-bug variants,
an alternative correct solution, and the text classifier. The units' checks run in `make test`; the
classifier's training (tens of seconds a grading) in `make test-quality`, but for one calibration case."""

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.release.release import make_stub
from hw3_variants import CLASSIFIER_VARIANTS, VARIANTS
from sandboxing import sandbox as sandbox_for_tests
from variants import apply, lost, unit_of

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw3"
SUBMISSIONS = ROOT / "tests" / "submissions"
FILES = ("recurrent.py",)


def copy_of(directory: Path, source: Path) -> Path:
    directory.mkdir(parents=True)
    for name in FILES:
        shutil.copy(source / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def assignment():
    return load_reference("hw3", REFERENCE)


def units_only(assignment):
    """The assignment without its model-quality checks (no training)."""
    return dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.unit not in assignment.model_quality])


@pytest.fixture(scope="session")
def graded(assignment, tmp_path_factory):
    """The units' checks of the reference, the alternative and each variant; the stubs and a broken file
    against every check (neither trains anything)."""
    base = tmp_path_factory.mktemp("hw3")
    stubs = base / "stubs"
    stubs.mkdir()
    for name in FILES:
        (stubs / name).write_text(make_stub((REFERENCE / name).read_text(), name))
    broken = base / "syntax_error"
    broken.mkdir()
    (broken / "recurrent.py").write_text("import torch\nclass GRU:\n    def forward(self, x:\n        pass\n")
    units = units_only(assignment)
    jobs = {"reference": (REFERENCE, units), "alternative": (SUBMISSIONS / "hw3_alternative", units),
            "stubs": (stubs, assignment), "syntax_error": (broken, assignment)}
    jobs.update({v.name: (apply(v, copy_of(base / v.name, REFERENCE)), units) for v in VARIANTS})
    sandbox = sandbox_for_tests()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda job: grade(job[1], job[0], sandbox, "alice", reveal_hidden=True), jobs.values())
        return dict(zip(jobs, results))


def test_points_follow_the_suggested_split(assignment):
    per_unit = {}
    for spec in assignment.checks:
        per_unit[spec.unit] = per_unit.get(spec.unit, 0) + spec.points
    assert per_unit == {"recurrent.Embedding": 0.75, "recurrent.RNNCell": 0.75, "recurrent.GRUCell": 1.25,
                        "recurrent.LSTMCell": 1.0, "recurrent.GRU": 1.25, "recurrent.train_text_classifier": 2.0}
    assert assignment.model_quality == {"recurrent.train_text_classifier"}


@pytest.mark.parametrize("name", ["reference", "alternative"])
def test_correct_solutions_pass_every_unit_check(graded, name):
    result = graded[name]
    assert result.score == result.max_score == 5.0, {c.id: c.message for c in result.checks if c.status != "passed"}


def test_stubs_and_a_broken_file_score_zero_with_clear_messages(graded):
    for name, expected in (("stubs", "NotImplementedError"), ("syntax_error", "SyntaxError")):
        result = graded[name]
        assert result.score == 0 and len(result.checks) == 22
        assert all(expected in c.message for c in result.checks), {c.id: c.message[:120] for c in result.checks}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_single_bug_loses_only_its_unit(graded, variant):
    result = graded[variant.name]
    lost_points = lost(result)
    assert lost_points, f"{variant.name} was not detected: {variant.why}"
    outside = {check: points for check, points in lost_points.items() if unit_of(check) not in variant.broken}
    assert not outside, f"{variant.name} also cost {outside}"
    assert not any("internal error" in c.message for c in result.checks)
    kept = variant.loses - set(lost_points)
    assert not kept, f"{variant.name} kept the points of {sorted(kept)}: {variant.why}"


def test_padded_positions_are_named_when_their_gradient_is_not_zero(graded):
    messages = {c.id: c.message for c in graded["gru_backward_ignores_lengths"].checks}
    assert "dx of" in messages["recurrent.GRU.backward"]


def test_torch_recurrent_layers_are_forbidden_in_every_spelling(assignment, tmp_path):
    """GRUCell handing its work to torch._VF.gru_cell, spelled so that the static scan cannot see it: the
    run-time guard refuses it, and only GRUCell's checks lose points."""
    folder = copy_of(tmp_path / "forbidden", REFERENCE)
    source = (folder / "recurrent.py").read_text()
    cell = "    def forward(self, x, h):\n        \"\"\"(N, I), (N, H) -> (N, H); r, z, n as torch.nn.GRUCell, h' = (1 - z) n + z h.\"\"\"\n"
    assert source.count(cell) == 1
    spelled = "getattr(__import__('torch')._VF, 'gru' + '_cell')"  # past the static scan: the guard's wrapper
    (folder / "recurrent.py").write_text(source.replace(
        cell, cell + f"        return {spelled}(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)\n"))
    result = grade(units_only(assignment), folder, sandbox_for_tests(), "alice", reveal_hidden=True)
    failed = {c.id for c in result.checks if c.status != "passed"}
    assert {"recurrent.GRUCell.forward", "recurrent.GRUCell.backward"} <= failed
    assert {unit_of(check) for check in failed} == {"recurrent.GRUCell"}
    message = next(c.message for c in result.checks if c.id == "recurrent.GRUCell.forward")
    assert "called a forbidden API: torch._VF.gru_cell called at recurrent.py" in message


# --- the classifier ---------------------------------------------------------------


def test_calibration_the_reference_classifier_passes_the_public_check(assignment):
    """make test's one model-quality case: the reference trains on the public data within its budget."""
    public = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.id == "recurrent.train_text_classifier.accuracy"])
    [check] = grade(public, REFERENCE, sandbox_for_tests(), "alice").checks
    assert (check.status, check.score) == ("passed", 0.5), check.message
    assert "held-out accuracy 0.9" in check.message and "on 1,000 held-out sentences" in check.message


@pytest.mark.quality
@pytest.mark.parametrize("name", ["reference", "alternative"])
def test_correct_solutions_score_full_marks_with_their_classifier(assignment, name):
    result = grade(assignment, REFERENCE if name == "reference" else SUBMISSIONS / "hw3_alternative",
                   sandbox_for_tests(), "alice", reveal_hidden=True)
    assert result.score == result.max_score == 7.0, {c.id: c.message for c in result.checks if c.status != "passed"}


@pytest.mark.quality
@pytest.mark.parametrize("variant", CLASSIFIER_VARIANTS, ids=lambda v: v.name)
def test_a_bag_of_words_classifier_loses_the_classifiers_points_only(assignment, variant, tmp_path):
    classifier = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.unit in variant.broken])
    result = grade(classifier, apply(variant, copy_of(tmp_path / variant.name, REFERENCE)), sandbox_for_tests(), "alice",
                   reveal_hidden=True)
    assert set(lost(result)) == variant.loses, {c.id: c.message for c in result.checks}
    assert all("accuracy 0.6" in c.message or "accuracy 0.5" in c.message for c in result.checks)
