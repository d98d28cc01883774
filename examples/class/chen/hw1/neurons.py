"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    net = torch.mv(x, w)
    return torch.where(net >= theta, torch.ones_like(net), torch.zeros_like(net))


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    w = torch.zeros_like(X[0])
    b = torch.zeros_like(X[0, 0])
    for _ in range(epochs):
        for xi, yi in zip(X, y):
            yhat = float(torch.dot(xi, w) + b > 0)
            err = float(yi) - yhat
            # Rosenblatt: move only on mistakes (err is 0 otherwise)
            w = w + lr * err * xi
            b = b + lr * err
    return w, b


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    # center the data: the slope comes from the centered problem, the intercept from the means
    x_mean = X.mean(dim=0)
    y_mean = y.mean()
    Xc = X - x_mean
    yc = y - y_mean
    slope = torch.linalg.lstsq(Xc, yc.unsqueeze(-1)).solution.squeeze(-1)
    intercept = y_mean - x_mean @ slope
    return torch.cat([intercept.reshape(1), slope])


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    y = y.to(X.dtype)
    z = X @ w + b
    # log(sigmoid(z)) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z)
    # softplus(t) = max(t, 0) + log1p(exp(-|t|)) never overflows
    sp_pos = torch.clamp(z, min=0) + torch.log1p(torch.exp(-torch.abs(z)))
    sp_neg = sp_pos - z
    loss = torch.mean(y * sp_neg + (1 - y) * sp_pos)
    p = torch.exp(-sp_neg)  # sigmoid(z)
    err = (p - y) / X.shape[0]
    return loss, X.t() @ err, err.sum()
