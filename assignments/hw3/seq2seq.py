"""hw3, `seq2seq.py`: what a translation model is trained with and decodes with.

Sequence cross-entropy (with padding ignored and label smoothing), scaled dot-product and
multi-head attention with their backward passes, beam search over a first-order decoder, and
corpus BLEU. `backward` takes one gradient per output of the last `forward` and returns one
per floating-point input, in order; parameter gradients are stored as `d<name>`.
"""

import math
from collections import Counter

import torch


class SequenceCrossEntropy:
    def __init__(self, ignore_index=-100, label_smoothing=0.0):
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        """(N, T, V), (N, T) int64 -> 0-dim; mean over the positions whose target is not ignore_index."""
        raise NotImplementedError("SequenceCrossEntropy.forward: write your solution here")

    def backward(self):
        """() -> (N, T, V); (softmax - smoothed target) / count, 0 at ignored positions."""
        raise NotImplementedError("SequenceCrossEntropy.backward: write your solution here")


class ScaledDotProductAttention:
    def forward(self, q, k, v, mask=None):
        """(B..., Tq, d), (B..., Tk, d), (B..., Tk, dv), mask True = blocked -> (B..., Tq, dv)."""
        raise NotImplementedError("ScaledDotProductAttention.forward: write your solution here")

    def backward(self, grad_out):
        """(B..., Tq, dv) -> (dq, dk, dv)."""
        raise NotImplementedError("ScaledDotProductAttention.backward: write your solution here")


class MultiHeadAttention:
    def __init__(self, embed_dim, num_heads):
        assert embed_dim % num_heads == 0, "embed_dim must be a multiple of num_heads"
        self.num_heads = num_heads
        bound = 1 / math.sqrt(embed_dim)
        for name in ("q", "k", "v", "o"):
            setattr(self, f"W_{name}", (2 * torch.rand(embed_dim, embed_dim) - 1) * bound)
            setattr(self, f"b_{name}", torch.zeros(embed_dim))

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        """(N, Tq, E), (N, Tk, E), (N, Tk, E), (N, Tk) bool, (Tq, Tk) bool -> (N, Tq, E)."""
        raise NotImplementedError("MultiHeadAttention.forward: write your solution here")

    def backward(self, grad_out):
        """(N, Tq, E) -> (dquery, dkey, dvalue); sets dW_q, db_q, ..., dW_o, db_o."""
        raise NotImplementedError("MultiHeadAttention.backward: write your solution here")

    def parameters(self):
        return [self.W_q, self.b_q, self.W_k, self.b_k, self.W_v, self.b_v, self.W_o, self.b_o]

    def gradients(self):
        return [self.dW_q, self.db_q, self.dW_k, self.db_k, self.dW_v, self.db_v, self.dW_o, self.db_o]


def beam_search(step_log_probs, bos, eos, beam_size):
    """(T, V, V) log p(y_t | y_{t-1}), bos, eos, beam size -> (tokens without bos and eos, total log-prob)."""
    raise NotImplementedError("beam_search: write your solution here")


def corpus_bleu(candidates, references, max_n=4):
    """list of token lists, list of lists of reference token lists -> BLEU in [0, 1] (Papineni et al., no smoothing)."""
    raise NotImplementedError("corpus_bleu: write your solution here")
