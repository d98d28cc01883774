"""Model-quality checks (checks/quality.py) on a task that trains in milliseconds: a threshold on one
feature. Tiers, the CPU budget, the training seed, predict's contract, autograd allowed to the model's
unit only, the held-out targets never sent to the student's process (frame by frame), a classifier that
hunts for them, a regrade, two students, and a public check's replay from its recording."""

import hashlib
import re

import pytest
import torch

from autograder.checks import quality
from autograder.checks.seeds import PUBLIC_STUDENT
from autograder.checks.tape import RecordingTape, ReplayTape
from autograder.engine.runner import grade, run_check
from autograder.protocol import client
from autograder.protocol.client import Worker
from reference_helpers import tiny_assignment
from sandboxing import sandbox

CHECKS = {
    "public_checks.py": '''
        import torch
        from autograder.checks import CheckList
        from autograder.checks.quality import Task

        checks = CheckList()
        MODEL_QUALITY = ["model.fit"]


        def threshold_task(train, held_out):
            def generate(seed):
                g = torch.Generator().manual_seed(seed)
                cut = float(torch.rand((), generator=g)) - 0.5
                x = torch.randn(train + held_out, 1, generator=g, dtype=torch.float64)
                y = (x[:, 0] > cut).long()
                return {"x": x[:train], "labels": y[:train]}, {"x": x[train:]}, y[train:]

            return Task("threshold", 1, generate, {"classes": 2}, f"{held_out:,} held-out points")


        @checks.public("model.fit.accuracy", points=1, timeout=30)
        def _(t):
            t.train_and_score(t.student.model.fit, threshold_task(200, 3000), budget_s=3, full=0.95, half=0.75)


        @checks.public("model.double.output", points=1)
        def _(t):
            x = t.randn(4)
            t.expect_close(t.student.model.double(x), 2 * x)
    ''',
    "hidden_checks.py": '''
        from autograder.checks import CheckList
        from .public_checks import threshold_task

        checks = CheckList()


        @checks.hidden("model.fit.hidden", points=2, timeout=30)
        def _(t):
            t.train_and_score(t.student.model.fit, threshold_task(300, 3000), budget_s=3, full=0.95, half=0.75)
    ''',
}

# The reference: logistic regression by autograd, which only the model's unit may use.
REFERENCE = '''
import torch


class Threshold:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def predict(self, x):
        return (x[:, 0] * self.w + self.b > 0).long()


def fit(x, labels, classes, seed, budget_s):
    """(N, 1), (N,) -> a model with predict(x)."""
    # BEGIN SOLUTION
    w = torch.zeros((), dtype=x.dtype, requires_grad=True)
    b = torch.zeros((), dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([w, b], lr=0.1)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x[:, 0] * w + b, labels.to(x.dtype))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Threshold(w.detach(), b.detach())
    # END SOLUTION


def double(x):
    """(N,) -> 2x."""
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION
'''


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    return tiny_assignment(tmp_path_factory.mktemp("course"), {"model.py": REFERENCE}, CHECKS)


def submission(tmp_path, fit_body: str, double: str = "return 2 * x"):
    """A model.py whose fit is REFERENCE's logistic regression wrapped by fit_body (which may call it as `learn`)."""
    folder = tmp_path / "submission"
    folder.mkdir()
    source = REFERENCE.replace("def fit(", "def learn(").replace("return 2 * x", double)
    (folder / "model.py").write_text(source + "\n\ndef fit(x, labels, classes, seed, budget_s):\n" + fit_body)
    return folder


def graded(assignment, folder, student="alice", visibilities=("public", "hidden")):
    result = grade(assignment, folder, sandbox(), student, visibilities=visibilities, reveal_hidden=True)
    return {check.id: check for check in result.checks}


# The reference's model, trained where the grader seeds torch, numpy and random from `seed` just before
# the call; and `double` written with autograd, which only the model's unit may use.
GOOD = ("    import random, numpy\n"
        "    assert torch.initial_seed() == seed, (torch.initial_seed(), seed)\n"
        "    assert numpy.random.get_state()[1][0] == seed and random.random() == random.Random(seed).random()\n"
        "    return learn(x, labels, classes, seed, budget_s)\n")
AUTOGRAD_DOUBLE = "y = x.detach().requires_grad_()\n    (y * y).sum().backward()\n    return y.grad"


