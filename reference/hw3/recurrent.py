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
        # BEGIN SOLUTION
        self.idx = idx
        return self.weight[idx]
        # END SOLUTION

    def backward(self, grad_out):
        """(..., D) -> None (indices have no gradient); sets dweight (V, D)."""
        # BEGIN SOLUTION
        self.dweight = torch.zeros_like(self.weight)
        # a word used twice gets both gradients: index_add_ sums repeats, dweight[idx] += would not
        self.dweight.index_add_(0, self.idx.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1]))
        if self.padding_idx is not None:
            self.dweight[self.padding_idx] = 0.0  # padding is not a word: it never learns
        return None
        # END SOLUTION

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
        # BEGIN SOLUTION
        self.x, self.h = x, h
        self.h_new = torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)
        return self.h_new
        # END SOLUTION

    def backward(self, grad_h):
        """(N, H) -> (dx (N, I), dh (N, H)); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        # BEGIN SOLUTION
        da = grad_h * (1 - self.h_new**2)  # through tanh: tanh' = 1 - tanh^2
        self.dweight_ih, self.dweight_hh = da.T @ self.x, da.T @ self.h
        self.dbias_ih = self.dbias_hh = da.sum(dim=0)
        return da @ self.weight_ih, da @ self.weight_hh
        # END SOLUTION




class GRUCell(_Recurrent):
    gates = 3  # row blocks [r; z; n]

    def forward(self, x, h):
        """(N, I), (N, H) -> (N, H); r, z, n as torch.nn.GRUCell, h' = (1 - z) n + z h."""
        # BEGIN SOLUTION
        gi = x @ self.weight_ih.T + self.bias_ih  # (N, 3H): the input's share of r, z, n
        gh = h @ self.weight_hh.T + self.bias_hh  # (N, 3H): the state's share
        gi_r, gi_z, gi_n = gi.chunk(3, dim=1)
        gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
        r = torch.sigmoid(gi_r + gh_r)  # reset gate: how much of the state the candidate sees
        z = torch.sigmoid(gi_z + gh_z)  # update gate: how much of the state is kept
        n = torch.tanh(gi_n + r * gh_n)  # candidate state
        self.cache = (x, h, r, z, n, gh_n)
        return (1 - z) * n + z * h
        # END SOLUTION

    def backward(self, grad_h):
        """(N, H) -> (dx (N, I), dh (N, H)); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        # BEGIN SOLUTION
        x, h, r, z, n, gh_n = self.cache
        dn_pre = grad_h * (1 - z) * (1 - n**2)  # through h' = (1 - z) n + z h, then tanh
        dz_pre = grad_h * (h - n) * z * (1 - z)
        dr_pre = dn_pre * gh_n * r * (1 - r)  # r scales the state's share of n only
        dgi = torch.cat([dr_pre, dz_pre, dn_pre], dim=1)
        dgh = torch.cat([dr_pre, dz_pre, dn_pre * r], dim=1)
        self.dweight_ih, self.dweight_hh = dgi.T @ x, dgh.T @ h
        self.dbias_ih, self.dbias_hh = dgi.sum(dim=0), dgh.sum(dim=0)
        return dgi @ self.weight_ih, dgh @ self.weight_hh + grad_h * z  # dh: through the gates and through z h
        # END SOLUTION


class LSTMCell(_Recurrent):
    gates = 4  # row blocks [i; f; g; o]

    def forward(self, x, h, c):
        """(N, I), (N, H), (N, H) -> (h', c'); gates i, f, g, o as torch.nn.LSTMCell."""
        # BEGIN SOLUTION
        gates = x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c_new = f * c + i * g  # forget some of the cell, write some of the candidate
        tanh_c = torch.tanh(c_new)
        self.cache = (x, h, c, i, f, g, o, tanh_c)
        return o * tanh_c, c_new
        # END SOLUTION

    def backward(self, grad_h, grad_c):
        """(N, H), (N, H) -> (dx, dh, dc); sets dweight_ih, dweight_hh, dbias_ih, dbias_hh."""
        # BEGIN SOLUTION
        x, h, c, i, f, g, o, tanh_c = self.cache
        do = grad_h * tanh_c
        dc_new = grad_c + grad_h * o * (1 - tanh_c**2)  # c' reaches the loss directly and through h'
        di, df, dg, dc = dc_new * g, dc_new * c, dc_new * i, dc_new * f
        dgates = torch.cat([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], dim=1)
        self.dweight_ih, self.dweight_hh = dgates.T @ x, dgates.T @ h
        self.dbias_ih = self.dbias_hh = dgates.sum(dim=0)
        return dgates @ self.weight_ih, dgates @ self.weight_hh, dc
        # END SOLUTION


class GRU(_Recurrent):
    gates = 3  # GRUCell's weights, applied at every step

    def forward(self, x, h0, lengths):
        """(N, T, I), (N, H), (N,) -> (out (N, T, H), h_n (N, H)); a sequence stops at its length:
        past it, out is 0 and the state is carried to h_n unchanged."""
        # BEGIN SOLUTION
        T = x.shape[1]
        W_ih, W_hh, b_ih, b_hh = self.parameters()
        gi_all = x @ W_ih.T + b_ih  # (N, T, 3H): the input's share of every step at once
        self.valid = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (N, T)
        h, outputs, self.caches = h0, [], []
        for t in range(T):  # time is sequential; the batch goes through each step at once
            gh = h @ W_hh.T + b_hh
            gi_r, gi_z, gi_n = gi_all[:, t].chunk(3, dim=1)
            gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
            r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + r * gh_n)
            h_new = (1 - z) * n + z * h
            self.caches.append((h, r, z, n, gh_n))
            keep = self.valid[:, t, None]
            h = torch.where(keep, h_new, h)  # past its length a sequence keeps its last state
            outputs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
        self.x = x
        return torch.stack(outputs, dim=1), h
        # END SOLUTION

    def backward(self, grad_out, grad_h_n):
        """(N, T, H), (N, H) -> (dx (N, T, I), dh0 (N, H)); backprop through time, parameter
        gradients summed over the valid steps, dx 0 at padded positions."""
        # BEGIN SOLUTION
        dh, dgis, dghs, hs = grad_h_n, [], [], []
        for t in reversed(range(len(self.caches))):
            h, r, z, n, gh_n = self.caches[t]
            keep = self.valid[:, t, None]
            # a valid step's new state is out[:, t] and the next step's state; a padded step hands dh on
            grad_h_new = torch.where(keep, grad_out[:, t] + dh, torch.zeros_like(dh))
            dn_pre = grad_h_new * (1 - z) * (1 - n**2)
            dz_pre = grad_h_new * (h - n) * z * (1 - z)
            dr_pre = dn_pre * gh_n * r * (1 - r)
            dgh = torch.cat([dr_pre, dz_pre, dn_pre * r], dim=1)
            dgis.append(torch.cat([dr_pre, dz_pre, dn_pre], dim=1))
            dghs.append(dgh)
            hs.append(h)
            dh = dgh @ self.weight_hh + grad_h_new * z + torch.where(keep, torch.zeros_like(dh), dh)
        dgi, dgh = torch.stack(dgis[::-1], dim=1), torch.stack(dghs[::-1], dim=1)  # (N, T, 3H), 0 where padded
        # the same weights at every step: their gradients add up over the steps
        self.dweight_ih = dgi.flatten(0, 1).T @ self.x.flatten(0, 1)
        self.dweight_hh = dgh.flatten(0, 1).T @ torch.stack(hs[::-1], dim=1).flatten(0, 1)
        self.dbias_ih, self.dbias_hh = dgi.sum(dim=(0, 1)), dgh.sum(dim=(0, 1))
        return dgi @ self.weight_ih, dh
        # END SOLUTION


def train_text_classifier(tokens, lengths, labels, vocab_size, num_classes, seed, budget_s):
    """(N, T) int64 (0 = padding), (N,), (N,) int64 -> a model with predict(tokens, lengths).
    Any torch API goes here; a fixed number of steps, so that a regrade trains the same model."""
    # BEGIN SOLUTION
    class Classifier(torch.nn.Module):
        """Embeddings, a bidirectional GRU, the mean and the max of its states over the valid steps, a linear layer."""

        def __init__(self, vocab_size, num_classes, dim=32):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab_size, dim, padding_idx=0)
            self.gru = torch.nn.GRU(dim, dim, batch_first=True, bidirectional=True)
            self.out = torch.nn.Linear(4 * dim, num_classes)

        def forward(self, tokens, lengths):
            states, _ = self.gru(self.embed(tokens))  # (N, T, 2 dim): each word seen with what precedes and follows it
            valid = (torch.arange(tokens.shape[1]) < lengths[:, None])[:, :, None]
            mean = (states * valid).sum(dim=1) / lengths[:, None]
            largest = states.masked_fill(~valid, -1e4).amax(dim=1)
            return self.out(torch.cat([mean, largest], dim=1))

        @torch.no_grad()
        def predict(self, tokens, lengths):
            """(M, T) int64, (M,) -> (M,) int64 classes."""
            self.eval()
            return self.forward(tokens, lengths).argmax(dim=1)

    torch.manual_seed(seed)
    model = Classifier(vocab_size, num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    steps, batch = 400, 100  # ~15 s on one CPU thread, whatever the budget
    # the examples in a random order, epoch after epoch (torch's generator was seeded above)
    order = torch.cat([torch.randperm(len(labels)) for _ in range(steps * batch // len(labels) + 1)])
    for step in range(steps):
        rows = order[step * batch:(step + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(tokens[rows], lengths[rows]), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
    # END SOLUTION
