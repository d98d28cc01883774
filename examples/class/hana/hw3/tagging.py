"""hw3 tagging.py (hana): the CRF one sentence at a time."""

import torch


class CRF:
    def __init__(self, num_tags):
        self.start = torch.zeros(num_tags)
        self.end = torch.zeros(num_tags)
        self.trans = torch.zeros(num_tags, num_tags)

    def _forward_messages(self, emissions, start, trans):
        """(L, K) emissions of one sequence -> (L, K) log-sums of prefixes."""
        out = [start + emissions[0]]
        for t in range(1, len(emissions)):
            out.append(torch.logsumexp(out[-1][:, None] + trans, dim=0) + emissions[t])
        return torch.stack(out)

    def _messages(self, emissions, length):
        e = emissions[:length]
        alpha = self._forward_messages(e, self.start, self.trans)
        # the reversed chain (start at `end`, transitions transposed, emissions read backwards) gives beta + e
        beta = self._forward_messages(e.flip(0), self.end, self.trans.T).flip(0) - e
        log_z = torch.logsumexp(alpha[-1] + self.end, dim=0)
        return alpha, beta, log_z

    def log_partition(self, emissions, lengths):
        return torch.stack([self._messages(e, int(n))[2] for e, n in zip(emissions, lengths)])

    def marginals(self, emissions, lengths):
        out = torch.zeros_like(emissions)
        for i, (e, n) in enumerate(zip(emissions, lengths.tolist())):
            alpha, beta, log_z = self._messages(e, n)
            out[i, :n] = torch.exp(alpha + beta - log_z)
        return out

    def forward(self, emissions, tags, lengths):
        self.saved = (emissions, tags, lengths)
        total = 0
        for e, y, n in zip(emissions, tags, lengths.tolist()):
            y = y[:n]
            score = self.start[y[0]] + self.end[y[-1]] + e[torch.arange(n), y].sum() + self.trans[y[:-1], y[1:]].sum()
            total = total + self._messages(e, n)[2] - score
        return total / len(emissions)

    def backward(self):
        emissions, tags, lengths = self.saved
        N, _, K = emissions.shape
        grad = torch.zeros_like(emissions)
        self.dstart, self.dend, self.dtrans = torch.zeros_like(self.start), torch.zeros_like(self.end), torch.zeros_like(self.trans)
        for i, (e, y, n) in enumerate(zip(emissions, tags, lengths.tolist())):
            alpha, beta, log_z = self._messages(e, n)
            p = torch.exp(alpha + beta - log_z)
            grad[i, :n] = p
            grad[i, torch.arange(n), y[:n]] -= 1
            self.dstart += p[0]
            self.dstart[y[0]] -= 1
            self.dend += p[n - 1]
            self.dend[y[n - 1]] -= 1
            for t in range(1, n):
                self.dtrans += torch.exp(alpha[t - 1][:, None] + self.trans + (e[t] + beta[t])[None, :] - log_z)
                self.dtrans[y[t - 1], y[t]] -= 1
        self.dstart, self.dend, self.dtrans = self.dstart / N, self.dend / N, self.dtrans / N
        return grad / N

    def decode(self, emissions, lengths):
        paths = torch.full(emissions.shape[:2], -1, dtype=torch.long)
        for i, (e, n) in enumerate(zip(emissions, lengths.tolist())):
            score, pointers = self.start + e[0], []
            for t in range(1, n):
                best, argbest = (score[:, None] + self.trans).max(dim=0)
                pointers.append(argbest)
                score = best + e[t]
            tag = int((score + self.end).argmax())
            path = [tag]
            for argbest in reversed(pointers):
                tag = int(argbest[tag])
                path.append(tag)
            paths[i, :n] = torch.tensor(path[::-1])
        return paths

    def parameters(self):
        return [self.start, self.end, self.trans]

    def gradients(self):
        return [self.dstart, self.dend, self.dtrans]


def entity_spans(tags):
    spans = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            end = i + 1
            while end < len(tags) and tags[end] == "I-" + tag[2:]:
                end += 1
            spans.append([tag[2:], i, end])
    return spans


def entity_prf(y_true, y_pred):
    def spans(sequences):
        return {(i, kind, a, b) for i, tags in enumerate(sequences) for kind, a, b in entity_spans(tags)}

    gold, found = spans(y_true), spans(y_pred)
    right = len(gold & found)
    p = right / len(found) if found else 0.0
    r = right / len(gold) if gold else 0.0
    return [p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0]
