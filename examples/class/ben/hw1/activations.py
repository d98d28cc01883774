"""hw1, `activations.py`: activation functions with hand-written backward passes.

Each class works like a micrograd node: `forward(x)` computes y = f(x) and
caches what the derivative needs; `backward(grad_out)` returns
grad_out * f'(x), the gradient of the loss with respect to x. Element-wise
activations accept any shape; Softmax and LogSoftmax act on the last
dimension. Outputs keep the dtype and device of x, and x is never modified.
"""

import math

import torch


class Sigmoid:
    def forward(self, x):
        """(...) -> (...); 1 / (1 + exp(-x)), caches the output for backward."""
        ex = torch.exp(x)
        self.y = ex / (1 + ex)
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        return grad_out * self.y * (1 - self.y)


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        t = torch.exp(-2 * torch.abs(x))
        self.y = torch.sign(x) * (1 - t) / (1 + t)
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        return grad_out * (1 - self.y * self.y)


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        self.mask = x > 0
        return torch.where(self.mask, x, torch.zeros_like(x))

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        return grad_out * self.mask


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        self.mask = x >= 0
        return torch.where(self.mask, x, x * self.slope)

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        return torch.where(self.mask, grad_out, grad_out * self.slope)


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        self.x = x
        neg = torch.clamp(x, max=0)
        return torch.where(x > 0, x, self.alpha * torch.expm1(neg))

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        d = torch.where(self.x > 0, torch.ones_like(self.x), self.alpha * torch.exp(torch.clamp(self.x, max=0)))
        return grad_out * d


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        self.x = x
        return torch.log1p(torch.exp(x))

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        ex = torch.exp(self.x)
        return grad_out * ex / (1 + ex)


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        self.x = x
        self.Phi = (1 + torch.erf(x / math.sqrt(2))) / 2
        return x * self.Phi

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        phi = torch.exp(-self.x**2 / 2) / math.sqrt(2 * math.pi)
        return grad_out * (self.Phi + self.x * phi)


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        e = torch.exp(x)
        self.y = e / e.sum(dim=-1, keepdim=True)
        return self.y

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        s = (grad_out * self.y).sum(dim=-1, keepdim=True)
        return self.y * (grad_out - s)


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        e = torch.exp(x)
        self.sm = e / e.sum(dim=-1, keepdim=True)
        return torch.log(self.sm)

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        return grad_out - self.sm * grad_out.sum(dim=-1, keepdim=True)
