"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    s = torch.matmul(x, w)
    out = torch.zeros_like(s)
    out[s >= theta] = 1.0
    return out


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    N, d = X.shape
    w = torch.zeros(d, dtype=X.dtype, device=X.device)
    b = torch.tensor(0.0, dtype=X.dtype, device=X.device)
    for ep in range(epochs):
        for i in range(N):
            if torch.dot(X[i], w) + b > 0:
                pred = 1
            else:
                pred = 0
            update = lr * (float(y[i]) - pred)
            w = w + update * X[i]
            b = b + update
    return w, b


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    N = X.shape[0]
    A = torch.cat((torch.ones(N, 1, dtype=X.dtype, device=X.device), X), dim=1)
    # least squares via the pseudo-inverse
    return torch.linalg.pinv(A) @ y


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    N = X.shape[0]
    y = y.to(X.dtype)
    z = X @ w + b
    p = 1 / (1 + torch.exp(-z))  # sigmoid
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    dw = X.T @ (p - y) / N
    db = (p - y).sum() / N
    return loss, dw, db
