"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    h = x @ w
    # step function: fire (1) when the weighted sum reaches the threshold
    return torch.heaviside(h - theta, torch.ones_like(h))


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    n, d = X.shape
    w = torch.zeros(d, dtype=X.dtype, device=X.device)
    b = torch.zeros((), dtype=X.dtype, device=X.device)
    for epoch in range(epochs):
        for i in range(n):
            activation = torch.dot(X[i], w) + b
            prediction = 1.0 if activation.item() > 0 else 0.0
            error = y[i].item() - prediction
            w = w + lr * error * X[i]
            b = b + lr * error
    return w, b


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    n = X.shape[0]
    design = torch.cat([X.new_ones(n, 1), X], dim=1)
    # SVD-based least squares: w = V diag(1/s) U^T y
    U, S, Vh = torch.linalg.svd(design, full_matrices=False)
    return Vh.T @ ((U.T @ y) / S)


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    n = X.shape[0]
    y = y.to(dtype=X.dtype)
    z = X @ w + b
    # -log(sigmoid(z)) = log(1 + exp(-z)) = logaddexp(0, -z)
    zero = torch.zeros_like(z)
    nll_pos = torch.logaddexp(zero, -z)  # -log p
    nll_neg = torch.logaddexp(zero, z)  # -log (1 - p)
    loss = (y * nll_pos + (1 - y) * nll_neg).mean()
    p = torch.exp(-nll_pos)
    dz = (p - y) / n
    return loss, X.T @ dz, dz.sum()
