"""Grading hw3 end to end: the reference, the stubs, a file that does not parse, single-bug variants,
an alternative correct solution (other formulations of every unit), and the text classifier. The units' checks run in `make test`; the
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
from variants import apply, assert_loses_only_its_unit, lost, unit_of

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw3"
SUBMISSIONS = ROOT / "tests" / "submissions"
FILES = ("recurrent.py", "seq2seq.py", "tagging.py")


def copy_of(directory: Path, source: Path) -> Path:
    directory.mkdir(parents=True)
    for name in FILES:
        shutil.copy(source / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def assignment():
    return load_reference("hw3", REFERENCE)


def units_only(assignment, module=None):
    """The assignment without its model-quality checks (no training) and its races; only module's checks if given."""
    return dataclasses.replace(assignment, checks=[
        s for s in assignment.checks
        if s.unit not in assignment.model_quality and not s.timed and module in (None, s.module)])


@pytest.fixture(scope="session")
def graded(assignment, tmp_path_factory):
    """The units' checks (no training, no race) of the reference, the alternative, the stubs, a file that
    does not parse, and each variant (its file's checks)."""
    base = tmp_path_factory.mktemp("hw3")
    stubs = base / "stubs"
    stubs.mkdir()
    for name in FILES:
        (stubs / name).write_text(make_stub((REFERENCE / name).read_text(), name))
    broken = copy_of(base / "syntax_error", REFERENCE)  # recurrent.py does not parse; the other files are right
    (broken / "recurrent.py").write_text("import torch\nclass GRU:\n    def forward(self, x:\n        pass\n")
    units = units_only(assignment)
    jobs = {"reference": (REFERENCE, units), "alternative": (SUBMISSIONS / "hw3_alternative", units),
            "stubs": (stubs, units), "syntax_error": (broken, units)}
    # a variant changes one file: the checks of the others, untouched copies of the reference's, cannot move
    jobs.update({v.name: (apply(v, copy_of(base / v.name, REFERENCE)), units_only(assignment, v.file[:-3])) for v in VARIANTS})
    sandbox = sandbox_for_tests()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda job: grade(job[1], job[0], sandbox, "alice", reveal_hidden=True), jobs.values())
        return dict(zip(jobs, results))


def test_points_follow_the_suggested_split(assignment):
    per_unit = {}
    for spec in assignment.checks:
        per_unit[spec.unit] = per_unit.get(spec.unit, 0) + spec.points
    assert per_unit == {
        "recurrent.Embedding": 0.75, "recurrent.RNNCell": 0.75, "recurrent.GRUCell": 1.25, "recurrent.LSTMCell": 1.0,
        "recurrent.GRU": 1.25, "recurrent.train_text_classifier": 2.0,
        "seq2seq.SequenceCrossEntropy": 1.0, "seq2seq.ScaledDotProductAttention": 1.0, "seq2seq.MultiHeadAttention": 1.5,
        "seq2seq.beam_search": 0.75, "seq2seq.corpus_bleu": 0.75,
        "tagging.CRF": 2.0, "tagging.entity_spans": 0.5, "tagging.entity_prf": 0.5,
    }
    assert assignment.max_score == 15  # the course's hw3: recurrent 7, seq2seq 5, tagging 3
    assert assignment.model_quality == {"recurrent.train_text_classifier"}


@pytest.mark.parametrize("name", ["reference", "alternative"])
def test_correct_solutions_pass_every_unit_check(graded, name):
    result = graded[name]
    assert result.score == result.max_score == 12.5, {c.id: c.message for c in result.checks if c.status != "passed"}


def test_stubs_score_zero_with_clear_messages(graded, assignment):
    result = graded["stubs"]
    assert result.score == 0 and len(result.checks) == len(units_only(assignment).checks)
    assert all("NotImplementedError" in c.message for c in result.checks), {c.id: c.message[:120] for c in result.checks}


def test_a_file_that_does_not_parse_costs_its_units_only(graded):
    result = graded["syntax_error"]
    lost_points = lost(result)
    assert {unit_of(check) for check in lost_points} == {
        "recurrent.Embedding", "recurrent.RNNCell", "recurrent.GRUCell", "recurrent.LSTMCell", "recurrent.GRU"}
    assert result.score == 12.5 - 5.0
    assert all("SyntaxError" in c.message for c in result.checks if c.id in lost_points)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_single_bug_loses_only_its_unit(graded, variant):
    assert_loses_only_its_unit(graded[variant.name], variant)


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
    assert result.score == result.max_score == 15.0, {c.id: c.message for c in result.checks if c.status != "passed"}


@pytest.mark.quality
@pytest.mark.parametrize("variant", CLASSIFIER_VARIANTS, ids=lambda v: v.name)
def test_a_bag_of_words_classifier_loses_the_classifiers_points_only(assignment, variant, tmp_path):
    classifier = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.unit in variant.broken])
    result = grade(classifier, apply(variant, copy_of(tmp_path / variant.name, REFERENCE)), sandbox_for_tests(), "alice",
                   reveal_hidden=True)
    assert set(lost(result)) == variant.loses, {c.id: c.message for c in result.checks}
    assert all("accuracy 0.6" in c.message or "accuracy 0.5" in c.message for c in result.checks)


# --- the race --------------------------------------------------------------------------


@pytest.mark.slow
def test_multi_head_attention_races_the_reference(assignment, tmp_path):
    """Vectorized solutions keep the timed check's points; attention scores computed one sample, query and
    key at a time lose them. (At N=32, T=128, E=256 on a CPU a loop over the batch or the 8 heads alone
    costs nothing, and one over query and key positions 3-4x: within the races' 18x threshold.)"""
    timed = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.timed])
    looped = copy_of(tmp_path / "looped", REFERENCE)
    source = (looped / "seq2seq.py").read_text()
    vectorized = "        scores = self.q @ self.k.transpose(-2, -1) / math.sqrt(E // H)\n"
    assert source.count(vectorized) == 1
    (looped / "seq2seq.py").write_text(source.replace(vectorized, (
        "        scores = torch.empty(N, H, Tq, key.shape[1], dtype=query.dtype)\n"
        "        for n in range(N):\n"
        "            for i in range(Tq):\n"
        "                for j in range(key.shape[1]):\n"
        "                    scores[n, :, i, j] = (self.q[n, :, i] * self.k[n, :, j]).sum(-1) / math.sqrt(E // H)\n")))
    for folder, passes in ((REFERENCE, True), (SUBMISSIONS / "hw3_alternative", True), (looped, False)):
        [check] = grade(timed, folder, sandbox_for_tests(), "alice", reveal_hidden=True).checks
        assert (check.status == "passed") == passes, (folder.name, check.message)
