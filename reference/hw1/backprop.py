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
        # BEGIN SOLUTION
        self.x = x
        return x @ self.W + self.b
        # END SOLUTION

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        # BEGIN SOLUTION
        self.dW = self.x.T @ grad_out
        # b is added to every row of the batch, so the gradients of all rows add up
        self.db = grad_out.sum(dim=0)
        return grad_out @ self.W.T
        # END SOLUTION

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        # BEGIN SOLUTION
        self.diff = pred - target
        return (self.diff**2).mean()
        # END SOLUTION

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        # BEGIN SOLUTION
        return 2 * self.diff / self.diff.numel()
        # END SOLUTION


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        # BEGIN SOLUTION
        # shift by the row max (softmax is unchanged): exp(z) <= 1 never overflows
        z = logits - logits.amax(dim=1, keepdim=True)
        log_probs = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
        self.probs = torch.exp(log_probs)
        self.rows = torch.arange(len(target), device=target.device)
        self.target = target
        return -log_probs[self.rows, target].mean()
        # END SOLUTION

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        # BEGIN SOLUTION
        grad = self.probs.clone()  # a fresh tensor: the cached probabilities stay intact
        grad[self.rows, self.target] -= 1
        return grad / len(self.target)
        # END SOLUTION


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        # BEGIN SOLUTION
        for layer in self.layers:
            x = layer.forward(x)
        return x
        # END SOLUTION

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        # BEGIN SOLUTION
        # the chain rule runs from the output back to the input: last layer first
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out
        # END SOLUTION

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        # BEGIN SOLUTION
        return [p for layer in self.layers if hasattr(layer, "parameters") for p in layer.parameters()]
        # END SOLUTION

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        # BEGIN SOLUTION
        return [g for layer in self.layers if hasattr(layer, "gradients") for g in layer.gradients()]
        # END SOLUTION


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
        # BEGIN SOLUTION
        if not self.training:
            self.mask = None
            return x
        keep = torch.rand_like(x) >= self.p  # True with probability 1 - p
        # inverted dropout: scaling the kept entries now keeps E[output] = x,
        # so at eval time the layer is simply the identity
        self.mask = keep.to(x.dtype) / (1 - self.p) if self.p < 1 else torch.zeros_like(x)
        return x * self.mask
        # END SOLUTION

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        # BEGIN SOLUTION
        return grad_out if self.mask is None else grad_out * self.mask
        # END SOLUTION


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
        # BEGIN SOLUTION
        if self.training:
            mean = x.mean(dim=0)
            # normalize with the batch's own spread: the biased variance (divide by N) ...
            var = ((x - mean) ** 2).mean(dim=0)
            # ... but track the population variance with the unbiased one (N - 1), as torch does
            n, m = x.shape[0], self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = 1 / torch.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std
        return self.gamma * self.x_hat + self.beta
        # END SOLUTION

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        # BEGIN SOLUTION
        self.dgamma = (grad_out * self.x_hat).sum(dim=0)
        self.dbeta = grad_out.sum(dim=0)
        g = grad_out * self.gamma  # grad wrt x_hat
        if not self.training:
            # the running stats are constants: x_hat is an affine function of x
            return g * self.inv_std
        # in training the batch mean and variance depend on x too; their share of the
        # gradient removes the mean of g and the component of g along x_hat
        return self.inv_std * (g - g.mean(dim=0) - self.x_hat * (g * self.x_hat).mean(dim=0))
        # END SOLUTION

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
