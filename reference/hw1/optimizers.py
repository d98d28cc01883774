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
        # BEGIN SOLUTION
        for p, g, v in zip(self.params, grads, self.velocity):
            g = g + self.weight_decay * p  # the gradient of the L2 penalty wd/2 * |p|^2
            v *= self.momentum  # v = momentum * v + g; from v = 0 the first v is g, as in torch
            v += g
            if self.nesterov:
                g = g + self.momentum * v  # look ahead along the velocity
            else:
                g = v
            p -= self.lr * g
        # END SOLUTION


class AdaGrad:
    def __init__(self, params, lr=0.01, eps=1e-10):
        self.params = list(params)
        self.lr = lr
        self.eps = eps
        self.sum_sq = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(sum of all past g^2) + eps)."""
        # BEGIN SOLUTION
        for p, g, s in zip(self.params, grads, self.sum_sq):
            # in place: `s = s + g * g` would only rebind the loop variable, not the state
            s += g * g
            # coordinates that have seen large gradients get smaller steps, for good
            p -= self.lr * g / (s.sqrt() + self.eps)
        # END SOLUTION


class RMSProp:
    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        self.params = list(params)
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.sq_avg = [torch.zeros_like(p) for p in self.params]

    def step(self, grads):
        """Updates each p in place: p -= lr * g / (sqrt(moving average of g^2) + eps)."""
        # BEGIN SOLUTION
        for p, g, v in zip(self.params, grads, self.sq_avg):
            # AdaGrad forgets nothing; an exponential moving average forgets old gradients
            v *= self.alpha
            v += (1 - self.alpha) * g * g
            p -= self.lr * g / (v.sqrt() + self.eps)  # eps outside the sqrt, as in torch
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.t += 1
        # m and v start at 0, so their early averages are biased towards 0: dividing by
        # 1 - beta^t undoes that (the weights of the averages so far sum to 1 - beta^t)
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            g = g + self.weight_decay * p  # Adam's weight decay is an L2 term in the gradient
            m *= self.beta1  # first moment: moving average of g
            m += (1 - self.beta1) * g
            v *= self.beta2  # second moment: moving average of g^2
            v += (1 - self.beta2) * g * g
            m_hat = m / bias1
            v_hat = v / bias2
            p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.t += 1
        bias1 = 1 - self.beta1**self.t
        bias2 = 1 - self.beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            # decoupled weight decay: shrink p directly. Added to g (as in Adam) the
            # decay would be divided by sqrt(v_hat) like the rest of the gradient.
            p *= 1 - self.lr * self.weight_decay
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            m_hat = m / bias1
            v_hat = v / bias2
            p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
        # END SOLUTION
