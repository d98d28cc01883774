"""A correct hw1 `backprop.py` written differently from the reference.

Used by the project's tests: a grader must give it full marks too.
"""

import functools

import torch


class Linear:
    def __init__(self, in_features, out_features):
        scale = in_features**-0.5
        self.W = torch.empty(in_features, out_features).uniform_(-scale, scale)
        self.b = torch.empty(out_features).uniform_(-scale, scale)
        self.dW = self.db = None

    def forward(self, x):
        self.inp = x
        return torch.einsum("ni,io->no", x, self.W) + self.b

    def backward(self, grad_out):
        self.dW = torch.einsum("ni,no->io", self.inp, grad_out)
        self.db = torch.einsum("no->o", grad_out)
        return torch.einsum("no,io->ni", grad_out, self.W)

    def parameters(self):
        return [self.W, self.b]

    def gradients(self):
        return [self.dW, self.db]


class MSELoss:
    def forward(self, pred, target):
        self.r = pred - target
        self.n = pred.numel()
        return (self.r * self.r).sum() / self.n

    def backward(self):
        return self.r * (2.0 / self.n)


class CrossEntropyLoss:
    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values
        lse = torch.logsumexp(shifted, dim=1)
        picked = shifted.gather(1, target.unsqueeze(1)).squeeze(1)
        self.p = torch.exp(shifted - lse.unsqueeze(1))
        self.onehot = torch.zeros_like(logits).scatter_(1, target.unsqueeze(1), 1.0)
        return (lse - picked).sum() / logits.shape[0]

    def backward(self):
        return (self.p - self.onehot) / self.p.shape[0]


class Sequential:
    def __init__(self, *layers):
        self.layers = layers

    def forward(self, x):
        return functools.reduce(lambda h, layer: layer.forward(h), self.layers, x)

    def backward(self, grad_out):
        return functools.reduce(lambda g, layer: layer.backward(g), self.layers[::-1], grad_out)

    def parameters(self):
        out = []
        for layer in self.layers:
            out.extend(getattr(layer, "parameters", list)())
        return out

    def gradients(self):
        out = []
        for layer in self.layers:
            out.extend(getattr(layer, "gradients", list)())
        return out


class Dropout:
    def __init__(self, p=0.5):
        self.p = p
        self.training = True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def forward(self, x):
        if self.training and self.p > 0:
            keep = torch.bernoulli(torch.full_like(x, 1.0 - self.p))
            self.scale = keep * (1.0 / (1.0 - self.p)) if self.p < 1 else keep
        else:
            self.scale = torch.ones_like(x)
        return self.scale * x

    def backward(self, grad_out):
        return self.scale * grad_out


class BatchNorm1d:
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.gamma = torch.ones(num_features)
        self.beta = torch.zeros(num_features)
        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)
        self.dgamma = self.dbeta = None
        self.training = True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def forward(self, x):
        self.used_batch_stats = self.training
        if self.training:
            mu = x.mean(0)
            var = x.var(0, correction=0)
            unbiased = x.var(0, correction=1)
            self.running_mean = self.running_mean + self.momentum * (mu - self.running_mean)
            self.running_var = self.running_var + self.momentum * (unbiased - self.running_var)
        else:
            mu, var = self.running_mean, self.running_var
        self.xc = x - mu
        self.var = var
        self.std = torch.sqrt(var + self.eps)
        self.xn = self.xc / self.std
        return self.xn * self.gamma + self.beta

    def backward(self, grad_out):
        n = grad_out.shape[0]
        self.dbeta = grad_out.sum(0)
        self.dgamma = (grad_out * self.xn).sum(0)
        dxn = grad_out * self.gamma
        if not self.used_batch_stats:
            return dxn / self.std
        # chain rule through xn = xc / std, std = sqrt(var + eps), var = mean(xc^2), xc = x - mu
        dvar = (dxn * self.xc).sum(0) * -0.5 * (self.var + self.eps) ** -1.5
        dmu = -(dxn / self.std).sum(0) + dvar * (-2.0 * self.xc).mean(0)
        return dxn / self.std + dvar * 2.0 * self.xc / n + dmu / n

    def parameters(self):
        return [self.gamma, self.beta]

    def gradients(self):
        return [self.dgamma, self.dbeta]
