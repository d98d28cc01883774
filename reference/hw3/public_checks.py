"""hw3 public checks: students run these with `autograder check hw3`.

Each check says what it calls, with what, and what it compares to; tolerances,
finite differences, seeds and model training live in the checks library. Where
torch has the operation (`torch.nn.GRUCell`, `GRU` on a packed batch, ...), it is
the reference of record: the same weights copied into it, in float64. Helpers
here are reused by hidden_checks.py with other inputs.
"""

import itertools

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

_ATTENTION = [
    "torch.nn.functional.scaled_dot_product_attention", "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.MultiheadAttention", "torch.nn.Transformer", "torch.nn.TransformerEncoderLayer",
    "torch.nn.TransformerDecoderLayer", "torch._native_multi_head_attention",
]

# What each unit may not call (autograd is forbidden to all of them but MODEL_QUALITY's, see AUTOGRAD_APIS).
FORBIDDEN = {
    "recurrent.Embedding": [
        "torch.nn.Embedding", "torch.nn.EmbeddingBag", "torch.nn.functional.embedding",
        "torch.nn.functional.embedding_bag", "torch.embedding", "torch.embedding_bag",
    ],
    **{f"recurrent.{unit}": _RECURRENT for unit in ("RNNCell", "GRUCell", "LSTMCell", "GRU")},
    "seq2seq.SequenceCrossEntropy": [
        "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss",
    ],
    "seq2seq.ScaledDotProductAttention": _ATTENTION,
    "seq2seq.MultiHeadAttention": _ATTENTION,
    "seq2seq.corpus_bleu": ["nltk", "sacrebleu", "torchtext", "torchmetrics"],
    "tagging.CRF": ["torchcrf"],
    "tagging.entity_spans": ["seqeval"],
    "tagging.entity_prf": ["seqeval", "sklearn"],
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


# --- SequenceCrossEntropy (1 point) ----------------------------------------


def sequence_xent(t, n, steps, vocab, ignore_index=-100, label_smoothing=0.0, dtype=F64, scale=1.0):
    """forward against F.cross_entropy on the flattened batch, backward against its autograd."""
    logits, target = t.randn(n, steps, vocab, dtype=dtype, scale=scale), t.randint(0, vocab, n, steps)
    if ignore_index >= 0:
        target[t.randint(0, 2, n, steps).bool()] = ignore_index
        target[0, 0] = 0 if ignore_index != 0 else 1  # at least one position counts
    mine = t.student.seq2seq.SequenceCrossEntropy(ignore_index, label_smoothing)
    leaf = logits.double().requires_grad_()
    expected = torch.nn.functional.cross_entropy(leaf.reshape(-1, vocab), target.reshape(-1), ignore_index=ignore_index,
                                                 label_smoothing=label_smoothing)
    expected.backward()
    t.expect_close(mine.forward(logits, target), expected.detach(), dtype=dtype)
    t.expect_close(mine.backward(), leaf.grad, dtype=dtype, what=f"backward() after {t.last_call}")


@checks.public("seq2seq.SequenceCrossEntropy.forward", points=0.25)
def _(t):
    logits, target = t.randn(2, 3, 5), torch.tensor([[1, 4, 0], [2, 2, 3]])
    mine = t.student.seq2seq.SequenceCrossEntropy()
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), target.reshape(-1))
    t.expect_close(mine.forward(logits, target), expected)


@checks.public("seq2seq.SequenceCrossEntropy.backward", points=0.25)
def _(t):
    sequence_xent(t, 3, 4, 6, ignore_index=0)  # padding (0) ignored: its rows of the gradient are 0


# --- ScaledDotProductAttention (1 point) -----------------------------------


def attention_inputs(t, batch, tq, tk, d, dv, dtype=F64, scale=1.0, masked=True):
    q, k, v = t.randn(*batch, tq, d, dtype=dtype, scale=scale), t.randn(*batch, tk, d, dtype=dtype), t.randn(*batch, tk, dv, dtype=dtype)
    mask = None
    if masked:  # broadcast over the batch; at least one key per query stays open
        mask = t.uniform(tq, tk) < 0.4
        mask[:, 0] = False
    return q, k, v, mask


