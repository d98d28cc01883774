"""hw1, `neurons.py`: single neurons and the classic linear models.

A McCulloch-Pitts threshold unit, Rosenblatt's perceptron rule, least-squares
linear regression with an intercept, and the loss and gradient of logistic
regression. Outputs keep the dtype and device of X; inputs are never modified.
"""

import torch


def threshold_neuron(x, w, theta):
    """(N, d), (d,), float -> (N,); 1.0 where x @ w >= theta, else 0.0."""
    # BEGIN SOLUTION
    return (x @ w >= theta).to(x.dtype)
    # END SOLUTION


def perceptron_fit(X, y, lr=1.0, epochs=10):
    """(N, d), (N,) in {0, 1} -> w (d,), b 0-dim; Rosenblatt's rule, one sample at a time."""
    # BEGIN SOLUTION
    w = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    b = torch.zeros((), dtype=X.dtype, device=X.device)
    for _ in range(epochs):
        for i in range(X.shape[0]):
            pred = 1.0 if X[i] @ w + b > 0 else 0.0
            # a right prediction changes nothing; a wrong one moves the boundary
            # towards x_i (missed a 1) or away from it (a false 1)
            err = float(y[i]) - pred
            w += lr * err * X[i]
            b += lr * err
    return w, b
    # END SOLUTION


def linear_regression_fit(X, y):
    """(N, d), (N,) -> (d + 1,); argmin |[1 X] w - y|^2, w[0] is the intercept."""
    # BEGIN SOLUTION
    # a column of ones turns the intercept into one more weight
    A = torch.cat([torch.ones_like(X[:, :1]), X], dim=1)
    # lstsq works on A itself (an orthogonal factorization); the normal equations
    # A^T A w = A^T y square A's condition number and lose twice the digits
    return torch.linalg.lstsq(A, y.unsqueeze(1)).solution.squeeze(1)
    # END SOLUTION


def logistic_regression_loss_grad(X, y, w, b):
    """(N, d), (N,) in {0, 1}, (d,), 0-dim -> loss 0-dim, dw (d,), db 0-dim; mean binary cross-entropy."""
    # BEGIN SOLUTION
    z = X @ w + b
    y = y.to(z.dtype)
    # with p = sigmoid(z), -y log(p) - (1 - y) log(1 - p) = softplus(z) - y z. Written so,
    # it never takes log(0): softplus(z) = max(z, 0) + log1p(exp(-|z|)) has no overflow.
    e = torch.exp(-z.abs())
    loss = (z.clamp(min=0) + torch.log1p(e) - y * z).mean()
    p = torch.where(z >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(z) from the same exp(-|z|)
    dz = (p - y) / len(y)  # d loss / d z_i: the classic "prediction minus target", averaged
    return loss, X.T @ dz, dz.sum()
    # END SOLUTION
