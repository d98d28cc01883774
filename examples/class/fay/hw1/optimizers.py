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
        raise NotImplementedError("SGD.step: write your solution here")


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr = lr
        self.eps = eps
        self.sum_sq = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(sum of all past g^2) + eps)."""
        raise NotImplementedError("AdaGrad.step: write your solution here")


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.sq_avg = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(moving average of g^2) + eps)."""
        raise NotImplementedError("RMSProp.step: write your solution here")


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
        raise NotImplementedError("Adam.step: write your solution here")


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
        raise NotImplementedError("AdamW.step: write your solution here")
