"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    return torch.ge(x @ w, theta).to(dtype=x.dtype)


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    # keep the bias as an extra weight on a constant input of 1
    Xb = torch.cat([X, torch.ones_like(X[:, :1])], dim=1)
    wb = torch.zeros_like(Xb[0])
    for _ in range(epochs):
        for i in range(len(Xb)):
            pred = 1.0 if float(Xb[i] @ wb) > 0 else 0.0
            wb = wb + lr * (float(y[i]) - pred) * Xb[i]
    return wb[:-1], wb[-1]


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    A = torch.cat([torch.ones_like(X[:, :1]), X], dim=1)
    # QR: A = QR, then R w = Q^T y
    Q, R = torch.linalg.qr(A)
    return torch.linalg.solve_triangular(R, (Q.T @ y).unsqueeze(1), upper=True).squeeze(1)


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    z = X @ w + b
    t = y.to(z.dtype)
    # -[t log s(z) + (1-t) log(1 - s(z))] = log(1 + e^z) - t z, with log(1 + e^z) written stably
    log1pexp = z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))
    loss = torch.mean(log1pexp - t * z)
    s = torch.exp(z - log1pexp)  # sigmoid(z) = e^z / (1 + e^z)
    r = (s - t) / z.numel()
    return loss, r @ X, r.sum()
