"""A correct hw1 `activations.py` written differently from the reference.

Used by the project's tests: a grader must give it full marks too.
"""

import math

import torch


def _softplus(x):
    # log(1 + e^x) as logaddexp(0, x): stable for any x
    return torch.logaddexp(torch.zeros_like(x), x)


class Sigmoid:
    def forward(self, x):
        # sigmoid(x) = 1 / (1 + e^-x) = exp(-log(1 + e^-x)) = exp(-softplus(-x))
        self.x = x
        return torch.exp(-_softplus(-x))

    def backward(self, grad_out):
        # sigmoid'(x) = sigmoid(x) sigmoid(-x) = exp(-softplus(-x) - softplus(x))
        return grad_out * torch.exp(-_softplus(-self.x) - _softplus(self.x))


class Tanh:
    def forward(self, x):
        e = torch.exp(-2 * x.abs())
        y = (1 - e) / (1 + e)
        self.y = torch.where(x < 0, -y, y)
        return self.y

    def backward(self, grad_out):
        return grad_out * (1 - self.y) * (1 + self.y)


class ReLU:
    def forward(self, x):
        self.x = x
        return torch.maximum(x, torch.zeros_like(x))

    def backward(self, grad_out):
        return grad_out * (self.x > 0).to(grad_out.dtype)


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        self.factor = torch.full_like(x, self.slope).masked_fill(x >= 0, 1.0)
        return x * self.factor

    def backward(self, grad_out):
        return grad_out * self.factor


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        self.positive = x > 0
        self.y = torch.maximum(x, torch.zeros_like(x)) + self.alpha * torch.expm1(torch.minimum(x, torch.zeros_like(x)))
        return self.y

    def backward(self, grad_out):
        # for x <= 0: d/dx alpha (e^x - 1) = alpha e^x = y + alpha
        return grad_out * torch.where(self.positive, torch.ones_like(self.y), self.y + self.alpha)


class Softplus:
    def forward(self, x):
        self.x = x
        self.y = _softplus(x)
        return self.y

    def backward(self, grad_out):
        # softplus'(x) = e^x / (1 + e^x) = exp(x - softplus(x)), and x - softplus(x) <= 0
        return grad_out * torch.exp(self.x - self.y)


class GELU:
    def forward(self, x):
        self.x = x
        # Phi(x) = erfc(-x / sqrt(2)) / 2 keeps its relative precision for negative x
        self.phi = 0.5 * torch.erfc(-x / math.sqrt(2.0))
        return x * self.phi

    def backward(self, grad_out):
        density = torch.exp(-(self.x * self.x) / 2) * (1 / math.sqrt(2 * math.pi))
        return grad_out * self.phi + grad_out * self.x * density


def _log_normalize(x):
    # x - logsumexp(x), with the max taken out first: for entries near 1e3 the float32
    # rounding of logsumexp(x) itself (an ulp is 6e-5 there) would leak into exp()
    z = x - x.amax(dim=-1, keepdim=True)
    return z - torch.logsumexp(z, dim=-1, keepdim=True)


class Softmax:
    def forward(self, x):
        self.y = torch.exp(_log_normalize(x))
        return self.y

    def backward(self, grad_out):
        dot = torch.einsum("...i,...i->...", grad_out, self.y)
        return self.y * grad_out - self.y * dot.unsqueeze(-1)


class LogSoftmax:
    def forward(self, x):
        y = _log_normalize(x)
        self.p = y.exp()
        return y

    def backward(self, grad_out):
        total = torch.einsum("...i->...", grad_out).unsqueeze(-1)
        return grad_out - total * self.p
