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
        raise NotImplementedError("Sigmoid.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); sigmoid'(x) = y * (1 - y), from the cached output."""
        raise NotImplementedError("Sigmoid.backward: write your solution here")


class Tanh:
    def forward(self, x):
        """(...) -> (...); tanh(x), caches the output for backward."""
        raise NotImplementedError("Tanh.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); tanh'(x) = 1 - y^2."""
        raise NotImplementedError("Tanh.backward: write your solution here")


class ReLU:
    def forward(self, x):
        """(...) -> (...); max(0, x), caches the mask x > 0."""
        raise NotImplementedError("ReLU.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); the gradient passes where x > 0, is 0 elsewhere."""
        raise NotImplementedError("ReLU.backward: write your solution here")


class LeakyReLU:
    def __init__(self, slope=0.1):
        self.slope = slope

    def forward(self, x):
        """(...) -> (...); x where x >= 0, slope * x elsewhere; caches the mask."""
        raise NotImplementedError("LeakyReLU.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x >= 0, slope elsewhere."""
        raise NotImplementedError("LeakyReLU.backward: write your solution here")


class ELU:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        """(...) -> (...); x where x > 0, alpha * (exp(x) - 1) elsewhere; caches x."""
        raise NotImplementedError("ELU.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); the derivative is 1 where x > 0, alpha * exp(x) elsewhere."""
        raise NotImplementedError("ELU.backward: write your solution here")


class Softplus:
    def forward(self, x):
        """(...) -> (...); log(1 + exp(x)), caches x for backward."""
        raise NotImplementedError("Softplus.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); softplus'(x) = sigmoid(x), computed in the stable form."""
        raise NotImplementedError("Softplus.backward: write your solution here")


class GELU:
    def forward(self, x):
        """(...) -> (...); x * Phi(x), Phi the standard normal CDF; caches x and Phi(x)."""
        raise NotImplementedError("GELU.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); (x Phi(x))' = Phi(x) + x * phi(x), phi the normal density."""
        raise NotImplementedError("GELU.backward: write your solution here")


class Softmax:
    def forward(self, x):
        """(..., C) -> (..., C); softmax over the last dim, caches the output."""
        raise NotImplementedError("Softmax.forward: write your solution here")

    def backward(self, grad_out):
        """(..., C) -> (..., C); the Jacobian diag(y) - y y^T applied to grad_out."""
        raise NotImplementedError("Softmax.backward: write your solution here")


class LogSoftmax:
    def forward(self, x):
        """(..., C) -> (..., C); log-softmax over the last dim, caches softmax."""
        raise NotImplementedError("LogSoftmax.forward: write your solution here")

    def backward(self, grad_out):
        """(..., C) -> (..., C); grad_out - softmax * (sum of grad_out over the last dim)."""
        raise NotImplementedError("LogSoftmax.backward: write your solution here")
