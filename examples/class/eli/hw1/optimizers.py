"""hw1, `optimizers.py`: first-order optimizers, step for step as in torch.optim.

An optimizer owns a list of parameter tensors (`self.params`) and whatever
running state its rule needs (velocities, squared-gradient averages, a step
counter). `step(grads)` applies one update. The updates are done in place, as
torch.optim does, so an optimizer built on `model.parameters()` trains the
model's own tensors. The gradients passed in are never modified.
"""

import torch


class SGD:
    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.velocity = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * (gradient smoothed by momentum)."""
        new_params = []
        for p, g, v in zip(self.params, grads, self.velocity):
            g = g + self.weight_decay * p
            v.copy_(self.momentum * v + g)
            step = g + self.momentum * v if self.nesterov else v
            new_params.append(p - self.lr * step)
        self.params = new_params


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr = lr
        self.eps = eps
        self.sum_sq = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(sum of all past g^2) + eps)."""
        for k in range(len(self.params)):
            self.sum_sq[k] += grads[k] ** 2
            self.params[k] = self.params[k] - self.lr * grads[k] / (self.sum_sq[k] ** 0.5 + self.eps)


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.sq_avg = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(moving average of g^2) + eps)."""
        for k in range(len(self.params)):
            self.sq_avg[k] = self.alpha * self.sq_avg[k] + (1 - self.alpha) * grads[k] ** 2
            self.params[k] = self.params[k] - self.lr * grads[k] / (self.sq_avg[k] ** 0.5 + self.eps)


class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def _moments(self, k, g):
        self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * g
        self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * g**2
        m_hat = self.m[k] / (1 - self.beta1**self.t)
        v_hat = self.v[k] / (1 - self.beta2**self.t)
        return m_hat / (v_hat**0.5 + self.eps)

    def step(self, grads):
        """Updates each p in place: p -= lr * m_hat / (sqrt(v_hat) + eps)."""
        self.t += 1
        for k in range(len(self.params)):
            g = grads[k] + self.weight_decay * self.params[k]
            self.params[k] = self.params[k] - self.lr * self._moments(k, g)


class AdamW(Adam):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)

    def step(self, grads):
        """Updates each p in place: Adam without L2, plus p -= lr * weight_decay * p."""
        self.t += 1
        for k in range(len(self.params)):
            p = self.params[k] * (1 - self.lr * self.weight_decay)
            self.params[k] = p - self.lr * self._moments(k, grads[k])
