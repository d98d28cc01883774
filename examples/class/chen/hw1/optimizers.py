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
        with torch.no_grad():
            for p, grad, buf in zip(self.params, grads, self.velocity):
                d = grad + self.weight_decay * p if self.weight_decay else grad.clone()
                buf.mul_(self.momentum).add_(d)
                direction = d.add(buf, alpha=self.momentum) if self.nesterov else buf
                p.sub_(self.lr * direction)


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr = lr
        self.eps = eps
        self.sum_sq = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(sum of all past g^2) + eps)."""
        for k, g in enumerate(grads):
            self.sum_sq[k].add_(g.square())
            self.params[k].sub_(self.lr * g / (self.sum_sq[k].sqrt() + self.eps))


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.sq_avg = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(moving average of g^2) + eps)."""
        for k, g in enumerate(grads):
            self.sq_avg[k].mul_(self.alpha).add_((1 - self.alpha) * g.square())
            self.params[k].sub_(self.lr * g / (self.sq_avg[k].sqrt() + self.eps))


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

    def step(self, grads):
        """Updates each p in place: p -= lr * m_hat / (sqrt(v_hat) + eps)."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for k, g in enumerate(grads):
            p = self.params[k]
            g = g + self.weight_decay * p
            self.m[k].lerp_(g, 1 - b1)  # m = b1 m + (1 - b1) g
            self.v[k].mul_(b2).add_((1 - b2) * g * g)
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))


class AdamW:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads):
        """Updates each p in place: Adam without L2, plus p -= lr * weight_decay * p."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for k, g in enumerate(grads):
            p = self.params[k]
            p.mul_(1 - self.lr * self.weight_decay)
            self.m[k].lerp_(g, 1 - b1)
            self.v[k].mul_(b2).add_((1 - b2) * g * g)
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps))
