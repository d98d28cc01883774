"""hw3, `tagging.py`: named-entity tagging with a linear-chain CRF, and how it is scored.

The CRF scores a tag path by its start, emission, transition and end scores; training minimises
log Z - score(gold path), Z summing over every path (the forward algorithm, in log space so that
scores of 1e3 and 256 steps stay finite). The forward-backward algorithm gives each position's tag
marginals, which are also the loss's gradient; Viterbi gives the best path. Entities are read from
IOB2 tags strictly, and scored by exact span matches.
"""

import torch


class CRF:
    def __init__(self, num_tags):
        self.start = torch.randn(num_tags) * 0.1
        self.end = torch.randn(num_tags) * 0.1
        self.trans = torch.randn(num_tags, num_tags) * 0.1  # trans[i, j]: tag i followed by tag j

    def _alphas(self, emissions, lengths):
        """(N, T, K) log-sums of every path prefix ending in each tag; (N,) log Z."""
        # BEGIN SOLUTION
        N, T, K = emissions.shape
        valid = torch.arange(T, device=emissions.device)[None, :] < lengths[:, None]
        alpha = self.start + emissions[:, 0]  # (N, K)
        alphas = [alpha]
        for t in range(1, T):
            # every previous tag i to every tag j: alpha[i] + trans[i, j], summed over i in log space
            step = torch.logsumexp(alpha[:, :, None] + self.trans, dim=1) + emissions[:, t]
            alpha = torch.where(valid[:, t, None], step, alpha)  # past the length nothing changes
            alphas.append(alpha)
        return torch.stack(alphas, dim=1), torch.logsumexp(alpha + self.end, dim=1)
        # END SOLUTION

    def _betas(self, emissions, lengths):
        """(N, T, K) log-sums of every path suffix after each tag at each position (end included)."""
        # BEGIN SOLUTION
        N, T, K = emissions.shape
        beta = self.end.expand(N, K)
        betas = [None] * T
        for t in reversed(range(T)):
            last = (lengths - 1 == t)[:, None]
            inside = (t < lengths - 1)[:, None]
            if t < T - 1:
                following = torch.logsumexp(self.trans + (emissions[:, t + 1] + beta)[:, None, :], dim=2)
                beta = torch.where(inside, following, torch.where(last, self.end.expand(N, K), beta))
            betas[t] = torch.where(inside | last, beta, torch.zeros_like(beta))
        return torch.stack(betas, dim=1)
        # END SOLUTION

    def log_partition(self, emissions, lengths):
        """(N, T, K), (N,) -> (N,) log Z, the log-sum of the scores of every path."""
        # BEGIN SOLUTION
        return self._alphas(emissions, lengths)[1]
        # END SOLUTION

    def marginals(self, emissions, lengths):
        """(N, T, K), (N,) -> (N, T, K) p(y_t = k), 0 past each length."""
        # BEGIN SOLUTION
        alphas, log_z = self._alphas(emissions, lengths)
        valid = torch.arange(emissions.shape[1], device=emissions.device)[None, :, None] < lengths[:, None, None]
        return torch.exp(alphas + self._betas(emissions, lengths) - log_z[:, None, None]) * valid
        # END SOLUTION

    def _score(self, emissions, tags, lengths):
        """(N,) the score of the given paths."""
        # BEGIN SOLUTION
        N, T, _ = emissions.shape
        valid = torch.arange(T, device=emissions.device)[None, :] < lengths[:, None]
        safe = torch.where(valid, tags, torch.zeros_like(tags))  # tags past the length are ignored
        emitted = (emissions.gather(2, safe[:, :, None])[:, :, 0] * valid).sum(dim=1)
        moved = (self.trans[safe[:, :-1], safe[:, 1:]] * valid[:, 1:]).sum(dim=1)
        last = safe.gather(1, (lengths - 1)[:, None])[:, 0]
        return self.start[safe[:, 0]] + emitted + moved + self.end[last]
        # END SOLUTION

    def forward(self, emissions, tags, lengths):
        """(N, T, K), (N, T) int64, (N,) -> 0-dim; mean over the batch of log Z - score(tags)."""
        # BEGIN SOLUTION
        self.saved = (emissions, tags, lengths)
        return (self.log_partition(emissions, lengths) - self._score(emissions, tags, lengths)).mean()
        # END SOLUTION

    def backward(self):
        """() -> (N, T, K) gradient wrt emissions; sets dstart, dend, dtrans."""
        # BEGIN SOLUTION
        emissions, tags, lengths = self.saved
        N, T, K = emissions.shape
        valid = torch.arange(T, device=emissions.device)[None, :] < lengths[:, None]
        alphas, log_z = self._alphas(emissions, lengths)
        betas = self._betas(emissions, lengths)
        # d log Z / d score of a part = its probability; d score(tags) / d part = 1 where the gold path uses it
        unary = torch.exp(alphas + betas - log_z[:, None, None]) * valid[:, :, None]
        gold = torch.nn.functional.one_hot(torch.where(valid, tags, 0), K).to(emissions.dtype) * valid[:, :, None]
        # p(y_{t-1} = i, y_t = j) for t = 1..T-1
        pairs = torch.exp(alphas[:, :-1, :, None] + self.trans + (emissions[:, 1:] + betas[:, 1:])[:, :, None, :]
                          - log_z[:, None, None, None]) * valid[:, 1:, None, None]
        gold_pairs = gold[:, :-1, :, None] * gold[:, 1:, None, :]
        ends = torch.nn.functional.one_hot(lengths - 1, T).to(emissions.dtype)  # (N, T): the last valid step
        self.dstart = (unary[:, 0] - gold[:, 0]).sum(dim=0) / N
        self.dend = ((unary - gold) * ends[:, :, None]).sum(dim=(0, 1)) / N
        self.dtrans = (pairs - gold_pairs).sum(dim=(0, 1)) / N
        return (unary - gold) / N
        # END SOLUTION

    def decode(self, emissions, lengths):
        """(N, T, K), (N,) -> (N, T) int64, the best path (Viterbi), -1 past each length."""
        # BEGIN SOLUTION
        N, T, K = emissions.shape
        valid = torch.arange(T, device=emissions.device)[None, :] < lengths[:, None]
        best = self.start + emissions[:, 0]  # (N, K): the best prefix score ending in each tag
        came_from = []
        for t in range(1, T):
            candidates = best[:, :, None] + self.trans  # (N, i, j)
            step, previous = candidates.max(dim=1)
            came_from.append(previous)
            best = torch.where(valid[:, t, None], step + emissions[:, t], best)
        tag = (best + self.end).argmax(dim=1)  # the last valid step's tag
        path = torch.full((N, T), -1, dtype=torch.long, device=emissions.device)
        for t in reversed(range(T)):
            at_or_before_end = t <= lengths - 1
            path[:, t] = torch.where(at_or_before_end, tag, path[:, t])
            if t > 0:  # follow the back-pointer only inside the sequence
                tag = torch.where(t <= lengths - 1, came_from[t - 1].gather(1, tag[:, None])[:, 0], tag)
        return path
        # END SOLUTION

    def parameters(self):
        return [self.start, self.end, self.trans]

    def gradients(self):
        return [self.dstart, self.dend, self.dtrans]


def entity_spans(tags):
    """list of IOB2 tags -> [[type, start, end], ...], end exclusive; strict: only B-X starts a span."""
    # BEGIN SOLUTION
    spans, current = [], None
    for position, tag in enumerate(list(tags) + ["O"]):  # a final O closes the last span
        prefix, _, kind = tag.partition("-")
        if current is not None and (prefix != "I" or kind != current[0]):
            spans.append([current[0], current[1], position])  # anything but I-X ends a span of X
            current = None
        if prefix == "B":
            current = (kind, position)
        # an I-X that continues nothing starts nothing
    return spans
    # END SOLUTION


def entity_prf(y_true, y_pred):
    """lists of tag lists -> [precision, recall, f1], micro over exact (sentence, type, start, end) matches."""
    # BEGIN SOLUTION
    true = {(n, *span) for n, tags in enumerate(y_true) for span in map(tuple, entity_spans(tags))}
    pred = {(n, *span) for n, tags in enumerate(y_pred) for span in map(tuple, entity_spans(tags))}
    hits = len(true & pred)
    precision = hits / len(pred) if pred else 0.0
    recall = hits / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return [precision, recall, f1]
    # END SOLUTION
