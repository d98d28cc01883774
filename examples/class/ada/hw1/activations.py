"""hw1, `activations.py`: activation functions with hand-written backward passes.

Each class works like a micrograd node: `forward(x)` computes y = f(x) and
caches what the derivative needs; `backward(grad_out)` returns
grad_out * f'(x), the gradient of the loss with respect to x. Element-wise
activations accept any shape; Softmax and LogSoftmax act on the last
dimension. Outputs keep the dtype and device of x, and x is never modified.
"""

import math

import torch


def _logistic(x):
    """Numerically safe 1 / (1 + e^-x).

    For x >= 0 use 1 / (1 + e^-x), for x < 0 use e^x / (1 + e^x): in both cases
    the exponent is <= 0, so exp never blows up.
    """
    small = torch.exp(-torch.abs(x))  # in (0, 1]
    return torch.where(x >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


class Sigmoid:
    def forward(self, x):
        """(...) -> (...); 1 / (1 + exp(-x)), caches the output for backward."""
        self.out = _logistic(x)
        return self.out

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        s = self.out
        return grad_out * (s - s * s)


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        # tanh(x) = sign(x) * (1 - e^{-2|x|}) / (1 + e^{-2|x|}); expm1 keeps small x accurate
        em1 = torch.expm1(-2.0 * torch.abs(x))  # e^{-2|x|} - 1, in (-1, 0]
        self.out = torch.sign(x) * (-em1) / (2.0 + em1)
        return self.out

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        return grad_out * (1.0 - self.out.pow(2))


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        self.positive = (x > 0).to(x.dtype)
        return x * self.positive

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        return grad_out * self.positive


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        self.factor = torch.where(x >= 0, torch.ones_like(x), torch.full_like(x, self.slope))
        return x * self.factor

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        return grad_out * self.factor


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        self.pos = x > 0
        # only exponentiate the non-positive part (exp(800) would be inf)
        self.exp_neg = torch.exp(torch.clamp(x, max=0.0))
        self.out = torch.where(self.pos, x, self.alpha * torch.expm1(torch.clamp(x, max=0.0)))
        return self.out

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        slope = torch.where(self.pos, torch.ones_like(self.exp_neg), self.alpha * self.exp_neg)
        return grad_out * slope


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        self.inp = x
        # log(e^0 + e^x), computed with the usual max trick inside logaddexp
        return torch.logaddexp(torch.zeros_like(x), x)

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        return grad_out * _logistic(self.inp)


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        self.inp = x
        self.Phi = 0.5 * torch.erfc(-x / math.sqrt(2.0))  # = (1 + erf(x/sqrt2)) / 2
        return x * self.Phi

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        x = self.inp
        phi = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return grad_out * (self.Phi + x * phi)


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        shifted = x - torch.max(x, dim=-1, keepdim=True).values
        num = torch.exp(shifted)
        self.probs = num / torch.sum(num, dim=-1, keepdim=True)
        return self.probs

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        p = self.probs
        # J^T g = p * g - p * <p, g>
        inner = torch.sum(p * grad_out, dim=-1, keepdim=True)
        return p * grad_out - p * inner


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        out = x - torch.logsumexp(x, dim=-1, keepdim=True)
        self.probs = out.exp()
        return out

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        total = grad_out.sum(dim=-1, keepdim=True)
        return grad_out - self.probs * total
