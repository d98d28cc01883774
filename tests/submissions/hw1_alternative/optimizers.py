"""A correct hw1 `optimizers.py` written differently from the reference: out of place.

Each step builds new tensors and stores them in self.params and the state lists.
Used by the project's tests: a grader must give it full marks too.
"""

import math


class SGD:
    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.params = list(params)
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.buf = [None] * len(self.params)

    def step(self, grads):
        for i, g in enumerate(grads):
            p = self.params[i]
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                b = g if self.buf[i] is None else self.momentum * self.buf[i] + g
                self.buf[i] = b
                g = g + self.momentum * b if self.nesterov else b
            self.params[i] = p - self.lr * g


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr, self.eps = lr, eps
        self.acc = [0.0] * len(self.params)

    def step(self, grads):
        for i, g in enumerate(grads):
            self.acc[i] = self.acc[i] + g.square()
            self.params[i] = self.params[i] - self.lr * (g / (self.acc[i].sqrt() + self.eps))


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.avg = [0.0] * len(self.params)

    def step(self, grads):
        for i, g in enumerate(grads):
            self.avg[i] = self.alpha * self.avg[i] + (1 - self.alpha) * g.square()
            self.params[i] = self.params[i] - self.lr * g / (self.avg[i].sqrt() + self.eps)


class _AdamBase:
    decoupled = False

    def __init__(self, params, lr, betas, eps, weight_decay):
        self.params = list(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)
        self.steps = 0

    def step(self, grads):
        b1, b2 = self.betas
        self.steps += 1
        c1 = 1 - b1**self.steps
        c2 = math.sqrt(1 - b2**self.steps)
        for i, g in enumerate(grads):
            p = self.params[i]
            if self.weight_decay and not self.decoupled:
                g = g + self.weight_decay * p
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            update = (self.m[i] / c1) / (self.v[i].sqrt() / c2 + self.eps)
            if self.decoupled:
                update = update + self.weight_decay * p
            self.params[i] = p - self.lr * update


class Adam(_AdamBase):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas, eps, weight_decay)


class AdamW(_AdamBase):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)
