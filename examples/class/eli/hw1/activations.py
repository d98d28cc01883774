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
        # torch's sigmoid is already numerically stable, no need to reinvent it
        self.y = torch.sigmoid(x)
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        return grad_out * self.y * (1 - self.y)


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        self.y = x.tanh()
        return self.y

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        return grad_out * (1 - self.y**2)


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        self.mask = x > 0
        x[~self.mask] = 0  # zero out the negatives
        return x

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        return grad_out * self.mask.to(grad_out.dtype)


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        self.scale = torch.where(x >= 0, torch.ones_like(x), torch.full_like(x, self.slope))
        return x * self.scale

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        return grad_out * self.scale


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        self.x = x
        safe = torch.where(x > 0, torch.zeros_like(x), x)  # avoid exp overflow on the unused branch
        return torch.where(x > 0, x, self.alpha * torch.expm1(safe))

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        safe = torch.where(self.x > 0, torch.zeros_like(self.x), self.x)
        return torch.where(self.x > 0, grad_out, grad_out * self.alpha * torch.exp(safe))


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        self.x = x
        return torch.maximum(x, torch.zeros_like(x)) + torch.log1p(torch.exp(-torch.abs(x)))

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        e = torch.exp(-torch.abs(self.x))
        sig = torch.where(self.x >= 0, 1 / (1 + e), e / (1 + e))
        return grad_out * sig


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        self.x = x
        self.cdf = 0.5 + 0.5 * torch.erf(x / math.sqrt(2))
        return x * self.cdf

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        pdf = torch.exp(-(self.x**2) / 2) / math.sqrt(2 * math.pi)
        return grad_out * (self.cdf + self.x * pdf)


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        e = torch.exp(x - x.amax(-1, keepdim=True))
        self.y = e / e.sum(-1, keepdim=True)
        return self.y

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        return self.y * grad_out - self.y * (self.y * grad_out).sum(-1, keepdim=True)


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        m = x.amax(-1, keepdim=True)
        out = x - m - torch.log(torch.exp(x - m).sum(-1, keepdim=True))
        self.softmax = torch.exp(out)
        return out

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        return grad_out - self.softmax * grad_out.sum(-1, keepdim=True)