@pytest.fixture(scope="module")
def good(assignment, tmp_path_factory):
    """The good model graded once, every frame the grader sent recorded (header, buffers), and the
    held-out targets each check drew."""
    sent, targets = [], []
    send, draw = client.Connection.send, quality.draw

    def recording(self, header, buffers, limit):
        sent.append((repr(header), [bytes(memoryview(b).cast("B")) for b in buffers]))
        return send(self, header, buffers, limit)

    def keeping(t, task):
        inputs, held_out, found = draw(t, task)
        targets.append(found)
        return inputs, held_out, found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client.Connection, "send", recording)
        patch.setattr(quality, "draw", keeping)
        checks = graded(assignment, submission(tmp_path_factory.mktemp("good"), GOOD, double=AUTOGRAD_DOUBLE))
    return checks, sent, targets


def test_a_good_model_earns_the_points_and_its_message_gives_score_tiers_and_time(good):
    checks, _, _ = good
    for check_id, points in (("model.fit.accuracy", 1), ("model.fit.hidden", 2)):
        check = checks[check_id]
        assert (check.status, check.score) == ("passed", points), check.message
        assert "accuracy 0.9" in check.message and "on 3,000 held-out points" in check.message
        assert "full points at >= 0.95, half at >= 0.75" in check.message
        assert re.search(r"training used \d+\.\d s of CPU time \(budget 3 s\)", check.message)


def test_autograd_is_the_model_units_alone(good):
    checks, _, _ = good
    assert checks["model.fit.hidden"].status == "passed"  # its training ran loss.backward()
    assert checks["model.double.output"].status == "failed"
    assert "forbidden" in checks["model.double.output"].message


def test_the_held_out_targets_never_reach_the_students_process(good):
    """Every frame the grader sent, header and buffers, against the held-out targets of both checks."""
    checks, sent, targets = good
    assert len(targets) == 2 and sum(len(buffers) for _, buffers in sent) > 10  # training data and inputs went
    for found in targets:
        forms = [found.to(dtype).numpy().tobytes()[:256] for dtype in (torch.int64, torch.int32, torch.uint8, torch.float64)]
        for header, buffers in sent:
            assert not any(form in buffer for form in forms for buffer in buffers)
            assert str(found[:40].tolist())[1:-1] not in header


@pytest.mark.quality
def test_a_weaker_model_earns_half_then_nothing(assignment, tmp_path):
    # the right model with a share of its answers flipped (by a hash of x): 15% on the hidden check's
    # data (300 training points), 50% on the public one's (200)
    body = ("    model = learn(x, labels, classes, seed, budget_s)\n"
            "    share = 150 if len(x) == 300 else 500\n"
            "    class Noisy:\n"
            "        def predict(self, x):\n"
            "            flip = (x[:, 0] * 1e6).long() % 1000 < share\n"
            "            return torch.where(flip, 1 - model.predict(x), model.predict(x))\n"
            "    return Noisy()\n")
    checks = graded(assignment, submission(tmp_path, body))
    half, none = checks["model.fit.hidden"], checks["model.fit.accuracy"]
    assert (half.status, half.score) == ("failed", 1.0) and "accuracy 0.8" in half.message, half.message
    assert (none.status, none.score) == ("failed", 0.0) and "accuracy 0.5" in none.message, none.message


@pytest.mark.quality
def test_training_past_the_budget_is_a_timeout_that_names_the_budget(assignment, tmp_path):
    body = "    while True:\n        torch.randn(100, 100) @ torch.randn(100, 100)\n"
    check = graded(assignment, submission(tmp_path, body), visibilities=("public",))["model.fit.accuracy"]
    assert (check.status, check.score) == ("timeout", 0)
    assert "used 3 s of CPU time without returning" in check.message


@pytest.mark.quality
def test_predictions_are_held_to_their_contract(assignment, tmp_path):
    # public check (200 training points): bools; hidden (300): a column instead of a vector
    body = ("    class Model:\n"
            "        def predict(self, x):\n"
            "            return x[:, 0] > 0 if len(labels) == 200 else (x > 0).long()\n"
            "    return Model()\n")
    checks = graded(assignment, submission(tmp_path, body))
    assert "returned a bool tensor of shape (1000,); expected int64 class indices of shape (1000,)" in \
        checks["model.fit.accuracy"].message
    assert "returned a int64 tensor of shape (1000, 1); expected int64 class indices of shape (1000,)" in \
        checks["model.fit.hidden"].message
    assert all(checks[c].status == "failed" for c in ("model.fit.accuracy", "model.fit.hidden"))


