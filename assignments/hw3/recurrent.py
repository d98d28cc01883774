"""hw3, `recurrent.py`: embeddings, recurrent cells, a GRU over variable-length batches, and a
text classifier you train yourself.

Weights use torch's layout (`y = x @ W.T + b`, `W: (out, in)`), with the gates stacked in
torch's order, so they copy to and from `torch.nn.GRUCell`, `LSTMCell` and `GRU` as they are.
`backward` takes one gradient per output of the last `forward` and returns one per
floating-point input, in order; parameter gradients are stored as `d<name>`.
"""

import math

import torch


class Embedding:
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        self.weight = torch.randn(num_embeddings, embedding_dim)
        self.padding_idx = padding_idx
        if padding_idx is not None:
            self.weight[padding_idx] = 0.0
        self.dweight = None

    def forward(self, idx):
        """(...) int64 -> (..., D); a row of weight per index."""
        raise NotImplementedError("Embedding.forward: write your solution here")

    def backward(self, grad_out):
        """(..., D) -> None (indices have no gradient); sets dweight (V, D)."""
        raise NotImplementedError("Embedding.backward: write your solution here")

    def parameters(self):
        return [self.weight]

    def gradients(self):
        return [self.dweight]


class _Recurrent:
    """What the recurrent layers share: weights with `gates` row blocks, uniform in +-1/sqrt(hidden) as
    torch.nn's, and the parameter lists."""

    gates = 1

    def __init__(self, input_size, hidden_size):
        rows, bound = self.gates * hidden_size, 1 / math.sqrt(hidden_size)
        self.weight_ih = (2 * torch.rand(rows, input_size) - 1) * bound
        self.weight_hh = (2 * torch.rand(rows, hidden_size) - 1) * bound
        self.bias_ih = (2 * torch.rand(rows) - 1) * bound
        self.bias_hh = (2 * torch.rand(rows) - 1) * bound

    def parameters(self):
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def gradients(self):
        return [self.dweight_ih, self.dweight_hh, self.dbias_ih, self.dbias_hh]


class RNNCell(_Recurrent):
    def forward(self, x, h):
        """(N, I), (N, H) -> (N, H); tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
        raise NotImplementedError("RNNCell.forward: write your solution here")

    def backward(self, grad_h):
        """(N, H) -> (dx (N, I), dh (N, H)); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        raise NotImplementedError("RNNCell.backward: write your solution here")




class GRUCell(_Recurrent):
    gates = 3  # row blocks [r; z; n]

    def forward(self, x, h):
        """(N, I), (N, H) -> (N, H); r, z, n as torch.nn.GRUCell, h' = (1 - z) n + z h."""
        raise NotImplementedError("GRUCell.forward: write your solution here")

    def backward(self, grad_h):
        """(N, H) -> (dx (N, I), dh (N, H)); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        raise NotImplementedError("GRUCell.backward: write your solution here")


class LSTMCell(_Recurrent):
    gates = 4  # row blocks [i; f; g; o]

    def forward(self, x, h, c):
        """(N, I), (N, H), (N, H) -> (h', c'); gates i, f, g, o as torch.nn.LSTMCell."""
        raise NotImplementedError("LSTMCell.forward: write your solution here")

    def backward(self, grad_h, grad_c):
        """(N, H), (N, H) -> (dx, dh, dc); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        raise NotImplementedError("LSTMCell.backward: write your solution here")


class GRU(_Recurrent):
    gates = 3  # GRUCell's weights, applied at every step

    def forward(self, x, h0, lengths):
        """(N, T, I), (N, H), (N,) -> (out (N, T, H), h_n (N, H)); a sequence stops at its length:
        past it, out is 0 and the state is carried to h_n unchanged."""
        raise NotImplementedError("GRU.forward: write your solution here")

    def backward(self, grad_out, grad_h_n):
        """(N, T, H), (N, H) -> (dx (N, T, I), dh0 (N, H)); backprop through time, parameter
        gradients summed over the valid steps, dx 0 at padded positions."""
        raise NotImplementedError("GRU.backward: write your solution here")


def train_text_classifier(tokens, lengths, labels, vocab_size, num_classes, seed, budget_s):
    """(N, T) int64 (0 = padding), (N,), (N,) int64 -> a model with predict(tokens, lengths).
    Any torch API goes here; a fixed number of steps, so that a regrade trains the same model."""
    raise NotImplementedError("train_text_classifier: write your solution here")
