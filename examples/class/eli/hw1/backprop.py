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
        self.inputs = x
        return x @ self.W + self.b

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        self.dW = self.inputs.T @ grad_out
        self.db = grad_out.sum(0)
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
        self.pred, self.target = pred, target
        return ((pred - target) ** 2).sum() / pred.numel()

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        return 2 * (self.pred - self.target) / self.pred.numel()


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        z = logits - logits.amax(1, keepdim=True)
        logsm = z - torch.log(torch.exp(z).sum(1, keepdim=True))
        self.sm = torch.exp(logsm)
        self.idx = target
        return -logsm[torch.arange(len(target), device=logits.device), target].mean()

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        n, c = self.sm.shape
        onehot = (self.idx[:, None] == torch.arange(c, device=self.sm.device)[None, :]).to(self.sm.dtype)
        return (self.sm - onehot) / n


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        return [p for l in self.layers if hasattr(l, "parameters") for p in l.parameters()]

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        return [g for l in self.layers if hasattr(l, "gradients") for g in l.gradients()]


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
        if not self.training:
            self.m = None
            return x
        self.m = (torch.rand_like(x) >= self.p).to(x.dtype) / (1 - self.p)
        return self.m * x

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        return grad_out if self.m is None else self.m * grad_out


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
            n = x.shape[0]
            mean = x.sum(0) / n
            sq = ((x - mean) ** 2).sum(0)
            var = sq / n
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * sq / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv_std = (var + self.eps) ** -0.5
        self.x_hat = (x - mean) * self.inv_std
        return self.gamma * self.x_hat + self.beta

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        self.dgamma = (grad_out * self.x_hat).sum(0)
        self.dbeta = grad_out.sum(0)
        dxh = grad_out * self.gamma
        if not self.training:
            return dxh * self.inv_std
        n = grad_out.shape[0]
        return self.inv_std / n * (n * dxh - dxh.sum(0) - self.x_hat * (dxh * self.x_hat).sum(0))

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
