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
        # BEGIN SOLUTION
        V = logits.shape[-1]
        z = logits - logits.amax(dim=-1, keepdim=True)  # shifted: exp never overflows
        log_probs = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))
        self.valid = target != self.ignore_index  # (N, T)
        self.count = self.valid.sum()
        safe = torch.where(self.valid, target, torch.zeros_like(target))  # any class: masked out below
        # the smoothed target: 1 - eps on the right class, eps spread over all V
        eps = self.label_smoothing
        self.q = torch.nn.functional.one_hot(safe, V).to(logits.dtype) * (1 - eps) + eps / V
        self.probs = torch.exp(log_probs)
        per_position = -(self.q * log_probs).sum(dim=-1)
        return (per_position * self.valid).sum() / self.count
        # END SOLUTION

    def backward(self):
        """() -> (N, T, V); (softmax - smoothed target) / count, 0 at ignored positions."""
        # BEGIN SOLUTION
        return (self.probs - self.q) * self.valid[..., None] / self.count
        # END SOLUTION


class ScaledDotProductAttention:
    def forward(self, q, k, v, mask=None):
        """(B..., Tq, d), (B..., Tk, d), (B..., Tk, dv), mask True = blocked -> (B..., Tq, dv)."""
        # BEGIN SOLUTION
        self.q, self.k, self.v = q, k, v
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))  # a blocked key gets weight exp(-inf) = 0
        scores = scores - scores.amax(dim=-1, keepdim=True)
        weights = torch.exp(scores)
        self.attention = weights / weights.sum(dim=-1, keepdim=True)
        return self.attention @ v
        # END SOLUTION

    def backward(self, grad_out):
        """(B..., Tq, dv) -> (dq, dk, dv)."""
        # BEGIN SOLUTION
        A = self.attention
        dv = A.transpose(-2, -1) @ grad_out
        dA = grad_out @ self.v.transpose(-2, -1)
        # softmax's Jacobian, row by row: dS = A * (dA - sum(dA * A)); blocked entries have A = 0
        dS = A * (dA - (dA * A).sum(dim=-1, keepdim=True)) / math.sqrt(self.q.shape[-1])
        return dS @ self.k, dS.transpose(-2, -1) @ self.q, dv
        # END SOLUTION


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
        # BEGIN SOLUTION
        N, Tq, E = query.shape
        H = self.num_heads
        self.inputs = (query, key, value)

        def heads(x, W, b):  # (N, T, E) -> (N, H, T, E/H): head h owns features h*E/H to (h+1)*E/H
            return (x @ W.T + b).reshape(N, x.shape[1], H, E // H).transpose(1, 2)

        self.q, self.k, self.v = heads(query, self.W_q, self.b_q), heads(key, self.W_k, self.b_k), heads(value, self.W_v, self.b_v)
        blocked = torch.zeros(N, 1, Tq, key.shape[1], dtype=torch.bool, device=query.device)
        if key_padding_mask is not None:
            blocked = blocked | key_padding_mask[:, None, None, :]
        if attn_mask is not None:
            blocked = blocked | attn_mask
        scores = self.q @ self.k.transpose(-2, -1) / math.sqrt(E // H)
        scores = scores.masked_fill(blocked, float("-inf"))
        weights = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
        self.attention = weights / weights.sum(dim=-1, keepdim=True)  # (N, H, Tq, Tk)
        self.concat = (self.attention @ self.v).transpose(1, 2).reshape(N, Tq, E)  # heads side by side again
        return self.concat @ self.W_o.T + self.b_o
        # END SOLUTION

    def backward(self, grad_out):
        """(N, Tq, E) -> (dquery, dkey, dvalue); sets dW_q, db_q, ..., dW_o, db_o."""
        # BEGIN SOLUTION
        query, key, value = self.inputs
        N, Tq, E = query.shape
        H = self.num_heads
        self.dW_o = grad_out.reshape(-1, E).T @ self.concat.reshape(-1, E)
        self.db_o = grad_out.sum(dim=(0, 1))
        d_heads = (grad_out @ self.W_o).reshape(N, Tq, H, E // H).transpose(1, 2)  # (N, H, Tq, E/H)
        A = self.attention
        dv = A.transpose(-2, -1) @ d_heads
        dA = d_heads @ self.v.transpose(-2, -1)
        dS = A * (dA - (dA * A).sum(dim=-1, keepdim=True)) / math.sqrt(E // H)
        dq, dk = dS @ self.k, dS.transpose(-2, -1) @ self.q

        def projection_backward(d, x, W, name):  # d: (N, H, T, E/H) -> the input's gradient; sets dW, db
            d = d.transpose(1, 2).reshape(N, x.shape[1], E)
            setattr(self, f"dW_{name}", d.reshape(-1, E).T @ x.reshape(-1, E))
            setattr(self, f"db_{name}", d.sum(dim=(0, 1)))
            return d @ W

        return (projection_backward(dq, query, self.W_q, "q"), projection_backward(dk, key, self.W_k, "k"),
                projection_backward(dv, value, self.W_v, "v"))
        # END SOLUTION

    def parameters(self):
        return [self.W_q, self.b_q, self.W_k, self.b_k, self.W_v, self.b_v, self.W_o, self.b_o]

    def gradients(self):
        return [self.dW_q, self.db_q, self.dW_k, self.db_k, self.dW_v, self.db_v, self.dW_o, self.db_o]


def beam_search(step_log_probs, bos, eos, beam_size):
    """(T, V, V) log p(y_t | y_{t-1}), bos, eos, beam size -> (tokens without bos and eos, total log-prob)."""
    # BEGIN SOLUTION
    T, V, _ = step_log_probs.shape
    beam = [([bos], 0.0)]  # (tokens so far, total log-probability), best first
    finished = []
    for t in range(T):
        live = beam_size - len(finished)
        # every hypothesis extended by every token, as one (hypotheses, V) table; flat index h * V + y
        last = torch.tensor([tokens[-1] for tokens, _ in beam])
        scores = torch.tensor([score for _, score in beam], dtype=step_log_probs.dtype)
        totals = (scores[:, None] + step_log_probs[t, last]).reshape(-1).tolist()
        best = sorted(range(len(totals)), key=lambda flat: (-totals[flat], flat))[:live]  # ties: smaller index
        extended = []
        for flat in best:
            h, y = divmod(flat, V)
            if y == eos:
                finished.append((beam[h][0][1:], totals[flat]))  # kept without bos and eos
            else:
                extended.append((beam[h][0] + [y], totals[flat]))
        beam = extended
        if len(finished) == beam_size or not beam:
            break
    if not finished:  # nothing reached eos within T steps: the best one still going
        return beam[0][0][1:], beam[0][1]
    return max(finished, key=lambda hypothesis: hypothesis[1])  # the first of equals: max keeps it
    # END SOLUTION


def corpus_bleu(candidates, references, max_n=4):
    """list of token lists, list of lists of reference token lists -> BLEU in [0, 1] (Papineni et al., no smoothing)."""
    # BEGIN SOLUTION
    matched, total = [0] * max_n, [0] * max_n
    c = r = 0
    for candidate, refs in zip(candidates, references):
        c += len(candidate)
        # the reference length closest to the candidate's; ties go to the shorter
        r += min((abs(len(ref) - len(candidate)), len(ref)) for ref in refs)[1]
        for n in range(1, max_n + 1):
            counts = Counter(tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1))
            most = Counter()  # an n-gram counts at most as often as in the reference that has it most: clipping
            for ref in refs:
                most |= Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
            matched[n - 1] += sum(min(count, most[gram]) for gram, count in counts.items())
            total[n - 1] += sum(counts.values())
    if c == 0 or 0 in matched:
        return 0.0
    brevity = 1.0 if c > r else math.exp(1 - r / c)  # short candidates cannot win on precision alone
    return brevity * math.exp(sum(math.log(m / n) for m, n in zip(matched, total)) / max_n)
    # END SOLUTION
