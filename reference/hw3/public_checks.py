"""hw3 public checks: students run these with `autograder check hw3`.

Each check says what it calls, with what, and what it compares to; tolerances,
finite differences, seeds and model training live in the checks library. Where
torch has the operation (`torch.nn.GRUCell`, `GRU` on a packed batch, ...), it is
the reference of record: the same weights copied into it, in float64. Helpers
here are reused by hidden_checks.py with other inputs.
"""

import torch

from autograder.checks import CheckList
from autograder.checks.quality import Task
from autograder.datasets import sentiment

checks = CheckList()
F64, F32 = torch.float64, torch.float32

# torch's recurrent layers in every spelling: no recurrent unit may hand its work to one of them
_RECURRENT = [
    *(f"torch.nn.{name}" for name in ("RNNCell", "RNN", "GRUCell", "GRU", "LSTMCell", "LSTM")),
    *(f"{owner}.{name}" for owner in ("torch", "torch._VF")
      for name in ("rnn_tanh_cell", "rnn_relu_cell", "rnn_tanh", "rnn_relu", "gru_cell", "gru", "lstm_cell", "lstm")),
]

# What each unit may not call (autograd is forbidden to all of them but MODEL_QUALITY's, see AUTOGRAD_APIS).
FORBIDDEN = {
    "recurrent.Embedding": [
        "torch.nn.Embedding", "torch.nn.EmbeddingBag", "torch.nn.functional.embedding",
        "torch.nn.functional.embedding_bag", "torch.embedding", "torch.embedding_bag",
    ],
    **{f"recurrent.{unit}": _RECURRENT for unit in ("RNNCell", "GRUCell", "LSTMCell", "GRU")},
}

# Units that train a model: any torch API, autograd included; scored on held-out data (checks/quality.py).
MODEL_QUALITY = ["recurrent.train_text_classifier"]


# --- Embedding (0.75 points) -----------------------------------------------


def embedding_backward(t, vocab, dim, idx, padding_idx=None, dtype=F64):
    """forward then backward of the student's Embedding against F.embedding's autograd."""
    weight = t.randn(vocab, dim, dtype=dtype)
    mine = t.student.recurrent.Embedding(vocab, dim, padding_idx)
    mine.weight = weight
    expected_weight = weight.double().requires_grad_()
    expected = torch.nn.functional.embedding(idx, expected_weight, padding_idx=padding_idx)
    t.expect_close(mine.forward(idx), expected.detach(), dtype=dtype)
    upstream = t.randn(*expected.shape, dtype=dtype)
    expected.backward(upstream.double())
    mine.backward(upstream)
    t.expect_close(mine.dweight, expected_weight.grad, dtype=dtype,
                   what=f"Embedding.dweight after {t.last_call} (a row per word, repeats summed, padding_idx's 0)")


@checks.public("recurrent.Embedding.forward", points=0.25)
def _(t):
    for dtype in (F64, F32):
        weight, idx = t.randn(7, 4, dtype=dtype), t.randint(0, 7, 3, 5)
        mine = t.student.recurrent.Embedding(7, 4)
        mine.weight = weight
        t.expect_equal(mine.forward(idx), weight[idx])
        t.expect_equal(mine.forward(idx[0]), weight[idx[0]])


@checks.public("recurrent.Embedding.backward", points=0.25)
def _(t):
    idx = torch.tensor([[1, 2, 1, 0], [3, 0, 0, 1]])  # repeated words and padding (0)
    embedding_backward(t, 5, 3, idx, padding_idx=0)


# --- recurrent cells: torch.nn's with the same weights ---------------------

