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
        for idx, param in enumerate(self.params):
            d_p = grads[idx]
            if self.weight_decay:
                d_p = d_p + self.weight_decay * param
            if self.momentum:
                # buf <- mu * buf + d_p   (buf starts at zero, so step 1 gives buf = d_p)
                buf = self.velocity[idx]
                buf.mul_(self.momentum).add_(d_p)
                d_p = d_p + self.momentum * buf if self.nesterov else buf
            param.add_(d_p, alpha=-self.lr)


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr = lr
        self.eps = eps
        self.sum_sq = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(sum of all past g^2) + eps)."""
        for param, grad, acc in zip(self.params, grads, self.sum_sq):
            acc.addcmul_(grad, grad)
            denom = acc.sqrt().add_(self.eps)
            param.addcdiv_(grad, denom, value=-self.lr)


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.sq_avg = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(moving average of g^2) + eps)."""
        for param, grad, avg in zip(self.params, grads, self.sq_avg):
            avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
            param.addcdiv_(grad, avg.sqrt().add_(self.eps), value=-self.lr)


def _adam_update(param, grad, m, v, lr, beta1, beta2, eps, t):
    """One bias-corrected Adam move of `param` (in place); m and v are updated in place too."""
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    corr1 = 1 - beta1**t
    corr2 = 1 - beta2**t
    denom = (v / corr2).sqrt().add_(eps)
    param.addcdiv_(m, denom, value=-lr / corr1)


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
        for i, param in enumerate(self.params):
            g = grads[i]
            if self.weight_decay != 0:
                g = g + self.weight_decay * param  # plain L2: goes through the adaptive scaling
            _adam_update(param, g, self.m[i], self.v[i], self.lr, self.beta1, self.beta2, self.eps, self.t)


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
        for i, param in enumerate(self.params):
            # decoupled decay first, then the ordinary Adam step with the raw gradient
            param.mul_(1 - self.lr * self.weight_decay)
            _adam_update(param, grads[i], self.m[i], self.v[i], self.lr, self.beta1, self.beta2, self.eps, self.t)
