"""The hw3 reference solution against torch, in this process, and the sentiment data it trains on.

recurrent.py is loaded by path; torch.nn's layers and autograd compute the expected values here.
"""

from pathlib import Path

import pytest
import torch

from autograder.datasets import sentiment
from autograder.release.release import make_stub
from reference_helpers import assert_matches, assert_regions_well_placed, leaf, load_module, untouched

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "hw3" / "recurrent.py"
UNITS = ["Embedding", "RNNCell", "GRUCell", "LSTMCell", "GRU", "train_text_classifier"]
F64 = torch.float64


@pytest.fixture(scope="module")
def rec():
    return load_module(REFERENCE, "_hw3_reference_recurrent")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(31)


def randn(gen, *shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=F64) * scale


def test_every_unit_exists_and_the_stubs_raise(rec, tmp_path):
    assert not [unit for unit in UNITS if not callable(getattr(rec, unit, None))]
    source = REFERENCE.read_text()
    assert assert_regions_well_placed(source) == 11
    (tmp_path / "recurrent.py").write_text(make_stub(source, "recurrent.py"))
    stub = load_module(tmp_path / "recurrent.py", "_hw3_stub_recurrent")
    with pytest.raises(NotImplementedError):
        stub.GRUCell(2, 3).forward(torch.zeros(1, 2), torch.zeros(1, 3))
    assert "Classifier" not in make_stub(source, "recurrent.py")  # the trained model is part of the answer


def copied(mine, module, names=("weight_ih", "weight_hh", "bias_ih", "bias_hh"), suffix=""):
    for name in names:
        setattr(mine, name, getattr(module, name + suffix).detach().clone())
    return mine


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("scale", [1.0, 500.0])  # 500: pre-activations near 1e3, saturated gates
def test_cells_match_torch_forward_and_backward(rec, gen, kind, scale):
    module = getattr(torch.nn, kind)(3, 4).to(F64)
    mine = copied(getattr(rec, kind)(3, 4), module)
    x, h = leaf(randn(gen, 5, 3, scale=scale)), leaf(randn(gen, 5, 4))
    inputs = [x, h] + ([leaf(randn(gen, 5, 4))] if kind == "LSTMCell" else [])
    expected = module(x, tuple(inputs[1:])) if kind == "LSTMCell" else module(x, h)
    expected = expected if isinstance(expected, tuple) else (expected,)
    upstream = [randn(gen, 5, 4) for _ in expected]
    torch.autograd.backward(expected, upstream)
    with untouched(*[i.detach() for i in inputs]):
        got = mine.forward(*[i.detach() for i in inputs])
        got = got if isinstance(got, tuple) else (got,)
        for g, e in zip(got, expected):
            assert torch.isfinite(g).all()
            assert_matches(g, e)
        for g, i in zip(mine.backward(*upstream), inputs):
            assert_matches(g, i.grad)
    for g, p in zip(mine.gradients(), (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)):
        assert_matches(g, p.grad)


def test_gru_matches_torch_on_a_packed_batch(rec, gen):
    module = torch.nn.GRU(3, 4, batch_first=True).to(F64)
    mine = copied(rec.GRU(3, 4), module, suffix="_l0")
    x, h0, lengths = leaf(randn(gen, 4, 7, 3)), leaf(randn(gen, 4, 4)), torch.tensor([7, 3, 1, 5])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, h_n = module(packed, h0[None])
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=7)
    grad_out, grad_h_n = randn(gen, 4, 7, 4), randn(gen, 4, 4)
    torch.autograd.backward([out, h_n[0]], [grad_out, grad_h_n])
    got_out, got_h_n = mine.forward(x.detach(), h0.detach(), lengths)
    assert_matches(got_out, out)
    assert_matches(got_h_n, h_n[0])
    dx, dh0 = mine.backward(grad_out, grad_h_n)
    assert_matches(dx, x.grad)
    assert_matches(dh0, h0.grad)
    assert (dx[torch.arange(7)[None, :] >= lengths[:, None]] == 0).all()  # exactly, not nearly
    for g, p in zip(mine.gradients(), (module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0)):
        assert_matches(g, p.grad)


