# %% [markdown]
# # hw3: text classification, attention, beam search, named entities
#
# Write your solutions in `recurrent.py`, `seq2seq.py` and `tagging.py` (the task is in
# `README.md`). This notebook imports them, trains your text classifier on growing data
# sets, draws an attention map, runs beam searches of several widths and decodes entities
# with your CRF, then runs the public checks. Cells that use a unit you have not written
# yet say so and go on.

# %%
# autoreload: an edit to your files takes effect when you rerun a cell, no kernel restart needed.
%load_ext autoreload
%autoreload 2
import time

import matplotlib.pyplot as plt
import torch

import recurrent
import seq2seq
import tagging
from autograder.datasets import sentiment
from autograder.jupyter import attempt, check  # attempt(): a unit not written yet is said, not raised

# %% [markdown]
# ## The classifier's data
#
# Synthetic sentiment with negation: each sentence has 1 to 3 sentiment words, some
# preceded by a negation that flips them. Here are a few, with the words that matter named
# (the lexicon changes with the seed; the grader draws yours from a seed of its own).

# %%
data = sentiment.generate(seed=0, train=4_000, held_out=1_000)
role = {int(w): "+" for w in data.lexicon.positive} | {int(w): "-" for w in data.lexicon.negative}
role |= {int(w): "NOT" for w in data.lexicon.negation}
for tokens, length, label in zip(data.train["tokens"][:4], data.train["lengths"], data.train_labels):
    words = [role.get(int(w), ".") for w in tokens[:length]]
    print("positive" if label else "negative", " ".join(words))

# %% [markdown]
# ## A learning curve
#
# Your `train_text_classifier` on more and more sentences, scored on the same 1,000 held-out
# ones. The grader's tiers: full points at 0.90, half at 0.80. A bag of words stays near
# 0.57 however much data it gets. (Each point trains a model: this cell takes a while.)

# %%
torch.set_num_threads(1)  # as in the grader
sizes, accuracies, seconds = [500, 1_000, 2_000, 4_000], [], []
for size in sizes:
    started = time.process_time()
    model = attempt("train_text_classifier", lambda: recurrent.train_text_classifier(
        data.train["tokens"][:size], data.train["lengths"][:size], data.train_labels[:size],
        sentiment.VOCAB_SIZE, sentiment.NUM_CLASSES, seed=0, budget_s=60))
    if model is None:
        break
    seconds.append(time.process_time() - started)
    predicted = model.predict(data.held_out["tokens"], data.held_out["lengths"])
    accuracies.append((predicted == data.held_out_labels).double().mean().item())
if accuracies:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes[:len(accuracies)], accuracies, marker="o")
    ax.axhline(0.90, color="green", linestyle="--", label="full points")
    ax.axhline(0.80, color="orange", linestyle="--", label="half points")
    ax.set_xscale("log")
    ax.set_xlabel("training sentences")
    ax.set_ylabel("held-out accuracy")
    ax.legend()
    print("CPU seconds per training:", [round(s, 1) for s in seconds])

# %% [markdown]
# ## An attention map
#
# Eight positions attend to each other under a causal mask (a position sees itself and the
# ones before it). The queries and keys are built so that each position looks mostly two back.

# %%
positions = torch.arange(8.0)
angles = positions[:, None] * torch.tensor([0.9, 1.7])[None, :]
keys = torch.cat([angles.sin(), angles.cos()], dim=1) * 3
queries = torch.roll(keys, shifts=2, dims=0)  # what a position asks for: the key of the one two back
causal = torch.ones(8, 8, dtype=torch.bool).triu(1)  # True: blocked
attention = seq2seq.ScaledDotProductAttention()
if attempt("ScaledDotProductAttention", lambda: attention.forward(queries, keys, torch.eye(8), causal)) is not None:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(attention.attention, cmap="viridis")
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")

# %% [markdown]
# ## Beam search
#
# A small decoder's table of log-probabilities (bos 0, eos 1): wider beams find sequences
# greedy decoding misses; with a beam as wide as every hypothesis the search is exhaustive.

# %%
table = torch.log_softmax(torch.randn(5, 6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2, -1)
for width in (1, 2, 3, 6, 6 ** 5):
    found = attempt("beam_search", lambda: seq2seq.beam_search(table, 0, 1, width))
    if found is None:
        break
    print(f"beam {width:>5}: tokens {found[0]}, log-probability {found[1]:.3f}")

# %% [markdown]
# ## Entities from a CRF
#
# Emission scores for a sentence, as a tagger's network might give them, and transitions that
# forbid `I-X` after anything but `B-X` or `I-X`: Viterbi keeps the tags consistent where the
# emissions alone would not, and `entity_spans` reads the entities.

# %%
words = ["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London"]
names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
emissions = torch.tensor([[0, 3, 1, 0, 0], [0, 1, 2.5, 0, 0], [3, 0, 0, 0, 0], [0, 2, 2.2, 0, 0],
                          [0, 0, 3, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 2, 2.5]], dtype=torch.float64)
crf = tagging.CRF(len(names))
crf.start, crf.end = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
crf.trans = torch.zeros(5, 5, dtype=torch.float64)
crf.trans[:, 2] = -10.0
crf.trans[[1, 2], 2] = 0.0  # I-PER only after B-PER or I-PER
crf.trans[:, 4] = -10.0
crf.trans[[3, 4], 4] = 0.0  # I-LOC only after B-LOC or I-LOC
path = attempt("CRF.decode", lambda: crf.decode(emissions[None], torch.tensor([len(words)]))[0])
if path is not None:
    tags = [names[i] for i in path.tolist()]
    print("emissions alone:", [names[i] for i in emissions.argmax(1).tolist()])
    print("Viterbi:        ", tags)
    print("entities:       ", attempt("entity_spans", lambda: tagging.entity_spans(tags)))

# %% [markdown]
# ## The public checks
#
# The same checks as `autograder check hw3` in a terminal. Save your files first. The hidden
# checks, graded after the deadline, test the same units on other inputs, time your
# multi-head attention and train your classifier on data drawn for you.

# %%
check("hw3")
