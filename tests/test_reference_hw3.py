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
