"""hw3 hidden checks: run only by `autograder grade`, never shipped to students.

Inputs are drawn from a seed of (student id, assignment, check id): every
student gets other sizes and values, and a regrade gets the same ones. They
cover what the public checks leave out: float32, other shapes, pre-activations
up to 1e3, finite differences of every input and weight, padded positions, and
the text classifier on the full data set and budget.
"""

import torch

from autograder.checks import CheckList

from .public_checks import (
    CLASSIFIER_TIERS,
    F32,
    F64,
    cell_backward,
    cell_forward,
    embedding_backward,
    gru_backward,
    gru_pair,
    recurrent_weights,
    sentiment_task,
)

checks = CheckList()


def dims(t, count, low=2, high=7):
    """count random sizes in [low, high): the hidden shapes differ per student."""
    return t.randint(low, high, count).tolist()


def lengths_for(t, n, steps):
    """n lengths in 1..steps, the longest equal to steps (as a padded batch has)."""
    lengths = t.randint(1, steps + 1, n)
    lengths[0] = steps
    return lengths


# --- Embedding ---------------------------------------------------------------


@checks.hidden("recurrent.Embedding.shapes", points=0.25)
def _(t):
    vocab, dim, a, b = dims(t, 4, 3, 9)
    embedding_backward(t, vocab, dim, t.randint(0, vocab, a, b, 2), dtype=F32)  # no padding_idx, 3-d indices
    embedding_backward(t, vocab, dim, t.randint(0, vocab, a), padding_idx=vocab - 1)


# --- cells ----------------------------------------------------------------------


def cell_gradcheck(t, kind, n, input_size, hidden_size, output=0):
    """Finite differences of forward (its output number `output`) against backward, for every input and
    weight, and both against the reference cell's."""
    names = ["x", "h", "c"][: 3 if kind == "LSTMCell" else 2]
    points = {name: t.randn(n, input_size if name == "x" else hidden_size) for name in names}
    weight_names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    gates = {"RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}[kind]
    points.update(zip(weight_names, recurrent_weights(t, gates, input_size, hidden_size)))

    def forward_of(cell):
        def forward(**inputs):
            for name in weight_names:
                setattr(cell, name, inputs[name])
            result = cell.forward(*(inputs[name] for name in names))
            return result[output] if kind == "LSTMCell" else result

        return forward

    def backward_of(cell):
        def backward(upstream):
            if kind == "LSTMCell":
                zero = torch.zeros_like(upstream)
                upstream = (upstream, zero) if output == 0 else (zero, upstream)
            else:
                upstream = (upstream,)
            grads = cell.backward(*upstream)
            return {**dict(zip(names, grads)), **{name: getattr(cell, f"d{name}") for name in weight_names}}

        return backward

    mine = getattr(t.student.recurrent, kind)(input_size, hidden_size)
    ref = getattr(t.reference.recurrent, kind)(input_size, hidden_size)
    t.gradcheck(forward_of(mine), points, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


@checks.hidden("recurrent.RNNCell.gradcheck", points=0.25)
def _(t):
    n, i, h = dims(t, 3, 2, 5)
    cell_gradcheck(t, "RNNCell", n, i, h)


@checks.hidden("recurrent.GRUCell.gradcheck", points=0.25)
def _(t):
    n, i, h = dims(t, 3, 2, 5)
    cell_gradcheck(t, "GRUCell", n, i, h)


@checks.hidden("recurrent.LSTMCell.gradcheck", points=0.25)
def _(t):
    n, i, h = dims(t, 3, 2, 4)
    cell_gradcheck(t, "LSTMCell", n, i, h, output=0)
    cell_gradcheck(t, "LSTMCell", n, i, h, output=1)


@checks.hidden("recurrent.GRUCell.float32", points=0.25)
def _(t):
    n, i, h = dims(t, 3)
    cell_forward(t, "GRUCell", n, i, h, F32)
    cell_backward(t, "GRUCell", n, i, h, F32)


@checks.hidden("recurrent.LSTMCell.float32", points=0.25)
def _(t):
    n, i, h = dims(t, 3)
    cell_forward(t, "LSTMCell", n, i, h, F32)
    cell_backward(t, "LSTMCell", n, i, h, F32)


@checks.hidden("recurrent.GRUCell.stable", points=0.25)
def _(t):
    # pre-activations up to ~1e3: the gates saturate, nothing overflows
    n, i, h = dims(t, 3)
    for dtype in (F64, F32):
        cell_forward(t, "GRUCell", n, i, h, dtype, scale=500.0)


# --- GRU --------------------------------------------------------------------------


@checks.hidden("recurrent.GRU.full_lengths", points=0.25)
def _(t):
    # every sequence full: the same as torch.nn.GRU on the padded tensor itself, float64 and float32
    n, steps, i, h = dims(t, 4)
    for dtype in (F64, F32):
        mine, module = gru_pair(t, i, h, dtype)
        x, h0 = t.randn(n, steps, i, dtype=dtype), t.randn(n, h, dtype=dtype)
        with torch.no_grad():
            out, h_n = module(x.double(), h0.double()[None])
        got = t.expect_sequence(mine.forward(x, h0, torch.full((n,), steps)), tuple, 2, what=f"the result of {t.last_call}")
        t.expect_close(got[0], out, dtype=dtype, what=f"out of {t.last_call}, against torch.nn.GRU unpacked")
        t.expect_close(got[1], h_n[0], dtype=dtype, what=f"h_n of {t.last_call}, against torch.nn.GRU unpacked")


@checks.hidden("recurrent.GRU.lengths", points=0.25)
def _(t):
    n, steps, i, h = dims(t, 4, 3, 8)
    gru_backward(t, n, steps, i, h, lengths_for(t, n, steps), F32)


@checks.hidden("recurrent.GRU.gradcheck", points=0.25)
def _(t):
    # finite differences of out and of h_n with respect to x, h0 and every weight; padded steps included
    n, steps, i, h = dims(t, 4, 2, 5)
    lengths = lengths_for(t, n, steps)
    weight_names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    points = {"x": t.randn(n, steps, i), "h0": t.randn(n, h)}
    points.update(zip(weight_names, recurrent_weights(t, 3, i, h)))
    for output in (0, 1):

        def forward_of(layer):
            def forward(x, h0, **weights):
                for name in weight_names:
                    setattr(layer, name, weights[name])
                return layer.forward(x, h0, lengths)[output]

            return forward

        def backward_of(layer):
            def backward(upstream):
                grad_out = upstream if output == 0 else torch.zeros(n, steps, h, dtype=F64)
                grad_h_n = upstream if output == 1 else torch.zeros(n, h, dtype=F64)
                dx, dh0 = layer.backward(grad_out, grad_h_n)
                return {"x": dx, "h0": dh0, **{name: getattr(layer, f"d{name}") for name in weight_names}}

            return backward

        mine, ref = t.student.recurrent.GRU(i, h), t.reference.recurrent.GRU(i, h)
        t.gradcheck(forward_of(mine), points, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


# --- train_text_classifier ------------------------------------------------------


@checks.hidden("recurrent.train_text_classifier.accuracy_hidden", points=1.5, timeout=300)
def _(t):
    # this student's own lexicon and sentences; the held-out labels never leave the grader
    t.train_and_score(t.student.recurrent.train_text_classifier, sentiment_task(20_000, 5_000), budget_s=180,
                      **CLASSIFIER_TIERS)
