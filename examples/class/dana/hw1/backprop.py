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
        self.last_x = x
        return x.matmul(self.W).add(self.b)

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        self.dW = self.last_x.transpose(0, 1).matmul(grad_out)
        self.db = grad_out.sum(0)
        return grad_out.matmul(self.W.transpose(0, 1))

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        self.delta = pred - target
        return self.delta.square().mean()

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        return self.delta.mul(2).div(self.delta.numel())


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        shifted = logits - logits.max(dim=1, keepdim=True).values
        logZ = shifted.exp().sum(dim=1, keepdim=True).log()
        logp = shifted - logZ
        self.p = logp.exp()
        self.y = target
        return -logp.gather(1, target.unsqueeze(1)).mean()

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        g = self.p.scatter_add(1, self.y.unsqueeze(1), -torch.ones_like(self.p[:, :1]))
        return g / self.y.numel()


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
        for layer in self.layers[::-1]:
            grad_out = layer.backward(grad_out)
        return grad_out

    def _collect(self, method):
        out = []
        for layer in self.layers:
            if hasattr(layer, method):
                out.extend(getattr(layer, method)())
        return out

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        return self._collect("parameters")

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        return self._collect("gradients")


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
            keep = torch.rand_like(x) >= self.p
            self.factor = keep.to(x.dtype) * (1.0 / (1.0 - self.p))
        else:
            self.factor = torch.ones_like(x)
        return x * self.factor

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        return grad_out * self.factor


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
            var, mean = torch.var_mean(x, dim=0, correction=0)
            n = x.shape[0]
            self.running_mean = torch.lerp(self.running_mean.to(x.dtype), mean, self.momentum)
            self.running_var = torch.lerp(self.running_var.to(x.dtype), var * n / (n - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        self.rstd = (var + self.eps).rsqrt()
        self.xhat = (x - mean) * self.rstd
        return self.xhat * self.gamma + self.beta

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        self.dbeta = grad_out.sum(0)
        self.dgamma = (grad_out * self.xhat).sum(0)
        gx = grad_out * self.gamma
        if self.training:
            gx = gx - gx.mean(0) - self.xhat * (gx * self.xhat).mean(0)
        return gx * self.rstd

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
