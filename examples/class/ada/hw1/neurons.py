"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def _log1p_exp(z):
    # log(1 + e^z) without overflow: logaddexp(0, z) shifts by max(0, z) internally
    return torch.logaddexp(torch.zeros_like(z), z)


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    activation = x @ w
    fires = activation >= theta
    return fires.type_as(x)


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    n_samples, n_features = X.shape
    weights = X.new_zeros(n_features)
    bias = X.new_zeros(())
    for epoch in range(epochs):
        for k in range(n_samples):
            xk = X[k]
            guess = 1.0 if (xk @ weights + bias).item() > 0 else 0.0
            delta = lr * (y[k].item() - guess)
            if delta != 0:  # only mistakes move the hyperplane
                weights = weights + delta * xk
                bias = bias + delta
    return weights, bias


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    ones = X.new_ones(X.shape[0], 1)
    design = torch.hstack([ones, X])
    # normal equations: (A^T A) w = A^T y. Fine for the small, well-conditioned
    # problems of this homework (lstsq would be the robust choice for ugly data).
    gram = design.T @ design
    rhs = design.T @ y
    return torch.linalg.solve(gram, rhs)


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    logits = X @ w + b
    targets = y.to(logits.dtype)
    n = logits.shape[0]
    # BCE(sigmoid(z), y) = log(1 + e^z) - y*z, which is fine even for |z| = 1000
    loss = (_log1p_exp(logits) - targets * logits).mean()
    # sigmoid(z) = exp(-log(1 + e^-z)), again without ever overflowing
    probs = torch.exp(-_log1p_exp(-logits))
    residual = (probs - targets) / n
    grad_w = residual @ X
    grad_b = residual.sum()
    return loss, grad_w, grad_b
