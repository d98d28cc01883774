"""Synthetic sentiment with negation: hw3's text-classification task (ASSIGNMENTS.md, hw3).

From a seed: a lexicon (20 positive, 20 negative and 3 negation words; the rest of the
vocabulary is filler, drawn with Zipf weights), then sentences of 8 to 40 tokens, each with
1 to 3 sentiment words at least 2 apart, each preceded with probability 0.35 by a negation
word that flips it. The label is the sign of the sum (1 positive, 0 negative; ties are
drawn again). A bag of words cannot tell "not good ... bad" from "good ... not bad": word
order decides.

Deterministic given the seed on every CPU: only integer draws and integer arithmetic, no ties
left to a kernel, so a regrade on another machine draws the same data.
Changing what a seed draws is a new VERSION (recorded with every public check's data).

    data = generate(seed=7, train=20_000, held_out=5_000)
    data.train["tokens"], data.train["lengths"], data.train_labels, data.held_out, data.held_out_labels
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

VERSION = 2  # 2: ties between slot keys made impossible (1 drew float keys)
VOCAB_SIZE = 1000  # token ids 1..999; 0 is padding
NUM_CLASSES = 2
MAX_LENGTH = 40
MIN_LENGTH = 8
POLAR_WORDS = 20  # positive words, and as many negative ones
NEGATION_WORDS = 3
NEGATION_RATE = 35  # percent of sentiment words preceded by a negation
ZIPF_SCALE = 1 << 20  # filler weights: round(ZIPF_SCALE / rank), integers so sampling is exact


@dataclass
class Lexicon:
    positive: torch.Tensor  # (20,) token ids
    negative: torch.Tensor  # (20,)
    negation: torch.Tensor  # (3,)
    filler: torch.Tensor  # (956,) token ids, most frequent first
    filler_cumulative: torch.Tensor  # (956,) int64 running sums of the filler weights


@dataclass
class Split:
    """What a training function gets (`train`, with `train_labels`) and what the grader keeps."""

    train: dict  # tokens (N, 40) int64, lengths (N,) int64
    train_labels: torch.Tensor  # (N,) int64
    held_out: dict  # tokens, lengths: the inputs the model predicts
    held_out_labels: torch.Tensor  # never leaves the grader
    lexicon: Lexicon


def generate(seed: int, train: int, held_out: int) -> Split:
    """The lexicon, `train` labelled sentences and `held_out` more, all from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    lexicon = draw_lexicon(generator)
    tokens, lengths, labels = sentences(generator, lexicon, train + held_out)
    return Split(
        train={"tokens": tokens[:train], "lengths": lengths[:train]},
        train_labels=labels[:train],
        held_out={"tokens": tokens[train:], "lengths": lengths[train:]},
        held_out_labels=labels[train:],
        lexicon=lexicon,
    )


def draw_lexicon(generator: torch.Generator) -> Lexicon:
    words = torch.randperm(VOCAB_SIZE - 1, generator=generator) + 1
    polar, negation, filler = words[: 2 * POLAR_WORDS], words[2 * POLAR_WORDS: 2 * POLAR_WORDS + NEGATION_WORDS], words[2 * POLAR_WORDS + NEGATION_WORDS:]
    rank = torch.arange(1, len(filler) + 1, dtype=torch.int64)
    weights = (ZIPF_SCALE + rank // 2) // rank  # round(ZIPF_SCALE / rank), in integers
    return Lexicon(polar[:POLAR_WORDS], polar[POLAR_WORDS:], negation, filler, weights.cumsum(0))


def sentences(generator: torch.Generator, lexicon: Lexicon, count: int):
    """(tokens (count, 40), lengths (count,), labels (count,)), ties drawn again until `count` are left."""
    parts, have = [], 0
    while have < count:
        tokens, lengths, labels = _draw(generator, lexicon, count - have + (count - have) // 4 + 8)
        parts.append((tokens, lengths, labels))
        have += len(labels)
    tokens, lengths, labels = (torch.cat(column)[:count] for column in zip(*parts))
    return tokens, lengths, labels


def _draw(generator: torch.Generator, lexicon: Lexicon, n: int):
    """n sentences less those whose sentiment sums to 0."""
    lengths = torch.randint(MIN_LENGTH, MAX_LENGTH + 1, (n,), generator=generator)
    # filler everywhere, by inverse CDF on integer weights
    total = int(lexicon.filler_cumulative[-1])
    picks = torch.randint(0, total, (n, MAX_LENGTH), generator=generator)
    tokens = lexicon.filler[torch.searchsorted(lexicon.filler_cumulative, picks, right=True)]
    # 1-3 sentiment words at positions 1..L-1, at least 2 apart: k distinct sorted slots among
    # 1..L-k, the i-th moved right by i (so a negation before it never lands on the one before)
    k = torch.randint(1, 4, (n,), generator=generator)
    # random integer keys with the slot in their low bits: no two equal, so the 3 smallest are one set on
    # every CPU and torch (equal float keys would leave the choice to topk's implementation)
    slot = torch.arange(MAX_LENGTH)
    keys = torch.randint(0, 1 << 24, (n, MAX_LENGTH), generator=generator) * MAX_LENGTH + slot
    keys[(slot < 1) | (slot > (lengths - k)[:, None])] = 1 << 40  # outside 1..L-k: never among the smallest
    chosen = keys.topk(3, dim=1, largest=False).indices
    used = torch.arange(3) < k[:, None]
    chosen = torch.where(used, chosen, MAX_LENGTH).sort(dim=1).values  # unused slots sort last
    positions = chosen + torch.arange(3)
    polarity_word = torch.randint(0, 2 * POLAR_WORDS, (n, 3), generator=generator)
    negated = torch.randint(0, 100, (n, 3), generator=generator) < NEGATION_RATE
    negation_word = torch.randint(0, NEGATION_WORDS, (n, 3), generator=generator)
    polar = torch.cat([lexicon.positive, lexicon.negative])
    rows = torch.arange(n)[:, None].expand(n, 3)
    tokens[rows[used], positions[used]] = polar[polarity_word[used]]
    before = used & negated
    tokens[rows[before], positions[before] - 1] = lexicon.negation[negation_word[before]]
    sign = torch.where(polarity_word < POLAR_WORDS, 1, -1) * torch.where(negated, -1, 1)
    total_sign = (sign * used).sum(dim=1)
    tokens[slot >= lengths[:, None]] = 0
    keep = total_sign != 0
    return tokens[keep], lengths[keep], (total_sign[keep] > 0).long()
