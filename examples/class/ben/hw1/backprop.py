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
        self.x = x
        out = torch.matmul(x, self.W) + self.b
        return out

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        self.dW = torch.matmul(self.x.t(), grad_out)
        self.db = torch.sum(grad_out, dim=0)
        dx = torch.matmul(grad_out, self.W.t())
        return dx

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        self.d = pred - target
        return torch.mean(self.d**2)

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        return 2 * self.d / self.d.numel()


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        N = logits.shape[0]
        exps = torch.exp(logits)
        self.probs = exps / torch.sum(exps, dim=1, keepdim=True)
        self.target = target
        picked = self.probs[torch.arange(N), target]
        return -torch.log(picked).mean()

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        N = self.probs.shape[0]
        d = self.probs.clone()
        d[torch.arange(N), self.target] -= 1
        return d / N


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        for l in self.layers:
            x = l.forward(x)
        return x

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        for i in range(len(self.layers) - 1, -1, -1):
            grad_out = self.layers[i].backward(grad_out)
        return grad_out

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        ps = []
        for l in self.layers:
            try:
                ps += l.parameters()
            except AttributeError:
                pass  # activations have no parameters
        return ps

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        gs = []
        for l in self.layers:
            try:
                gs += l.gradients()
            except AttributeError:
                pass
        return gs


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
        if self.training:
            self.mask = (torch.rand_like(x) > self.p).to(x.dtype) / (1 - self.p)
            return x * self.mask
        self.mask = None
        return x

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        if self.mask is None:
            return grad_out
        return grad_out * self.mask


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
            mean = x.mean(dim=0)
            var = x.var(dim=0, unbiased=False)
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * x.var(dim=0, unbiased=True)
        else:
            mean = self.running_mean
            var = self.running_var
        self.istd = 1.0 / torch.sqrt(var + self.eps)
        self.xhat = (x - mean) * self.istd
        return self.gamma * self.xhat + self.beta

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        N = grad_out.shape[0]
        self.dgamma = torch.sum(grad_out * self.xhat, dim=0)
        self.dbeta = torch.sum(grad_out, dim=0)
        dxhat = grad_out * self.gamma
        if not self.training:
            return dxhat * self.istd
        dx = (self.istd / N) * (N * dxhat - dxhat.sum(dim=0) - self.xhat * torch.sum(dxhat * self.xhat, dim=0))
        return dx

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