GATES = {"RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


def recurrent_weights(t, gates, input_size, hidden_size, dtype=F64, scale=0.5):
    """[weight_ih, weight_hh, bias_ih, bias_hh] of a layer with `gates` row blocks, random."""
    rows = gates * hidden_size
    return [t.randn(rows, input_size, dtype=dtype, scale=scale), t.randn(rows, hidden_size, dtype=dtype, scale=scale),
            t.randn(rows, dtype=dtype, scale=scale), t.randn(rows, dtype=dtype, scale=scale)]


def same_weights(mine, module, weights):
    """The student's layer and torch's (float64) given the same weights, in torch's order."""
    mine.weight_ih, mine.weight_hh, mine.bias_ih, mine.bias_hh = weights
    with torch.no_grad():
        for parameter, weight in zip(module.parameters(), weights):
            parameter.copy_(weight)
    return mine, module


def cell_pair(t, kind, input_size, hidden_size, dtype=F64):
    """The student's cell and torch.nn's (float64) with the same random weights."""
    weights = recurrent_weights(t, GATES[kind], input_size, hidden_size, dtype)
    module = getattr(torch.nn, kind)(input_size, hidden_size).to(F64)
    return same_weights(getattr(t.student.recurrent, kind)(input_size, hidden_size), module, weights)


def torch_cell(module, inputs):
    """torch's outputs for the cell's inputs (h, or (h', c') for an LSTM), graph kept for backward."""
    x, h, *c = inputs
    return module(x, (h, c[0])) if c else module(x, h)


def cell_forward(t, kind, n, input_size, hidden_size, dtype=F64, scale=1.0):
    mine, module = cell_pair(t, kind, input_size, hidden_size, dtype)
    inputs = [t.randn(n, input_size, dtype=dtype, scale=scale)] + [
        t.randn(n, hidden_size, dtype=dtype) for _ in range(2 if kind == "LSTMCell" else 1)]
    with torch.no_grad():
        expected = torch_cell(module, [x.double() for x in inputs])
    got = mine.forward(*inputs)
    if kind == "LSTMCell":
        t.expect_sequence(got, tuple, 2, what=f"the result (h', c') of {t.last_call}")
        t.expect_close(got[0], expected[0], dtype=dtype, what=f"h' of {t.last_call}")
        t.expect_close(got[1], expected[1], dtype=dtype, what=f"c' of {t.last_call}")
    else:
        t.expect_close(got, expected, dtype=dtype)
    return mine, module, inputs


def cell_backward(t, kind, n, input_size, hidden_size, dtype=F64):
    """forward, then backward with random upstream gradients, against autograd through torch's cell."""
    mine, module, inputs = cell_forward(t, kind, n, input_size, hidden_size, dtype)
    leaves = [x.double().requires_grad_() for x in inputs]
    outputs = torch_cell(module, leaves)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    upstream = [t.randn(*out.shape, dtype=dtype) for out in outputs]
    torch.autograd.backward(outputs, [g.double() for g in upstream])
    got = mine.backward(*upstream)
    names = ["dx", "dh", "dc"][: len(inputs)]
    t.expect_sequence(got, tuple, len(names), what=f"the result ({', '.join(names)}) of {t.last_call}")
    for name, value, leaf in zip(names, got, leaves):
        t.expect_close(value, leaf.grad, dtype=dtype, what=f"{name} of {t.last_call}")
    expect_parameter_gradients(t, mine, module.parameters(), dtype, kind)


PARAMETERS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def expect_parameter_gradients(t, mine, torch_parameters, dtype, kind):
    """d<name> of each parameter against torch's .grad; gradients() in parameters() order."""
    call = t.last_call
    expected = [p.grad for p in torch_parameters]
    for name, grad in zip(PARAMETERS, expected):
        t.expect_close(getattr(mine, f"d{name}"), grad, dtype=dtype, what=f"{kind}.d{name} after {call}")
    grads = t.expect_sequence(mine.gradients(), list, 4, what=f"{kind}.gradients(), [{', '.join('d' + p for p in PARAMETERS)}],")
    for name, got, grad in zip(PARAMETERS, grads, expected):
        t.expect_close(got, grad, dtype=dtype, what=f"{kind}.gradients(): d{name}")


@checks.public("recurrent.RNNCell.forward", points=0.25)
def _(t):
    for dtype in (F64, F32):
        cell_forward(t, "RNNCell", 4, 3, 5, dtype)


@checks.public("recurrent.RNNCell.backward", points=0.25)
def _(t):
    cell_backward(t, "RNNCell", 4, 3, 5)


@checks.public("recurrent.GRUCell.forward", points=0.25)
def _(t):
    for dtype in (F64, F32):
        cell_forward(t, "GRUCell", 4, 3, 5, dtype)


@checks.public("recurrent.GRUCell.backward", points=0.25)
def _(t):
    cell_backward(t, "GRUCell", 4, 3, 5)


@checks.public("recurrent.LSTMCell.forward", points=0.25)
def _(t):
    for dtype in (F64, F32):
        cell_forward(t, "LSTMCell", 4, 3, 5, dtype)


@checks.public("recurrent.LSTMCell.backward", points=0.25)
def _(t):
    cell_backward(t, "LSTMCell", 4, 3, 5)


# --- GRU over a variable-length batch (1.25 points) ------------------------


def gru_pair(t, input_size, hidden_size, dtype=F64):
    weights = recurrent_weights(t, 3, input_size, hidden_size, dtype)
    module = torch.nn.GRU(input_size, hidden_size, batch_first=True).to(F64)
    return same_weights(t.student.recurrent.GRU(input_size, hidden_size), module, weights)


def torch_gru(module, x, h0, lengths):
    """torch.nn.GRU on the packed batch, padded back to x's length: (out, h_n)."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = module(packed, h0[None])
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n[0]


def gru_forward(t, n, steps, input_size, hidden_size, lengths, dtype=F64):
    mine, module = gru_pair(t, input_size, hidden_size, dtype)
    x, h0 = t.randn(n, steps, input_size, dtype=dtype), t.randn(n, hidden_size, dtype=dtype)
    with torch.no_grad():
        expected = torch_gru(module, x.double(), h0.double(), lengths)
    got = mine.forward(x, h0, lengths)
    t.expect_sequence(got, tuple, 2, what=f"the result (out, h_n) of {t.last_call}")
    t.expect_close(got[0], expected[0], dtype=dtype, what=f"out of {t.last_call} (0 past each length)")
    t.expect_close(got[1], expected[1], dtype=dtype, what=f"h_n of {t.last_call} (the state at each length)")
    return mine, module, x, h0


def gru_backward(t, n, steps, input_size, hidden_size, lengths, dtype=F64):
    """forward, backward with random gradients of out and h_n, against autograd through torch's packed GRU;
    dx exactly 0 at padded positions."""
    mine, module, x, h0 = gru_forward(t, n, steps, input_size, hidden_size, lengths, dtype)
    x_leaf, h0_leaf = x.double().requires_grad_(), h0.double().requires_grad_()
    out, h_n = torch_gru(module, x_leaf, h0_leaf, lengths)
    grad_out, grad_h_n = t.randn(*out.shape, dtype=dtype), t.randn(*h_n.shape, dtype=dtype)
    torch.autograd.backward([out, h_n], [grad_out.double(), grad_h_n.double()])
    got = mine.backward(grad_out, grad_h_n)
    call = t.last_call
    t.expect_sequence(got, tuple, 2, what=f"the result (dx, dh0) of {call}")
    t.expect_close(got[0], x_leaf.grad, dtype=dtype, what=f"dx of {call}")
    t.expect_close(got[1], h0_leaf.grad, dtype=dtype, what=f"dh0 of {call}")
    padded = torch.arange(steps)[None, :] >= lengths[:, None]
    t.expect(bool((got[0][padded] == 0).all()), f"dx of {call} must be exactly 0 at padded positions (t >= lengths[n])")
    expect_parameter_gradients(t, mine, module.parameters(), dtype, "GRU")


@checks.public("recurrent.GRU.forward", points=0.25)
def _(t):
    gru_forward(t, 4, 6, 3, 5, torch.tensor([6, 2, 4, 1]))


@checks.public("recurrent.GRU.backward", points=0.25)
def _(t):
    gru_backward(t, 4, 6, 3, 5, torch.tensor([3, 6, 1, 5]))


# --- train_text_classifier (2 points): a model trained on the grader's data ---


def sentiment_task(train: int, held_out: int) -> Task:
    """Synthetic sentiment with negation (autograder.datasets.sentiment): bag of words scores ~0.6."""

    def generate(seed):
        data = sentiment.generate(seed, train, held_out)
        return {**data.train, "labels": data.train_labels}, data.held_out, data.held_out_labels

    constants = {"vocab_size": sentiment.VOCAB_SIZE, "num_classes": sentiment.NUM_CLASSES}
    return Task("sentiment", sentiment.VERSION, generate, constants, f"{held_out:,} held-out sentences")


CLASSIFIER_TIERS = {"full": 0.90, "half": 0.80}


@checks.public("recurrent.train_text_classifier.accuracy", points=0.5, timeout=120)
def _(t):
    # a smaller data set and budget than the hidden check's; the seed (hence the data) is the same for everyone
    t.train_and_score(t.student.recurrent.train_text_classifier, sentiment_task(4_000, 1_000), budget_s=60,
                      **CLASSIFIER_TIERS)