def sdpa(t, q, k, v, mask):
    """forward (and the stored attention) against F.scaled_dot_product_attention, backward against its autograd."""
    dtype = q.dtype
    leaves = [x.double().requires_grad_() for x in (q, k, v)]
    expected = torch.nn.functional.scaled_dot_product_attention(*leaves, attn_mask=None if mask is None else ~mask)
    upstream = t.randn(*expected.shape, dtype=dtype)
    expected.backward(upstream.double())
    mine = t.student.seq2seq.ScaledDotProductAttention()
    t.expect_close(mine.forward(q, k, v, mask), expected.detach(), dtype=dtype)
    call = t.last_call
    scores = leaves[0].detach() @ leaves[1].detach().transpose(-2, -1) / leaves[0].shape[-1] ** 0.5
    weights = torch.softmax(scores if mask is None else scores.masked_fill(mask, float("-inf")), dim=-1)
    t.expect_close(mine.attention, weights, dtype=dtype, what=f"the attention stored by {call}")
    got = t.expect_sequence(mine.backward(upstream), tuple, 3, what=f"the result (dq, dk, dv) of backward after {call}")
    for name, value, leaf in zip(("dq", "dk", "dv"), got, leaves):
        t.expect_close(value, leaf.grad, dtype=dtype, what=f"{name} of backward after {call}")


@checks.public("seq2seq.ScaledDotProductAttention.forward", points=0.25)
def _(t):
    q, k, v, mask = attention_inputs(t, (2,), 3, 4, 5, 6)
    mine = t.student.seq2seq.ScaledDotProductAttention()
    t.expect_close(mine.forward(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v))
    t.expect_close(mine.forward(q, k, v, mask), torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=~mask))


@checks.public("seq2seq.ScaledDotProductAttention.backward", points=0.25)
def _(t):
    sdpa(t, *attention_inputs(t, (2, 3), 4, 5, 3, 2))


# --- MultiHeadAttention (1.5 points) ---------------------------------------


def mha_pair(t, embed_dim, heads, dtype=F64):
    """The student's MultiHeadAttention and torch.nn.MultiheadAttention (float64) with the same random weights."""
    weights = {name: t.randn(embed_dim, embed_dim, dtype=dtype, scale=embed_dim ** -0.5) for name in ("W_q", "W_k", "W_v", "W_o")}
    weights.update({name: t.randn(embed_dim, dtype=dtype, scale=0.1) for name in ("b_q", "b_k", "b_v", "b_o")})
    mine = t.student.seq2seq.MultiHeadAttention(embed_dim, heads)
    for name, value in weights.items():
        setattr(mine, name, value)
    module = torch.nn.MultiheadAttention(embed_dim, heads, batch_first=True).to(F64)
    w = {name: value.double() for name, value in weights.items()}
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.cat([w["W_q"], w["W_k"], w["W_v"]]))
        module.in_proj_bias.copy_(torch.cat([w["b_q"], w["b_k"], w["b_v"]]))
        module.out_proj.weight.copy_(w["W_o"])
        module.out_proj.bias.copy_(w["b_o"])
    return mine, module


MHA_PARAMETERS = ["W_q", "b_q", "W_k", "b_k", "W_v", "b_v", "W_o", "b_o"]