def test_embedding_sums_repeats_and_keeps_padding_still(rec, gen):
    mine = rec.Embedding(6, 3, padding_idx=0)
    weight = leaf(mine.weight.double())
    mine.weight = weight.detach().clone()
    idx = torch.tensor([[1, 1, 0], [4, 1, 0]])
    upstream = randn(gen, 2, 3, 3)
    torch.nn.functional.embedding(idx, weight, padding_idx=0).backward(upstream)
    assert_matches(mine.forward(idx), weight[idx])
    assert mine.backward(upstream) is None
    assert_matches(mine.dweight, weight.grad)
    assert (mine.dweight[0] == 0).all()


# --- the sentiment data -----------------------------------------------------------


def test_sentiment_data_are_a_function_of_the_seed():
    a, b, c = sentiment.generate(5, 300, 100), sentiment.generate(5, 300, 100), sentiment.generate(6, 300, 100)
    assert torch.equal(a.train["tokens"], b.train["tokens"]) and torch.equal(a.held_out_labels, b.held_out_labels)
    assert not torch.equal(a.train["tokens"], c.train["tokens"])
    assert not torch.equal(a.lexicon.positive, c.lexicon.positive)


def test_each_label_is_the_sign_of_its_sentiment_words_negations_flipping_them():
    """Read back from the tokens alone, with the lexicon: 1-3 sentiment words at least 2 apart, a
    negation right before one flips it, the label is the sign of the sum, padding after the length."""
    data = sentiment.generate(11, 2000, 0)
    lexicon, tokens, lengths = data.lexicon, data.train["tokens"], data.train["lengths"]
    polarity = {int(w): 1 for w in lexicon.positive} | {int(w): -1 for w in lexicon.negative}
    negations = {int(w) for w in lexicon.negation}
    words = negated = 0
    for row, length, label in zip(tokens.tolist(), lengths.tolist(), data.train_labels.tolist()):
        assert 8 <= length <= 40 and all(w == 0 for w in row[length:]) and all(w != 0 for w in row[:length])
        places = [i for i, w in enumerate(row) if w in polarity]
        assert 1 <= len(places) <= 3 and all(b - a >= 2 for a, b in zip(places, places[1:]))
        assert all(i + 1 in places for i, w in enumerate(row) if w in negations)  # only ever before one
        total = sum(polarity[row[i]] * (-1 if row[i - 1] in negations else 1) for i in places)
        assert total != 0 and label == int(total > 0)
        words, negated = words + len(places), negated + sum(row[i - 1] in negations for i in places)
    assert 0.45 < data.train_labels.double().mean() < 0.55
    assert 0.31 < negated / words < 0.39  # 0.35 of the sentiment words, less the ties drawn again


# --- seq2seq.py ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s2s():
    return load_module(ROOT / "reference" / "hw3" / "seq2seq.py", "_hw3_reference_seq2seq")


@pytest.fixture(scope="module")
def tag():
    return load_module(ROOT / "reference" / "hw3" / "tagging.py", "_hw3_reference_tagging")


@pytest.mark.parametrize("ignore_index, smoothing, scale", [(-100, 0.0, 1.0), (0, 0.1, 1.0), (2, 0.3, 500.0)])
def test_sequence_cross_entropy_matches_torch(s2s, gen, ignore_index, smoothing, scale):
    logits, target = leaf(randn(gen, 3, 4, 5, scale=scale)), torch.randint(0, 5, (3, 4), generator=gen)
    target[0, 0] = 1
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), target.reshape(-1), ignore_index=ignore_index,
                                                 label_smoothing=smoothing)
    expected.backward()
    mine = s2s.SequenceCrossEntropy(ignore_index, smoothing)
    assert_matches(mine.forward(logits.detach(), target), expected)
    assert_matches(mine.backward(), logits.grad)


