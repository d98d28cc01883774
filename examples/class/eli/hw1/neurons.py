"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    return (x @ w - theta >= 0) * torch.ones((), dtype=x.dtype, device=x.device)


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    w = X.new_zeros(X.shape[1])
    b = X.new_zeros([])
    for epoch in range(epochs):
        mistakes = 0
        for xi, target in zip(X, y):
            out = 1.0 if (w @ xi + b) > 0 else 0.0
            diff = float(target) - out
            if diff:
                mistakes += 1
                w = w + (lr * diff) * xi
                b = b + lr * diff
        # note: no early stop, the spec wants exactly `epochs` passes
    return w, b


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    A = torch.column_stack([torch.ones(len(X), dtype=X.dtype, device=X.device), X])
    sol = torch.linalg.lstsq(A, y[:, None])
    return sol.solution[:, 0]


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    y = y.to(X.dtype)
    z = X @ w + b
    a = torch.abs(z)
    # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|)
    lse = torch.maximum(z, torch.zeros_like(z)) + torch.log1p(torch.exp(-a))
    loss = (lse - y * z).mean()
    e = torch.exp(-a)
    p = torch.where(z >= 0, 1 / (1 + e), e / (1 + e))
    g = (p - y) / len(y)
    return loss, g @ X, g.sum()
