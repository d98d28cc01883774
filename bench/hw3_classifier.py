"""Benchmark: hw3's text classifier task, calibrated, and what grading hw3 costs a student.

Prints
* the calibration table: held-out accuracy and training CPU seconds (one thread) of a bag of words
  (logistic regression on word counts), a unigram+bigram linear model, the reference solution (a
  small bidirectional GRU) and the alternative test submission (a 1-D convolution), on the hidden
  check's data (20,000 training and 5,000 held-out sentences) and the public check's (4,000 and
  1,000), over several seeds (students), against the tiers (full 0.90, half 0.80);
* CPU seconds to grade reference/hw3 for one student (the machine's: grader and worker processes
  together, so run it on an idle machine), with and without its two classifier checks.

Run: .venv/bin/python bench/hw3_classifier.py [--seeds N] [--students N] [--sandbox NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.datasets import sentiment  # noqa: E402
from cpu_per_submission import machine_cpu  # noqa: E402  (the machine's busy CPU: run on an idle one)

TIERS = (0.90, 0.80)


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Linear(torch.nn.Module):
    """A linear model on hashed n-gram counts: unigrams, and bigrams when `bigrams`."""

    BUCKETS = 1 << 16

    def __init__(self, vocab_size, num_classes, bigrams):
        super().__init__()
        self.bigrams = bigrams
        self.unigram = torch.nn.EmbeddingBag(vocab_size, num_classes, mode="sum", padding_idx=0)
        self.bigram = torch.nn.EmbeddingBag(self.BUCKETS, num_classes, mode="sum") if bigrams else None
        self.bias = torch.nn.Parameter(torch.zeros(num_classes))

    def forward(self, tokens, lengths):
        scores = self.unigram(tokens) + self.bias
        if self.bigrams:
            pairs = (tokens[:, :-1] * 1009 + tokens[:, 1:]) % self.BUCKETS
            weights = (tokens[:, 1:] != 0).to(scores.dtype)  # no pair ending in padding
            scores = scores + self.bigram(pairs, per_sample_weights=weights)
        return scores

    @torch.no_grad()
    def predict(self, tokens, lengths):
        return self.forward(tokens, lengths).argmax(dim=1)


def linear_trainer(bigrams):
    def train(tokens, lengths, labels, vocab_size, num_classes, seed, budget_s):
        torch.manual_seed(seed)
        model = Linear(vocab_size, num_classes, bigrams)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(2000):  # a number of steps, as the contract asks; converged well before
            rows = torch.randint(0, len(labels), (200,))
            loss = torch.nn.functional.cross_entropy(model(tokens[rows], lengths[rows]), labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model

    return train


def calibrate(name, train, sizes, seeds):
    scores, seconds = [], []
    for seed in seeds:
        data = sentiment.generate(seed, *sizes)
        started = time.process_time()
        model = train(data.train["tokens"], data.train["lengths"], data.train_labels, sentiment.VOCAB_SIZE,
                      sentiment.NUM_CLASSES, seed=seed, budget_s=180)
        seconds.append(time.process_time() - started)
        predicted = model.predict(data.held_out["tokens"], data.held_out["lengths"])
        scores.append((predicted == data.held_out_labels).double().mean().item())
    tier = "full" if min(scores) >= TIERS[0] else "half" if min(scores) >= TIERS[1] else "none"
    print(f"  {name:<28} {sizes[0]:>6,} {statistics.mean(scores):8.4f} {min(scores):8.4f}   {tier:<5}"
          f" {statistics.mean(seconds):8.1f} {max(seconds):6.1f}")


def grading_cost(students: int, sandbox_name: str):
    from autograder.engine.assignment import load_reference
    from autograder.engine.runner import grade
    from autograder.sandboxes import get_sandbox

    assignment = load_reference("hw3", ROOT / "reference" / "hw3")
    units = dataclasses.replace(assignment, checks=[s for s in assignment.checks if s.unit not in assignment.model_quality])
    sandbox = get_sandbox(sandbox_name)
    print(f"\ngrading reference/hw3, {sandbox_name} sandbox, one student at a time (the machine's CPU s: grader and workers):")
    for label, graded in (("every check", assignment), ("without the classifier", units)):
        costs, walls, score = [], [], None
        for number in range(students):
            before, started = machine_cpu(), time.monotonic()
            score = grade(graded, ROOT / "reference" / "hw3", sandbox, f"student{number}").score
            costs.append(machine_cpu() - before)
            walls.append(time.monotonic() - started)
        print(f"  {label:<24} {statistics.median(costs):6.1f} CPU s ({min(costs):.1f}-{max(costs):.1f}), "
              f"wall {statistics.median(walls):5.1f} s, score {score:g}/{graded.max_score:g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--students", type=int, default=2)
    parser.add_argument("--sandbox", default="namespace")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in the check's process
    reference = load(ROOT / "reference" / "hw3" / "recurrent.py", "_hw3_reference")
    alternative = load(ROOT / "tests" / "submissions" / "hw3_alternative" / "recurrent.py", "_hw3_alternative")
    seeds = list(range(101, 101 + args.seeds))
    print(f"calibration: synthetic sentiment with negation, {len(seeds)} seeds; tiers full {TIERS[0]}, half {TIERS[1]}")
    print(f"  {'model':<28} {'train':>6} {'mean acc':>8} {'min acc':>8}   tier  {'CPU s':>8} {'max':>6}")
    for sizes in ((20_000, 5_000), (4_000, 1_000)):
        calibrate("bag of words (linear)", linear_trainer(False), sizes, seeds)
        calibrate("unigrams + bigrams (linear)", linear_trainer(True), sizes, seeds)
        calibrate("reference (BiGRU)", reference.train_text_classifier, sizes, seeds)
        calibrate("alternative (1-D conv)", alternative.train_text_classifier, sizes, seeds)
    grading_cost(args.students, args.sandbox)


if __name__ == "__main__":
    main()
