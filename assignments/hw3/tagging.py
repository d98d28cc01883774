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
        raise NotImplementedError("CRF._alphas: write your solution here")

    def _betas(self, emissions, lengths):
        """(N, T, K) log-sums of every path suffix after each tag at each position (end included)."""
        raise NotImplementedError("CRF._betas: write your solution here")

    def log_partition(self, emissions, lengths):
        """(N, T, K), (N,) -> (N,) log Z, the log-sum of the scores of every path."""
        raise NotImplementedError("CRF.log_partition: write your solution here")

    def marginals(self, emissions, lengths):
        """(N, T, K), (N,) -> (N, T, K) p(y_t = k), 0 past each length."""
        raise NotImplementedError("CRF.marginals: write your solution here")

    def _score(self, emissions, tags, lengths):
        """(N,) the score of the given paths."""
        raise NotImplementedError("CRF._score: write your solution here")

    def forward(self, emissions, tags, lengths):
        """(N, T, K), (N, T) int64, (N,) -> 0-dim; mean over the batch of log Z - score(tags)."""
        raise NotImplementedError("CRF.forward: write your solution here")

    def backward(self):
        """() -> (N, T, K) gradient wrt emissions; sets dstart, dend, dtrans."""
        raise NotImplementedError("CRF.backward: write your solution here")

    def decode(self, emissions, lengths):
        """(N, T, K), (N,) -> (N, T) int64, the best path (Viterbi), -1 past each length."""
        raise NotImplementedError("CRF.decode: write your solution here")

    def parameters(self):
        return [self.start, self.end, self.trans]

    def gradients(self):
        return [self.dstart, self.dend, self.dtrans]


def entity_spans(tags):
    """list of IOB2 tags -> [[type, start, end], ...], end exclusive; strict: only B-X starts a span."""
    raise NotImplementedError("entity_spans: write your solution here")


def entity_prf(y_true, y_pred):
    """lists of tag lists -> [precision, recall, f1], micro over exact (sentence, type, start, end) matches."""
    raise NotImplementedError("entity_prf: write your solution here")
