"""A correct hw1 `neurons.py` written differently from the reference.

Used by the project's tests: a grader must give it full marks too.
"""

import torch


def threshold_neuron(x, w, theta):
    s = torch.einsum("nd,d->n", x, w)
    # heaviside(0) takes the given value 1: s - theta == 0 exactly when s == theta
    return torch.heaviside(s - theta, torch.ones((), dtype=s.dtype, device=s.device))


def perceptron_fit(X, y, lr=1.0, epochs=10):
    n, d = X.shape
    w = X.new_zeros(d)
    b = X.new_zeros(())
    targets = y.tolist()
    for _ in range(epochs):
        for i in range(n):
            fired = bool(torch.dot(X[i], w) + b > 0)
            delta = lr * (targets[i] - int(fired))
            if delta:
                w = w + delta * X[i]
                b = b + delta
    return w, b


def linear_regression_fit(X, y):
    A = torch.cat([X.new_ones(X.shape[0], 1), X], dim=1)
    # minimum-norm least-squares solution through the pseudo-inverse
    return torch.linalg.pinv(A) @ y


def logistic_regression_loss_grad(X, y, w, b):
    z = torch.einsum("nd,d->n", X, w) + b
    t = y.to(z.dtype)
    zeros = torch.zeros_like(z)
    # -log p = softplus(-z), -log(1 - p) = softplus(z)
    nll = t * torch.logaddexp(zeros, -z) + (1 - t) * torch.logaddexp(zeros, z)
    p = torch.exp(-torch.logaddexp(zeros, -z))
    r = (p - t) / X.shape[0]
    return nll.mean(), torch.einsum("nd,n->d", X, r), r.sum()