def test_attention_matches_torch(s2s, gen):
    q, k, v = leaf(randn(gen, 2, 3, 4, 5)), leaf(randn(gen, 2, 3, 6, 5)), leaf(randn(gen, 2, 3, 6, 7))
    mask = torch.rand(4, 6, generator=gen) < 0.5
    mask[:, 0] = False
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=~mask)
    upstream = randn(gen, *expected.shape)
    expected.backward(upstream)
    mine = s2s.ScaledDotProductAttention()
    assert_matches(mine.forward(q.detach(), k.detach(), v.detach(), mask), expected)
    for got, x in zip(mine.backward(upstream), (q, k, v)):
        assert_matches(got, x.grad)


def test_multi_head_attention_matches_torch(s2s, gen):
    E, H = 8, 4
    module = torch.nn.MultiheadAttention(E, H, batch_first=True).to(F64)
    torch.nn.init.normal_(module.in_proj_bias)
    mine = s2s.MultiHeadAttention(E, H)
    W, b = module.in_proj_weight.detach(), module.in_proj_bias.detach()
    mine.W_q, mine.W_k, mine.W_v, mine.W_o = W[:E], W[E:2 * E], W[2 * E:], module.out_proj.weight.detach()
    mine.b_q, mine.b_k, mine.b_v, mine.b_o = b[:E], b[E:2 * E], b[2 * E:], module.out_proj.bias.detach()
    x, y = leaf(randn(gen, 2, 3, E)), leaf(randn(gen, 2, 5, E))
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    causal = torch.ones(3, 5, dtype=torch.bool).triu(1)
    expected, _ = module(x, y, y, key_padding_mask=padding, attn_mask=causal)
    upstream = randn(gen, 2, 3, E)
    expected.backward(upstream)
    assert_matches(mine.forward(x.detach(), y.detach(), y.detach(), padding, causal), expected)
    dx, dk, dv = mine.backward(upstream)
    assert_matches(dx, x.grad)
    assert_matches(dk + dv, y.grad)  # key and value are the same tensor: its gradient is their sum
    grads = mine.gradients()
    assert_matches(torch.cat([grads[0], grads[2], grads[4]]), module.in_proj_weight.grad)
    assert_matches(torch.cat([grads[1], grads[3], grads[5]]), module.in_proj_bias.grad)
    assert_matches(grads[6], module.out_proj.weight.grad)


