"""hw1, `activations.py`: activation functions with hand-written backward passes.

Each class works like a micrograd node: `forward(x)` computes y = f(x) and
caches what the derivative needs; `backward(grad_out)` returns
grad_out * f'(x), the gradient of the loss with respect to x. Element-wise
activations accept any shape; Softmax and LogSoftmax act on the last
dimension. Outputs keep the dtype and device of x, and x is never modified.
"""

import math

import torch

SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _softplus(x):
    return x.clamp(min=0) + (-x.abs()).exp().log1p()


class Sigmoid:
    def forward(self, x):
        """(...) -> (...); 1 / (1 + exp(-x)), caches the output for backward."""
        # sigmoid(x) = exp(-softplus(-x)): softplus(-x) >= 0, so exp is at most 1
        self.y = torch.exp(-_softplus(-x))
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        return grad_out * self.y * (1.0 - self.y)


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        e = torch.expm1(2 * x.abs().neg())  # exp(-2|x|) - 1
        self.y = x.sign() * e.neg() / (e + 2)
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        return grad_out * (1 - self.y * self.y)


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        self.mask = x > 0
        return x.masked_fill(~self.mask, 0.0)

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        return grad_out.masked_fill(~self.mask, 0.0)


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        self.mask = x >= 0
        return torch.where(self.mask, x, self.slope * x)

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        return torch.where(self.mask, grad_out, self.slope * grad_out)


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        self.mask = x > 0
        xneg = x.clamp(max=0)
        self.e = xneg.exp()
        return torch.where(self.mask, x, self.alpha * xneg.expm1())

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        return torch.where(self.mask, grad_out, grad_out * self.alpha * self.e)


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        self.x = x
        return _softplus(x)

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        return grad_out * torch.exp(-_softplus(-self.x))


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        self.x = x
        self.Phi = 0.5 * (1.0 + torch.erf(x / SQRT2))
        return x * self.Phi

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        phi = INV_SQRT_2PI * torch.exp(-0.5 * self.x.square())
        return grad_out * (self.Phi + self.x * phi)


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        z = x - x.max(dim=-1, keepdim=True).values
        ez = z.exp()
        self.y = ez / ez.sum(dim=-1, keepdim=True)
        return self.y

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        gy = grad_out * self.y
        return gy - self.y * gy.sum(dim=-1, keepdim=True)


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        z = x - x.max(dim=-1, keepdim=True).values
        out = z - z.exp().sum(dim=-1, keepdim=True).log()
        self.p = out.exp()
        return out

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        return grad_out - self.p * grad_out.sum(dim=-1, keepdim=True)
