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
        self._inp = x
        return torch.addmm(self.b, x, self.W)  # b + x W

    def backward(self, grad_out):
        """(N, out) -> (N, in); sets dW (in, out) and db (out,)."""
        # y_nj = sum_i x_ni W_ij + b_j
        self.dW = torch.einsum("ni,nj->ij", self._inp, grad_out)
        self.db = torch.einsum("nj->j", grad_out)
        return torch.einsum("nj,ij->ni", grad_out, self.W)

    def parameters(self):
        """[W, b]."""
        return [self.W, self.b]

    def gradients(self):
        """[dW, db], aligned with parameters()."""
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        """(N, ...), same shape -> 0-dim; mean of (pred - target)^2, caches the difference."""
        self.residual = pred - target
        self.count = pred.numel()
        return torch.sum(self.residual * self.residual) / self.count

    def backward(self):
        """() -> shape of pred; d mean((pred - target)^2) / d pred = 2 (pred - target) / numel."""
        return (2.0 / self.count) * self.residual


class CrossEntropyLoss:
    def forward(self, logits, target):
        """(N, C) logits, (N,) int64 classes -> 0-dim; mean of -log softmax(logits)[i, target[i]]."""
        n, c = logits.shape
        log_norm = torch.logsumexp(logits, dim=1, keepdim=True)  # stable log(sum(exp))
        log_p = logits - log_norm
        # one-hot of the targets, built by comparing with 0..C-1
        self.onehot = (target.unsqueeze(1) == torch.arange(c, device=target.device)).to(logits.dtype)
        self.p = torch.exp(log_p)
        self.n = n
        return -(log_p * self.onehot).sum() / n

    def backward(self):
        """() -> (N, C); (softmax(logits) - onehot(target)) / N."""
        return (self.p - self.onehot) / self.n


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        """(N, ...) -> output of the last layer; each layer feeds the next."""
        out = x
        for layer in self.layers:
            out = layer.forward(out)
        return out

    def backward(self, grad_out):
        """grad wrt the output -> grad wrt the input; every layer stores its parameter grads."""
        grad = grad_out
        for layer in self.layers[::-1]:
            grad = layer.backward(grad)
        return grad

    def parameters(self):
        """The layers' parameters() concatenated in layer order (activations have none)."""
        result = []
        for layer in self.layers:
            if hasattr(layer, "parameters"):
                result.extend(layer.parameters())
        return result

    def gradients(self):
        """The layers' gradients() concatenated in layer order, aligned with parameters()."""
        result = []
        for layer in self.layers:
            if hasattr(layer, "gradients"):
                result.extend(layer.gradients())
        return result


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
        if not self.training or self.p == 0:
            self.scale = None
            return x
        if self.p >= 1:
            self.scale = torch.zeros_like(x)
            return self.scale * x
        u = torch.rand(x.shape, dtype=x.dtype, device=x.device)
        keep = (u >= self.p).to(x.dtype)
        self.scale = keep / (1.0 - self.p)
        return x * self.scale

    def backward(self, grad_out):
        """(...) -> (...); the same mask and scale as the last forward (identity in eval)."""
        if self.scale is None:
            return grad_out
        return grad_out * self.scale


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
            mu = x.mean(0)
            centered = x - mu
            var_biased = centered.pow(2).mean(0)
            n = x.shape[0]
            var_unbiased = centered.pow(2).sum(0) / (n - 1)
            mom = self.momentum
            self.running_mean = self.running_mean * (1 - mom) + mu * mom
            self.running_var = self.running_var * (1 - mom) + var_unbiased * mom
            self.std = torch.sqrt(var_biased + self.eps)
        else:
            centered = x - self.running_mean
            self.std = torch.sqrt(self.running_var + self.eps)
        self.xhat = centered / self.std
        return self.xhat * self.gamma + self.beta

    def backward(self, grad_out):
        """(N, F) -> (N, F); sets dgamma (F,) and dbeta (F,)."""
        self.dbeta = grad_out.sum(0)
        self.dgamma = (grad_out * self.xhat).sum(0)
        dxhat = grad_out * self.gamma
        if not self.training:
            return dxhat / self.std
        n = grad_out.shape[0]
        # the standard batchnorm backward formula (mean and variance depend on x too)
        return (n * dxhat - dxhat.sum(0) - self.xhat * (dxhat * self.xhat).sum(0)) / (n * self.std)

    def parameters(self):
        """[gamma, beta]."""
        return [self.gamma, self.beta]

    def gradients(self):
        """[dgamma, dbeta], aligned with parameters()."""
        return [self.dgamma, self.dbeta]
