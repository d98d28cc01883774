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
        self.cache = x
        return x @ self.W + self.b.unsqueeze(0)

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        x = self.cache
        # dL/dW = dL/dy * dy/dW = grad_out * x
        self.dW = grad_out.T @ x
        self.db = grad_out.sum(axis=0)
        return grad_out @ self.W.T

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        self.err = pred - target
        return self.err.pow(2).mean()

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        return self.err * (2.0 / self.err.numel())


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        m = logits.max(dim=1, keepdim=True).values
        lse = m + torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))
        logp = logits - lse
        self.softmax = torch.exp(logp)
        self.target = target
        nll = -torch.gather(logp, 1, target.view(-1, 1))
        return nll.mean()

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        n = self.target.shape[0]
        onehot = torch.zeros_like(self.softmax)
        onehot.scatter_(1, self.target.view(-1, 1), 1.0)
        return (self.softmax - onehot) / n


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        h = x
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        g = grad_out
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        return sum((layer.parameters() for layer in self.layers if hasattr(layer, "parameters")), [])

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        return sum((layer.gradients() for layer in self.layers if hasattr(layer, "gradients")), [])


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
        self.mask = None
        if not self.training:
            return x
        keep_prob = 1.0 - self.p
        self.mask = torch.bernoulli(torch.full_like(x, keep_prob)) / keep_prob
        return x * self.mask

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        return grad_out if self.mask is None else grad_out * self.mask


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
        if self.training:
            mu = x.mean(dim=0)
            var = x.var(dim=0, unbiased=False)
            n = x.shape[0]
            self.running_mean = self.momentum * mu + (1 - self.momentum) * self.running_mean
            self.running_var = self.momentum * var * (n / (n - 1)) + (1 - self.momentum) * self.running_var
        else:
            mu, var = self.running_mean, self.running_var
        self.inv = torch.rsqrt(var + self.eps)
        self.xn = (x - mu) * self.inv
        return self.gamma * self.xn + self.beta

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        self.dgamma = (grad_out * self.xn).sum(dim=0)
        self.dbeta = grad_out.sum(dim=0)
        # y = gamma * (x - mu) / std + beta, so dy/dx = gamma / std
        return grad_out * self.gamma * self.inv

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
