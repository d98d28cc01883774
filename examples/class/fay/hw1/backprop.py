"""hw1, `backprop.py`: layers and losses with hand-written backward passes.

A layer's `forward` caches what its backward needs; `backward(grad_out)` takes
the gradient of the loss with respect to the layer's output and returns the
one with respect to its input, storing the gradients of its own parameters on
the way (`dW`, `db`, `dgamma`, `dbeta`). A loss's `backward()` takes no
argument: the loss is where the chain rule starts. Chaining these by hand is
exactly what `loss.backward()` does for you in PyTorch.
"""

import math

import torch


class Linear:
    def __init__(self, in_features, out_features):
        # uniform in +-1/sqrt(in_features), the same range torch.nn.Linear uses
        bound = 1 / math.sqrt(in_features)
        self.W = (2 * torch.rand(in_features, out_features) - 1) * bound
        self.b = (2 * torch.rand(out_features) - 1) * bound
        self.dW = None
        self.db = None

    def forward(self, x):
        """(N, in) -> (N, out); x @ W + b, caches x for backward."""
        raise NotImplementedError("Linear.forward: write your solution here")

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        raise NotImplementedError("Linear.backward: write your solution here")

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        raise NotImplementedError("MSELoss.forward: write your solution here")

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        raise NotImplementedError("MSELoss.backward: write your solution here")


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        raise NotImplementedError("CrossEntropyLoss.forward: write your solution here")

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        raise NotImplementedError("CrossEntropyLoss.backward: write your solution here")


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        raise NotImplementedError("Sequential.forward: write your solution here")

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        raise NotImplementedError("Sequential.backward: write your solution here")

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        raise NotImplementedError("Sequential.parameters: write your solution here")

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        raise NotImplementedError("Sequential.gradients: write your solution here")


class Dropout:
    def __init__(self, p=0.5):
        self.p = p  # the probability of zeroing an entry
        self.training = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        """(...) -> (...); in training, zeroes each entry with probability p and scales the rest by 1/(1-p)."""
        raise NotImplementedError("Dropout.forward: write your solution here")

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        raise NotImplementedError("Dropout.backward: write your solution here")


class BatchNorm1d:
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps = eps
        self.momentum = momentum
        self.gamma = torch.ones(num_features)
        self.beta = torch.zeros(num_features)
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)
        self.dgamma = None
        self.dbeta = None
        self.training = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        """(N, F) -> (N, F); normalizes each feature, caches x_hat and 1/std for backward."""
        raise NotImplementedError("BatchNorm1d.forward: write your solution here")

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        raise NotImplementedError("BatchNorm1d.backward: write your solution here")

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