def test_beam_search_is_exhaustive_when_wide_and_greedy_at_one(s2s):
    sys_path = str(ROOT)
    import sys

    if sys_path not in sys.path:
        sys.path.insert(0, sys_path)
    checks = load_module(ROOT / "reference" / "hw3" / "public_checks.py", "_hw3_public_checks")
    for seed in range(30):
        table = torch.log_softmax(torch.randn(4, 4, 4, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2, -1)
        tokens, score = s2s.beam_search(table, 0, 1, 4 ** 4)
        best = checks.exhaustive_search(table, 0, 1)
        assert tokens == best[0] and score == pytest.approx(best[1], abs=1e-12)
        tokens, score = s2s.beam_search(table, 0, 1, 1)
        greedy = checks.greedy_search(table, 0, 1)
        assert tokens == greedy[0] and score == pytest.approx(greedy[1], abs=1e-12)
    assert s2s.beam_search(checks.SHORT_WINS, 0, 1, 27) == ([], -1.0)


def test_corpus_bleu_agrees_with_nltk(s2s):
    """Where every candidate has 4-grams (nltk counts a sentence without n-grams as 1 in a precision's
    denominator; the contract counts its n-grams, 0): the same score, 0.0 where a precision is 0."""
    bleu_score = pytest.importorskip("nltk.translate.bleu_score", reason="nltk (a test dependency) is not installed")
    generator = torch.Generator().manual_seed(3)
    compared = 0
    for _ in range(200):
        draw = lambda: torch.randint(0, 4, (int(torch.randint(3, 12, (1,), generator=generator)),), generator=generator).tolist()  # noqa: E731
        candidates = [draw() + [0] for _ in range(3)]  # 4 tokens at least
        references = [[draw() for _ in range(int(torch.randint(1, 4, (1,), generator=generator)))] for _ in range(3)]
        ours = s2s.corpus_bleu(candidates, references)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nltk warns where a precision is 0
            theirs = bleu_score.corpus_bleu(references, candidates)
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
        compared += ours > 0
    assert compared > 50


def test_crf_matches_enumeration(tag, gen):
    import itertools

    N, T, K = 3, 4, 3
    emissions, lengths = leaf(randn(gen, N, T, K)), torch.tensor([4, 2, 1])
    tags = torch.randint(0, K, (N, T), generator=gen)
    crf = tag.CRF(K)
    weights = [leaf(randn(gen, K)), leaf(randn(gen, K)), leaf(randn(gen, K, K))]
    crf.start, crf.end, crf.trans = [w.detach() for w in weights]
    losses, best, marginals = [], [], torch.zeros(N, T, K, dtype=F64)
    for n, length in enumerate(lengths.tolist()):
        paths = list(itertools.product(range(K), repeat=length))
        scores = torch.stack([weights[0][p[0]] + weights[1][p[-1]] + sum(emissions[n, t, p[t]] for t in range(length))
                              + sum(weights[2][p[t - 1], p[t]] for t in range(1, length)) for p in paths])
        losses.append(torch.logsumexp(scores, 0) - scores[paths.index(tuple(tags[n, :length].tolist()))])
        best.append(list(paths[int(scores.argmax())]) + [-1] * (T - length))
        for p, weight in zip(paths, torch.softmax(scores.detach(), 0)):
            for t in range(length):
                marginals[n, t, p[t]] += weight
    loss = torch.stack(losses).mean()
    loss.backward()
    assert_matches(crf.forward(emissions.detach(), tags, lengths), loss)
    assert_matches(crf.backward(), emissions.grad)
    for got, w in zip(crf.gradients(), weights):
        assert_matches(got, w.grad)
    assert_matches(crf.marginals(emissions.detach(), lengths), marginals)
    assert crf.decode(emissions.detach(), lengths).tolist() == best


def test_crf_is_finite_for_large_scores_and_long_sequences(tag, gen):
    crf = tag.CRF(4)
    crf.start, crf.end, crf.trans = randn(gen, 4), randn(gen, 4), randn(gen, 4, 4)
    emissions, lengths = randn(gen, 2, 256, 4, scale=1000.0), torch.tensor([256, 17])
    assert torch.isfinite(crf.log_partition(emissions, lengths)).all()
    marginals = crf.marginals(emissions, lengths)
    assert torch.isfinite(marginals).all() and torch.allclose(marginals[1, :17].sum(-1), torch.ones(17, dtype=F64))


@pytest.mark.parametrize("tags, spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [["PER", 0, 2], ["LOC", 3, 4]]),
    (["I-PER", "I-PER", "B-ORG", "I-LOC"], [["ORG", 2, 3]]),  # I- that continues nothing starts nothing
    (["B-PER", "B-PER", "I-PER"], [["PER", 0, 1], ["PER", 1, 3]]),
    ([], []),
])
def test_entity_spans_are_strict_iob2(tag, tags, spans):
    assert tag.entity_spans(tags) == spans


def test_entity_prf_is_micro_over_exact_spans(tag):
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    assert tag.entity_prf(y_true, y_true) == [1.0, 1.0, 1.0]
    assert tag.entity_prf(y_true, [["B-PER", "O", "O", "B-LOC"], ["O"]]) == [0.5, 1 / 3, 0.4]
    assert tag.entity_prf(y_true, [["O"] * 4, ["O"]]) == [0.0, 0.0, 0.0]