def mha(t, n, tq, tk, embed_dim, heads, dtype=F64, masks=True, backward=True):
    """forward against torch.nn.MultiheadAttention (key padding and attention masks), backward against its autograd."""
    mine, module = mha_pair(t, embed_dim, heads, dtype)
    inputs = [t.randn(n, tq, embed_dim, dtype=dtype)] + [t.randn(n, tk, embed_dim, dtype=dtype) for _ in range(2)]
    key_padding = attn = None
    if masks:
        key_padding = t.uniform(n, tk) < 0.3
        key_padding[:, 0] = False
        attn = t.uniform(tq, tk) < 0.3
        attn[:, 0] = False
    leaves = [x.double().requires_grad_() for x in inputs]
    expected, _ = module(*leaves, key_padding_mask=key_padding, attn_mask=attn, need_weights=False)
    t.expect_close(mine.forward(*inputs, key_padding, attn), expected.detach(), dtype=dtype)
    if not backward:
        return
    call = t.last_call
    upstream = t.randn(n, tq, embed_dim, dtype=dtype)
    expected.backward(upstream.double())
    got = t.expect_sequence(mine.backward(upstream), tuple, 3, what=f"the result (dquery, dkey, dvalue) of backward after {call}")
    for name, value, leaf in zip(("dquery", "dkey", "dvalue"), got, leaves):
        t.expect_close(value, leaf.grad, dtype=dtype, what=f"{name} of backward after {call}")
    in_w, in_b, E = module.in_proj_weight.grad, module.in_proj_bias.grad, embed_dim
    expected_grads = [in_w[:E], in_b[:E], in_w[E:2 * E], in_b[E:2 * E], in_w[2 * E:], in_b[2 * E:],
                      module.out_proj.weight.grad, module.out_proj.bias.grad]
    grads = t.expect_sequence(mine.gradients(), list, 8, what="MultiHeadAttention.gradients(), [dW_q, db_q, ..., dW_o, db_o],")
    for name, value, grad in zip(MHA_PARAMETERS, grads, expected_grads):
        t.expect_close(value, grad, dtype=dtype, what=f"MultiHeadAttention.gradients(): d{name} after {call}")


@checks.public("seq2seq.MultiHeadAttention.forward", points=0.25)
def _(t):
    mha(t, 2, 3, 5, 8, 2, backward=False)


@checks.public("seq2seq.MultiHeadAttention.backward", points=0.25)
def _(t):
    mha(t, 2, 4, 3, 6, 3)


# --- beam_search (0.75 points) ---------------------------------------------


def log_prob_table(t, steps, vocab, sharpness=2.0):
    """(T, V, V) rows of log-probabilities; continuous draws: no two totals tie."""
    return torch.log_softmax(t.randn(steps, vocab, vocab, scale=sharpness), dim=-1)


def exhaustive_search(step_log_probs, bos, eos):
    """The best sequence ending in eos within T steps, by trying them all (None when eos cannot come)."""
    steps, vocab, _ = step_log_probs.shape
    table, best = step_log_probs.tolist(), None
    for length in range(1, steps + 1):
        for sequence in itertools.product([y for y in range(vocab) if y != eos], repeat=length - 1):
            total, previous = 0.0, bos
            for step, token in enumerate(sequence + (eos,)):
                total, previous = total + table[step][previous][token], token
            if best is None or total > best[1]:
                best = (list(sequence), total)
    return best


def greedy_search(step_log_probs, bos, eos):
    tokens, total, previous = [], 0.0, bos
    for step in range(step_log_probs.shape[0]):
        token = int(step_log_probs[step, previous].argmax())
        total += float(step_log_probs[step, previous, token])
        if token == eos:
            break
        tokens.append(token)
        previous = token
    return tokens, total


def expect_search(t, got, expected, how):
    t.expect_sequence(got, tuple, 2, what=f"the result (tokens, score) of {t.last_call}")
    tokens, score = got
    t.expect(isinstance(tokens, list) and tokens == expected[0],
             f"{t.last_call}: tokens {tokens}, {how} finds {expected[0]}", f"{t.last_call}: other tokens than {how}")
    t.expect_close(torch.tensor(float(score), dtype=F64), torch.tensor(expected[1], dtype=F64),
                   what=f"the score of {t.last_call}")


# bos 0, eos 1, one other token: stopping at once scores -1.0, one token more -1.2 (-0.6 a token): the
# highest total wins, not the highest total per token
SHORT_WINS = torch.tensor([[[-5.0, -1.0, -0.6], [-5.0, -5.0, -5.0], [-5.0, -0.6, -0.6]]] * 3, dtype=F64)


