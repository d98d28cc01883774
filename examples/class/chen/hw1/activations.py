"""hw1, `activations.py`: activation functions with hand-written backward passes.

Each class works like a micrograd node: `forward(x)` computes y = f(x) and
caches what the derivative needs; `backward(grad_out)` returns
grad_out * f'(x), the gradient of the loss with respect to x. Element-wise
activations accept any shape; Softmax and LogSoftmax act on the last
dimension. Outputs keep the dtype and device of x, and x is never modified.
"""

import math

import torch


def stable_sigmoid(x):
    # two branches so that exp only ever sees non-positive numbers
    pos = x >= 0
    z = torch.exp(torch.where(pos, -x, x))
    return torch.where(pos, 1 / (1 + z), z / (1 + z))


class Sigmoid:
    def forward(self, x):
        """(...) -> (...); 1 / (1 + exp(-x)), caches the output for backward."""
        self.s = stable_sigmoid(x)
        return self.s

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        return grad_out * self.s * (1 - self.s)


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        # tanh(x) = 2 sigmoid(2x) - 1 = (1 - e^{-2x}) / (1 + e^{-2x}) for x >= 0, odd function
        a = torch.abs(x)
        e = torch.expm1(-2 * a)
        self.t = torch.sign(x) * (-e / (2 + e))
        return self.t

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        return grad_out * (1 - self.t**2)


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        self.mask = x > 0
        return torch.clamp(x, min=0)

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        return torch.where(self.mask, grad_out, torch.zeros_like(grad_out))


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        self.neg = x < 0
        return torch.where(self.neg, self.slope * x, x)

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        return torch.where(self.neg, self.slope * grad_out, grad_out)


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        self.x = x
        return torch.where(x > 0, x, self.alpha * torch.expm1(torch.minimum(x, torch.zeros_like(x))))

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        x = self.x
        deriv = torch.where(x > 0, torch.ones_like(x), self.alpha * torch.exp(torch.minimum(x, torch.zeros_like(x))))
        return grad_out * deriv


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        self.x = x
        return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        return grad_out * stable_sigmoid(self.x)


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        self.x = x
        self.cdf = 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
        return x * self.cdf

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        pdf = (1.0 / math.sqrt(2.0 * math.pi)) * torch.exp(-0.5 * self.x * self.x)
        return grad_out * (self.cdf + self.x * pdf)


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        m, _ = torch.max(x, dim=-1, keepdim=True)
        e = torch.exp(x - m)
        self.out = e / torch.sum(e, dim=-1, keepdim=True)
        return self.out

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        y = self.out
        dot = torch.sum(grad_out * y, dim=-1, keepdim=True)
        return y * (grad_out - dot)


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        m, _ = torch.max(x, dim=-1, keepdim=True)
        shifted = x - m
        lse = torch.log(torch.sum(torch.exp(shifted), dim=-1, keepdim=True))
        out = shifted - lse
        self.sm = torch.exp(out)
        return out

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        return grad_out - self.sm * torch.sum(grad_out, dim=-1, keepdim=True)
