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
    MHA_PARAMETERS,
    attention_inputs,
    bleu,
    cell_backward,
    cell_forward,
    crf_backward,
    crf_inference,
    crf_inputs,
    crf_of,
    embedding_backward,
    exhaustive_search,
    expect_search,
    gru_backward,
    gru_pair,
    log_prob_table,
    mha,
    recurrent_weights,
    sdpa,
    sentiment_task,
    sequence_xent,
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


# --- SequenceCrossEntropy ---------------------------------------------------


@checks.hidden("seq2seq.SequenceCrossEntropy.smoothing", points=0.25)
def _(t):
    n, steps, vocab = dims(t, 3, 2, 7)
    sequence_xent(t, n, steps, vocab, ignore_index=vocab - 1, label_smoothing=0.1 * int(t.randint(1, 4, 1)))


@checks.hidden("seq2seq.SequenceCrossEntropy.stable", points=0.25)
def _(t):
    # logits up to ~1e3, float64 and float32
    n, steps, vocab = dims(t, 3)
    for dtype in (F64, F32):
        sequence_xent(t, n, steps, vocab, dtype=dtype, scale=400.0)


# --- ScaledDotProductAttention ------------------------------------------------


@checks.hidden("seq2seq.ScaledDotProductAttention.gradcheck", points=0.25)
def _(t):
    tq, tk, d = dims(t, 3, 2, 5)
    q, k, v, mask = attention_inputs(t, (2,), tq, tk, d, d)

    def forward_of(layer):
        return lambda q, k, v: layer.forward(q, k, v, mask)

    def backward_of(layer):
        return lambda g: dict(zip(("q", "k", "v"), layer.backward(g)))

    mine, ref = t.student.seq2seq.ScaledDotProductAttention(), t.reference.seq2seq.ScaledDotProductAttention()
    t.gradcheck(forward_of(mine), {"q": q, "k": k, "v": v}, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


@checks.hidden("seq2seq.ScaledDotProductAttention.shapes", points=0.25)
def _(t):
    # several batch dimensions, no mask, float32, scores up to ~1e3
    b1, b2, tq, tk, d, dv = dims(t, 6, 1, 6)
    sdpa(t, *attention_inputs(t, (b1, b2), tq, tk, d, dv, dtype=F32, masked=False))
    sdpa(t, *attention_inputs(t, (b1,), tq, tk, d, dv, scale=300.0))


# --- MultiHeadAttention ----------------------------------------------------------


@checks.hidden("seq2seq.MultiHeadAttention.shapes", points=0.25)
def _(t):
    heads, per_head, n, tq, tk = dims(t, 5, 1, 5)
    mha(t, n, tq, tk, heads * per_head, heads, dtype=F32)
    mha(t, n, tq, tq, heads * per_head, heads, masks=False)


@checks.hidden("seq2seq.MultiHeadAttention.gradcheck", points=0.25)
def _(t):
    n, tq, tk = dims(t, 3, 2, 4)
    E, heads = 4, 2
    inputs = {"query": t.randn(n, tq, E), "key": t.randn(n, tk, E), "value": t.randn(n, tk, E)}
    inputs.update({name: t.randn(E, E, scale=0.5) for name in ("W_q", "W_k", "W_v", "W_o")})
    inputs.update({name: t.randn(E, scale=0.1) for name in ("b_q", "b_k", "b_v", "b_o")})
    key_padding = torch.zeros(n, tk, dtype=torch.bool)
    key_padding[0, tk - 1] = True

    def forward_of(layer):
        def forward(query, key, value, **weights):
            for name, weight in weights.items():
                setattr(layer, name, weight)
            return layer.forward(query, key, value, key_padding)

        return forward

    def backward_of(layer):
        def backward(g):
            dq, dk, dv = layer.backward(g)
            return {"query": dq, "key": dk, "value": dv, **{name: getattr(layer, f"d{name}") for name in MHA_PARAMETERS}}

        return backward

    mine, ref = t.student.seq2seq.MultiHeadAttention(E, heads), t.reference.seq2seq.MultiHeadAttention(E, heads)
    t.gradcheck(forward_of(mine), inputs, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


TIMED_MHA = {"n": 32, "t": 128, "e": 256, "heads": 8}
TIMED_LIMITS = {"timeout": 180, "call_timeout": 10}


def mha_timed_inputs(t):
    def draw():
        n, steps, e = TIMED_MHA["n"], TIMED_MHA["t"], TIMED_MHA["e"]
        x = t.randn(n, steps, e, dtype=F32)
        weights = {name: t.randn(e, e, dtype=F32, scale=e ** -0.5) for name in ("W_q", "W_k", "W_v", "W_o")}
        return {"x": x, "upstream": t.randn(n, steps, e, dtype=F32), **weights}

    return draw


def mha_layer(code, x, upstream, W_q, W_k, W_v, W_o):
    layer = code.seq2seq.MultiHeadAttention(TIMED_MHA["e"], TIMED_MHA["heads"])
    layer.W_q, layer.W_k, layer.W_v, layer.W_o = W_q, W_k, W_v, W_o
    return {"layer": layer, "x": x, "upstream": upstream}


@checks.hidden("seq2seq.MultiHeadAttention.timed", points=0.5, **TIMED_LIMITS)
def _(t):
    # self-attention forward and backward at N=32, T=128, E=256, H=8: a loop over batch or heads is too slow
    t.expect_fast(
        lambda layer, x, upstream: (layer.forward(x, x, x), layer.backward(upstream))[1],
        mha_timed_inputs(t),
        mha_layer,
        what="MultiHeadAttention forward and backward",
        repetitions=3,
    )


# --- beam_search ---------------------------------------------------------------------


@checks.hidden("seq2seq.beam_search.random", points=0.25)
def _(t):
    # random tables: beams of every width against the reference; wide ones against exhaustive search;
    # a table of equal scores, where only the tie order decides
    steps, vocab = dims(t, 2, 3, 5)
    table = log_prob_table(t, steps, vocab)
    for beam in (1, 2, 3, vocab):
        expect_search(t, t.student.seq2seq.beam_search(table, 0, 1, beam),
                      t.reference.seq2seq.beam_search(table, 0, 1, beam), "the reference's beam search")
    expect_search(t, t.student.seq2seq.beam_search(table, 0, 1, vocab ** steps), exhaustive_search(table, 0, 1),
                  "an exhaustive search")
    flat = torch.full((steps, vocab, vocab), -float(vocab), dtype=F64)
    expect_search(t, t.student.seq2seq.beam_search(flat, 0, 1, 2),
                  t.reference.seq2seq.beam_search(flat, 0, 1, 2), "the reference's beam search (ties everywhere)")


# --- corpus_bleu --------------------------------------------------------------------


def corpus(t, sentences, vocab, longest):
    """sentences random candidates, each with 1-3 random references; small vocabularies share n-grams."""
    lengths = t.randint(1, longest + 1, sentences, 4).tolist()
    counts = t.randint(1, 4, sentences).tolist()
    candidates = [t.randint(0, vocab, row[0]).tolist() for row in lengths]
    references = [[t.randint(0, vocab, n).tolist() for n in row[1:1 + count]] for row, count in zip(lengths, counts)]
    return candidates, references


@checks.hidden("seq2seq.corpus_bleu.random", points=0.25)
def _(t):
    for vocab, longest, max_n in ((3, 12, 4), (4, 8, 2), (2, 20, 4)):
        bleu(t, *corpus(t, 6, vocab, longest), max_n=max_n)


@checks.hidden("seq2seq.corpus_bleu.edges", points=0.25)
def _(t):
    bleu(t, [[]], [[[1, 2]]])  # nothing proposed: 0.0
    bleu(t, [[5, 5, 5, 5]], [[[5, 1, 5, 2], [5, 5, 3, 4]]], max_n=1)  # clipped by the reference with most 5s
    bleu(t, [[1, 2, 3, 4], [1, 2]], [[[1, 2, 3, 4, 5]], [[1, 2, 9]]], max_n=2)  # r from the closest references
    bleu(t, [[1, 2, 3, 4, 5, 6]], [[[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5]]])  # equally close: the shorter one


# --- CRF ------------------------------------------------------------------------------


@checks.hidden("tagging.CRF.lengths", points=0.25)
def _(t):
    n, steps, tags = dims(t, 3, 2, 5)
    lengths = t.randint(1, steps + 1, n)
    crf_backward(t, n, steps, tags, lengths, F32)
    crf_inference(t, n, steps, tags, lengths, F32)


@checks.hidden("tagging.CRF.gradcheck", points=0.25)
def _(t):
    n, steps, tags = dims(t, 3, 2, 4)
    emissions, gold, _, weights = crf_inputs(t, n, steps, tags)
    lengths = t.randint(1, steps + 1, n)
    points = {"emissions": emissions, "start": weights[0], "end": weights[1], "trans": weights[2]}

    def forward_of(crf):
        def forward(emissions, start, end, trans):
            crf.start, crf.end, crf.trans = start, end, trans
            return crf.forward(emissions, gold, lengths)

        return forward

    def backward_of(crf):
        def backward(g):
            demissions = crf.backward()
            return {"emissions": demissions * g, "start": crf.dstart * g, "end": crf.dend * g, "trans": crf.dtrans * g}

        return backward

    mine, ref = t.student.tagging.CRF(tags), t.reference.tagging.CRF(tags)
    t.gradcheck(forward_of(mine), points, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


@checks.hidden("tagging.CRF.stable", points=0.25)
def _(t):
    # scores up to ~1e3 and 256 steps: log space throughout; against the reference
    n, tags = dims(t, 2, 2, 6)
    lengths = t.randint(1, 257, n)
    lengths[0] = 256
    emissions, gold, lengths, weights = crf_inputs(t, n, 256, tags, scale=300.0, lengths=lengths)
    mine, ref = crf_of(t.student, tags, weights), crf_of(t.reference, tags, weights)
    t.expect_close(mine.log_partition(emissions, lengths), ref.log_partition(emissions, lengths))
    t.expect_close(mine.marginals(emissions, lengths), ref.marginals(emissions, lengths))
    t.expect_close(mine.forward(emissions, gold, lengths), ref.forward(emissions, gold, lengths))


@checks.hidden("tagging.CRF.decode", points=0.25)
def _(t):
    n, steps, tags = dims(t, 3, 3, 9)
    lengths = t.randint(1, steps + 1, n)
    emissions, _, lengths, weights = crf_inputs(t, n, steps, tags, scale=3.0, lengths=lengths)
    t.expect_equal(crf_of(t.student, tags, weights).decode(emissions, lengths),
                   crf_of(t.reference, tags, weights).decode(emissions, lengths))


# --- entity_spans and entity_prf ------------------------------------------------------


def random_tags(t, count, length):
    """count tag sequences of IOB2 tags drawn at random: every malformed case appears (I- after O, type changes)."""
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    return [[names[i] for i in t.randint(0, len(names), length).tolist()] for _ in range(count)]


@checks.hidden("tagging.entity_spans.random", points=0.25)
def _(t):
    for tags in random_tags(t, 8, int(t.randint(5, 15, 1))):
        t.expect_equal(t.student.tagging.entity_spans(tags), t.reference.tagging.entity_spans(tags))


def well_formed_tags(t, count, length):
    """count IOB2 sequences in which every I-X continues an X: entities of random types and lengths."""
    sequences = []
    for _ in range(count):
        tags, kinds = [], t.randint(0, 4, length).tolist()
        for position, kind in enumerate(kinds):
            name = ["PER", "LOC", "ORG"][kind % 3]
            if kind == 3:
                tags.append("O")
            elif tags and tags[-1] != "O" and tags[-1][2:] == name and position % 2:
                tags.append(f"I-{name}")
            else:
                tags.append(f"B-{name}")
        sequences.append(tags)
    return sequences


@checks.hidden("tagging.entity_prf.random", points=0.25)
def _(t):
    length = int(t.randint(5, 12, 1))
    y_true = well_formed_tags(t, 6, length)
    for y_pred in (well_formed_tags(t, 6, length), [list(tags) for tags in y_true], [["O"] * length] * 6):
        got = t.student.tagging.entity_prf(y_true, y_pred)
        t.expect_close(torch.tensor(got, dtype=F64), torch.tensor(t.reference.tagging.entity_prf(y_true, y_pred), dtype=F64))