@checks.public("seq2seq.beam_search.exhaustive", points=0.25)
def _(t):
    # a beam as wide as every hypothesis is an exhaustive search
    table = log_prob_table(t, 4, 4)
    expect_search(t, t.student.seq2seq.beam_search(table, 0, 1, 4 ** 4), exhaustive_search(table, 0, 1), "an exhaustive search")
    expect_search(t, t.student.seq2seq.beam_search(SHORT_WINS, 0, 1, 3 ** 3), exhaustive_search(SHORT_WINS, 0, 1),
                  "an exhaustive search")


@checks.public("seq2seq.beam_search.greedy", points=0.25)
def _(t):
    table = log_prob_table(t, 5, 6)
    expect_search(t, t.student.seq2seq.beam_search(table, 2, 3, 1), greedy_search(table, 2, 3), "greedy decoding")


# --- corpus_bleu (0.75 points) ---------------------------------------------


def bleu(t, candidates, references, **options):
    got = t.student.seq2seq.corpus_bleu(candidates, references, **options)
    t.expect(isinstance(got, (int, float)) and not isinstance(got, bool),
             f"{t.last_call} returned a {type(got).__name__}, not a float")
    expected = t.reference.seq2seq.corpus_bleu(candidates, references, **options)
    t.expect_close(torch.tensor(got, dtype=F64), torch.tensor(expected, dtype=F64))


@checks.public("seq2seq.corpus_bleu.values", points=0.25)
def _(t):
    cat, mat = [1, 2, 3, 4, 5, 6], [[1, 2, 3, 4, 7, 6], [9, 1, 2, 3, 4, 5, 6, 8]]
    bleu(t, [cat], [mat])
    bleu(t, [cat, [1, 1, 1, 1, 1]], [mat, [[1, 1, 2, 3, 4, 5]]])  # repeated words: clipped counts
    bleu(t, [[1, 2, 3]], [[[1, 2, 3, 4, 5, 6]]], max_n=2)  # short: the brevity penalty
    bleu(t, [[1, 2]], [[[1, 2, 3]]])  # no 3-gram: 0.0


# --- CRF (2 points) --------------------------------------------------------


def crf_inputs(t, n, steps, tags, dtype=F64, scale=1.0, lengths=None):
    emissions = t.randn(n, steps, tags, dtype=dtype, scale=scale)
    lengths = lengths if lengths is not None else torch.full((n,), steps)
    return emissions, t.randint(0, tags, n, steps), lengths, [t.randn(tags, dtype=dtype), t.randn(tags, dtype=dtype),
                                                              t.randn(tags, tags, dtype=dtype)]


def crf_of(code, tags, weights):
    crf = code.tagging.CRF(tags)
    crf.start, crf.end, crf.trans = weights
    return crf


def all_paths(emissions, lengths, weights):
    """Every path's score, by enumeration: ([(N, K^L) scores per sequence], [paths per sequence])."""
    start, end, trans = weights
    scores, paths = [], []
    for row, length in zip(emissions, lengths.tolist()):
        found = list(itertools.product(range(row.shape[-1]), repeat=length))
        index = torch.tensor(found)
        steps = torch.arange(length)
        total = start[index[:, 0]] + end[index[:, -1]] + row[steps, index].sum(dim=1)
        if length > 1:
            total = total + trans[index[:, :-1], index[:, 1:]].sum(dim=1)
        scores.append(total)
        paths.append(found)
    return scores, paths


def brute_nll(emissions, tags, lengths, weights):
    """mean of log Z - score(tags), by enumeration: differentiable, so autograd gives the exact gradients."""
    scores, paths = all_paths(emissions, lengths, weights)
    losses = [torch.logsumexp(s, 0) - s[p.index(tuple(row[:len(p[0])].tolist()))] for s, p, row in zip(scores, paths, tags)]
    return torch.stack(losses).mean()


