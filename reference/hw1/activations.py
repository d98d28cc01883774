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
        # BEGIN SOLUTION
        # exp(-|x|) lies in (0, 1]: it never overflows, whatever the sign of x.
        e = torch.exp(-x.abs())
        self.y = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.y
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        # BEGIN SOLUTION
        return grad_out * self.y * (1 - self.y)
        # END SOLUTION


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        # BEGIN SOLUTION
        # tanh|x| = (1 - e) / (1 + e) with e = exp(-2|x|) <= 1, so nothing overflows;
        # expm1 gives e - 1 to full precision even when x is close to 0.
        t = torch.expm1(-2 * x.abs())
        self.y = -x.sign() * t / (2 + t)
        return self.y
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        # BEGIN SOLUTION
        return grad_out * (1 - self.y**2)
        # END SOLUTION


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        # BEGIN SOLUTION
        # strict inequality: at exactly 0 the (sub)derivative is taken as 0
        self.mask = x > 0
        return torch.where(self.mask, x, 0.0)
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        # BEGIN SOLUTION
        return torch.where(self.mask, grad_out, 0.0)
        # END SOLUTION


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        # BEGIN SOLUTION
        self.mask = x >= 0
        return torch.where(self.mask, x, self.slope * x)
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        # BEGIN SOLUTION
        return torch.where(self.mask, grad_out, self.slope * grad_out)
        # END SOLUTION


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        # BEGIN SOLUTION
        self.x = x
        # torch.where evaluates both branches: clamping keeps exp finite in the one it drops
        negative = self.alpha * torch.expm1(x.clamp(max=0))
        return torch.where(x > 0, x, negative)
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        # BEGIN SOLUTION
        negative = grad_out * self.alpha * torch.exp(self.x.clamp(max=0))
        return torch.where(self.x > 0, grad_out, negative)
        # END SOLUTION


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        # BEGIN SOLUTION
        self.x = x
        # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): the exp never overflows, and
        # log1p stays accurate when e^-|x| is tiny (log(1 + tiny) would round to 0).
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        # BEGIN SOLUTION
        e = torch.exp(-self.x.abs())
        return grad_out * torch.where(self.x >= 0, 1 / (1 + e), e / (1 + e))
        # END SOLUTION


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        # BEGIN SOLUTION
        self.x = x
        # the exact GELU: Phi(x) = (1 + erf(x / sqrt(2))) / 2, not the tanh approximation
        self.cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        return x * self.cdf
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        # BEGIN SOLUTION
        pdf = torch.exp(-0.5 * self.x**2) / math.sqrt(2 * math.pi)
        return grad_out * (self.cdf + self.x * pdf)
        # END SOLUTION


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        # BEGIN SOLUTION
        # softmax(x) = softmax(x - c) for any constant c. With c = max, every exp is <= 1
        # (no overflow) and the largest is exactly 1 (the sum is >= 1, never 0).
        e = torch.exp(x - x.amax(dim=-1, keepdim=True))
        self.y = e / e.sum(dim=-1, keepdim=True)
        return self.y
        # END SOLUTION

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        # BEGIN SOLUTION
        y = self.y
        return y * (grad_out - (grad_out * y).sum(dim=-1, keepdim=True))
        # END SOLUTION


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        # BEGIN SOLUTION
        # log softmax(x) = z - log(sum(exp(z))) with z = x - max: the sum lies in [1, C],
        # so every entry is finite. log(softmax(x)) would be log(0) = -inf wherever a
        # probability underflows, e.g. for x = [1000, -1000].
        z = x - x.amax(dim=-1, keepdim=True)
        y = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))
        self.softmax = torch.exp(y)
        return y
        # END SOLUTION

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        # BEGIN SOLUTION
        return grad_out - self.softmax * grad_out.sum(dim=-1, keepdim=True)
        # END SOLUTION
