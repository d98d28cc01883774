"""Model-quality checks: the student's code trains a model, the grader scores its predictions.

    t.train_and_score(t.student.recurrent.train_text_classifier, SENTIMENT, budget_s=180, full=0.90, half=0.80)

* The data: a Task draws them on the grader's side, from a seed the check's own seed gives
  (so per student, assignment and check id for a hidden check, published for a public one);
  a public check's replay draws them again with the installed generator (see `draw`).
* Training: one call into the student's process, `train(**task inputs, seed=..., budget_s=...)`,
  with the process's RNGs seeded from `seed` just before and `budget_s` seconds of CPU time
  as its limit (not the check's per-call limit); the model stays there, the grader gets a handle.
  The unit may use any torch API (the assignment lists it in MODEL_QUALITY: no autograd ban).
* Scoring: the model's `predict` on the held-out inputs, in batches; the grader compares what
  comes back with the held-out targets, which never leave this process: full points at `full`,
  half at `half`, none below. The message gives the score, the tiers and the training's CPU time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch

from autograder.checks import compare
from autograder.checks.failures import CheckFailed, PartialCredit
from autograder.checks.seeds import process_seed
from autograder.protocol import wire
from autograder.protocol.proxy import Remote, RemoteMethod

PREDICT_BATCH = 1000  # held-out examples per predict call
PREDICT_S = 10.0  # CPU seconds for every predict call together: training must happen in the training call
PREPARE_S = 60.0  # CPU seconds to import what a first training imports (protocol/fixtures.py: ready_to_train)


@dataclass(frozen=True)
class Task:
    """A data set drawn per seed. generate(seed) -> (train inputs, held-out inputs, held-out targets),
    each tensor-valued; `constants` are passed to the training function as they are (vocabulary size,
    classes). A new `version` of the generator is a new question: public bundles record it."""

    name: str
    version: int
    generate: Callable[[int], tuple[dict, dict, torch.Tensor]]
    constants: dict
    describe: str  # "5,000 held-out sentences"


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    return (predictions == targets).double().mean().item()


def train_and_score(t, train, task: Task, *, budget_s: float, full: float, half: float, metric=accuracy,
                    what: str = "held-out accuracy") -> float:
    """Train with the student's `train` on task's data, score its model's predictions; see the module's doc."""
    inputs, held_out, targets = draw(t, task)
    seed = process_seed(t.seed) % (1 << 31)  # numpy and random take it as it is; it tells nothing of the data's seed
    session = t.session
    prepare = t.fixture("ready_to_train")  # torch's training imports, off the student's clock
    session.call(prepare, None, (), {}, cpu_seconds=PREPARE_S)
    started = session.cpu_time()
    model = session.train(train, {**inputs, **task.constants, "seed": seed, "budget_s": budget_s},
                          seed=seed, cpu_seconds=budget_s)
    ended = session.cpu_time()
    used = f"{ended - started:.1f} s" if started is not None and ended is not None else "an unknown amount"
    call = t.last_call
    predictions = predict(model, held_out, len(targets), call, session)
    score = metric(predictions, targets)
    text = (f"{call}: {what} {score:.4f} on {task.describe}; full points at >= {full:g}, half at >= {half:g}; "
            f"training used {used} of CPU time (budget {budget_s:g} s)")
    if score >= full:
        t.note(text)
    elif score >= half:
        raise PartialCredit(0.5, text, text)
    else:
        raise CheckFailed(text, text)
    return score


def draw(t, task: Task) -> tuple[dict, dict, torch.Tensor]:
    """The task's data for this check, drawn from a seed the check's seed gives. The tape records the
    seed and a digest of the data, not the data: the generator is exact (integer draws), so a public
    check's replay draws them again, on any CPU, and the digest proves it drew the same."""
    seed = int(torch.randint(0, 1 << 62, (1,), generator=t.generator))
    inputs, held_out, targets = task.generate(seed)
    spec = {"fn": "dataset", "name": task.name, "version": task.version, "seed": seed}
    found = digest([inputs, held_out, targets])
    recorded = t.tape.draw("input", spec, lambda: found)
    if recorded != found:
        raise CheckFailed(
            f"the {task.name} data (generator version {task.version}) drawn here differ from those the public checks "
            "were released with: this autograder (or torch) is another version than the course's; install the course's versions"
        )
    return inputs, held_out, targets


def digest(value) -> str:
    """sha256 of the tensors in value (dicts by key), their dtypes and shapes."""
    hasher = hashlib.sha256()

    def add(item):
        if isinstance(item, dict):
            for key in sorted(item):
                hasher.update(key.encode())
                add(item[key])
        elif isinstance(item, (list, tuple)):
            for element in item:
                add(element)
        else:
            plain = item.detach().cpu().contiguous()
            hasher.update(f"{plain.dtype}{tuple(plain.shape)}".encode())
            hasher.update(plain.reshape(-1).view(torch.uint8).numpy().tobytes())

    add(value)
    return hasher.hexdigest()


def predict(model, held_out: dict, count: int, call: str, session) -> torch.Tensor:
    """model.predict(*held-out inputs), PREDICT_BATCH examples a call within PREDICT_S CPU seconds in all,
    each answer held to its contract: an integer CPU tensor with one entry per example."""
    names = list(held_out)
    predictor = model.predict
    if not isinstance(predictor, (Remote, RemoteMethod)):  # plain data where a method should be
        raise CheckFailed(f"the model of {call} has no predict method: model.predict is {compare.describe(predictor)}")
    target = (predictor.owner, predictor.name) if isinstance(predictor, RemoteMethod) else (predictor, None)
    answers, spent = [], 0.0
    for start in range(0, count, PREDICT_BATCH):
        batch = [held_out[name][start:start + PREDICT_BATCH] for name in names]
        size = len(batch[0])
        before = session.cpu_time()
        answer = session.call(*target, batch, {}, cpu_seconds=max(PREDICT_S - spent, 0.5))
        after = session.cpu_time()
        spent += after - before if before is not None and after is not None else 0.0
        where = f"the model of {call}: predict({', '.join(names)}) on {size} examples"
        if not isinstance(answer, torch.Tensor):
            kind = answer.type if isinstance(answer, wire.Opaque) else type(answer).__name__
            raise CheckFailed(f"{where} returned a {kind}, not a tensor of {size} class indices")
        if answer.device.type != "cpu":
            raise CheckFailed(f"{where} returned a tensor on {answer.device.type}; return class indices on the CPU")
        if answer.shape != (size,) or answer.dtype.is_floating_point or answer.dtype.is_complex or answer.dtype == torch.bool:
            raise CheckFailed(f"{where} returned a {str(answer.dtype).removeprefix('torch.')} tensor of shape "
                              f"{tuple(answer.shape)}; expected int64 class indices of shape ({size},)")
        answers.append(answer.long())
    return torch.cat(answers)