@checks.public("tagging.CRF.forward", points=0.25)
def _(t):
    emissions, tags, lengths, weights = crf_inputs(t, 3, 4, 3, lengths=torch.tensor([4, 2, 1]))
    t.expect_close(crf_of(t.student, 3, weights).forward(emissions, tags, lengths), brute_nll(emissions, tags, lengths, weights))


def crf_backward(t, n, steps, tags, lengths, dtype=F64):
    """backward against autograd of the brute-force loss: emissions (0 past each length), dstart, dend, dtrans."""
    emissions, gold, lengths, weights = crf_inputs(t, n, steps, tags, dtype, lengths=lengths)
    leaves = [x.double().requires_grad_() for x in [emissions] + weights]
    loss = brute_nll(leaves[0], gold, lengths, leaves[1:])
    loss.backward()
    crf = crf_of(t.student, tags, weights)
    t.expect_close(crf.forward(emissions, gold, lengths), loss.detach(), dtype=dtype)
    call = t.last_call
    t.expect_close(crf.backward(), leaves[0].grad, dtype=dtype, what=f"backward() after {call}")
    for name, leaf in zip(("dstart", "dend", "dtrans"), leaves[1:]):
        expected = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)  # no transition in sequences of 1
        t.expect_close(getattr(crf, name), expected, dtype=dtype, what=f"CRF.{name} after {call}")


@checks.public("tagging.CRF.backward", points=0.25)
def _(t):
    crf_backward(t, 3, 4, 3, torch.tensor([4, 3, 1]))


def crf_inference(t, n, steps, tags, lengths, dtype=F64, scale=1.0):
    """log_partition, marginals and decode against enumeration."""
    emissions, _, lengths, weights = crf_inputs(t, n, steps, tags, dtype, scale, lengths)
    exact = [w.double() for w in weights]
    scores, paths = all_paths(emissions.double(), lengths, exact)
    crf = crf_of(t.student, tags, weights)
    t.expect_close(crf.log_partition(emissions, lengths), torch.stack([torch.logsumexp(s, 0) for s in scores]), dtype=dtype)
    marginals = torch.zeros(n, steps, tags, dtype=F64)
    best = torch.full((n, steps), -1)
    for row, (s, p) in enumerate(zip(scores, paths)):
        index = torch.tensor(p)
        weight = torch.softmax(s, 0)
        for step in range(index.shape[1]):
            marginals[row, step].index_add_(0, index[:, step], weight)
        best[row, :index.shape[1]] = index[int(s.argmax())]
    t.expect_close(crf.marginals(emissions, lengths), marginals, dtype=dtype)
    t.expect_equal(crf.decode(emissions, lengths), best)


@checks.public("tagging.CRF.inference", points=0.5)
def _(t):
    crf_inference(t, 3, 4, 3, torch.tensor([4, 1, 3]))


# --- entity_spans and entity_prf (1 point) ---------------------------------


@checks.public("tagging.entity_spans.iob2", points=0.25)
def _(t):
    for tags in (["B-PER", "I-PER", "O", "B-LOC"], ["O", "I-PER", "I-PER", "B-ORG", "I-ORG", "I-LOC", "B-PER", "B-PER"], []):
        t.expect_equal(t.student.tagging.entity_spans(tags), t.reference.tagging.entity_spans(tags))


# entity_prf is graded on well-formed IOB2 (every I-X continues an X): how malformed tags read is
# entity_spans' to get right, and a mistake there costs entity_spans alone.
@checks.public("tagging.entity_prf.values", points=0.25)
def _(t):
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["O"]]
    for y_pred in ([["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["O"]],  # all found
                   [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG"], ["B-MISC"]],  # spans too short, too long, extra
                   [["B-LOC", "I-LOC", "O", "B-LOC"], ["O", "O"], ["O"]],  # the wrong type counts as a miss
                   [["O", "O", "O", "O"], ["O", "O"], ["O"]]):  # nothing found: 0/0 precision is 0.0
        got = t.student.tagging.entity_prf(y_true, y_pred)
        t.expect_close(torch.tensor(got, dtype=F64), torch.tensor(t.reference.tagging.entity_prf(y_true, y_pred), dtype=F64))