HUNTER = '''
    import gc, os, sys
    model = learn(x, labels, classes, seed, budget_s)
    class Hunter:
        """Looks for the held-out targets everywhere this process can see; else the real model, inverted."""
        def predict(self, x):
            n = len(x)
            for obj in gc.get_objects():
                if isinstance(obj, torch.Tensor) and obj.shape == (3000,) and obj.dtype == torch.int64:
                    return obj[:n]
            frame = sys._getframe()
            while frame is not None:
                for value in frame.f_locals.values():
                    if isinstance(value, torch.Tensor) and value.shape == (3000,):
                        return value[:n].long()
                frame = frame.f_back
            for path in (f"/proc/{os.getppid()}/mem", "/proc/1/environ"):
                try:
                    with open(path, "rb") as handle:
                        handle.read(1)
                except OSError:
                    pass
            return 1 - model.predict(x)
    return Hunter()
'''


@pytest.mark.quality
def test_a_classifier_that_hunts_for_the_targets_scores_its_real_accuracy(assignment, tmp_path):
    check = graded(assignment, submission(tmp_path, HUNTER), visibilities=("hidden",))["model.fit.hidden"]
    assert (check.status, check.score) == ("failed", 0), check.message
    assert "accuracy 0.0" in check.message


FINGERPRINT = '''
    import hashlib
    raise ValueError("data " + hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16])
'''


@pytest.mark.quality
def test_a_regrade_draws_the_same_data_and_another_student_other_data(assignment, tmp_path):
    spec = next(spec for spec in assignment.checks if spec.id == "model.fit.hidden")
    with Worker(sandbox(), submission(tmp_path, FINGERPRINT)) as worker:
        alice, again, bob = (run_check(assignment, spec, worker, student).message for student in ("alice", "alice", "bob"))
    assert "data " in alice and alice == again
    assert bob != alice


@pytest.mark.quality
def test_a_public_check_replays_from_a_recording_of_its_seed_and_digest(assignment):
    spec = next(spec for spec in assignment.checks if spec.id == "model.fit.accuracy")
    tape = RecordingTape()
    cpu = re.compile(r"training used [0-9.]+ s")
    with Worker(sandbox(), assignment.reference_dir) as worker:
        recorded = run_check(assignment, spec, worker, PUBLIC_STUDENT, tape=tape)
        [entry] = tape.entries  # the data set: its seed in the spec, a digest for its value, no data
        assert entry["spec"]["fn"] == "dataset" and isinstance(entry["spec"]["seed"], int) and len(str(entry)) < 1000
        replayed = run_check(assignment, spec, worker, PUBLIC_STUDENT, tape=ReplayTape(tape.entries))
        # another generator than the release's: the replay says so instead of scoring other data
        other = dict(entry, value={"value": hashlib.sha256(b"other").hexdigest(), "buffers": []})
        refused = run_check(assignment, spec, worker, PUBLIC_STUDENT, tape=ReplayTape([other]))
    assert recorded.status == replayed.status == "passed"
    assert cpu.sub("", replayed.message) == cpu.sub("", recorded.message)
    assert refused.status == "failed" and "install the course's version" in refused.message


@pytest.mark.quality
def test_training_cannot_go_on_past_its_budget_in_predict(assignment, tmp_path):
    # train returns at once and trains in its first predict: the predict calls share PREDICT_S seconds
    body = ("    model = learn(x, labels, classes, seed, budget_s)\n"
            "    class Late:\n"
            "        def predict(self, x):\n"
            "            while True:\n"
            "                torch.randn(100, 100) @ torch.randn(100, 100)\n"
            "    return Late()\n")
    check = graded(assignment, submission(tmp_path, body), visibilities=("public",))["model.fit.accuracy"]
    assert check.status == "timeout" and f"used {quality.PREDICT_S:g} s of CPU time" in check.message, check.message


@pytest.mark.quality
def test_a_model_without_a_predict_method_is_told_so(assignment, tmp_path):
    body = "    class Model:\n        predict = [1, 2, 3]\n    return Model()\n"
    check = graded(assignment, submission(tmp_path, body), visibilities=("public",))["model.fit.accuracy"]
    assert check.status == "failed" and "has no predict method: model.predict is list of 3" in check.message, check.message
