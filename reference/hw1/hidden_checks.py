"""hw1 hidden checks: run only by `autograder grade`, never shipped to students.

Inputs are drawn from a seed of (student id, assignment, check id): every
student gets other sizes and values, and a regrade gets the same ones. They
cover what the public checks leave out: float32 inputs (outputs keep their
dtype), other shapes, inputs left unmodified, extreme inputs where the
contract promises stability, and backward passes against the reference's.
"""

import torch

from autograder.checks import CheckList

from .public_checks import (
    ACTIVATIONS,
    F32,
    F64,
    batchnorm_pair,
    both,
    dropout_output,
    fixture_chain,
    linear,
    linear_regression,
    logistic,
    optimizer_steps,
    perceptron,
)

checks = CheckList()


def dims(t, count, low=2, high=7):
    """count random sizes in [low, high): the hidden shapes differ per student."""
    return t.randint(low, high, count).tolist()


# --- neurons.py ------------------------------------------------------------


@checks.hidden("neurons.threshold_neuron.ties", points=0.25)
def _(t):
    # Integer-valued inputs make x @ w exact, so rows with x @ w == theta are real ties (they fire).
    n, d = dims(t, 2, 4, 9)
    x, w = t.randint(-3, 4, n, d).to(F32), t.randint(-2, 3, d).to(F32)
    theta = float((x[0] @ w).item())
    got = t.student.neurons.threshold_neuron(x, w, theta)
    t.expect_equal(got, t.reference.neurons.threshold_neuron(x, w, theta))


@checks.hidden("neurons.perceptron_fit.not_separable", points=0.5)
def _(t):
    n, d = dims(t, 2, 6, 12)
    perceptron(t, t.randn(n, d), (t.randn(n) > 0).double(), lr=0.5, epochs=4)


@checks.hidden("neurons.linear_regression_fit.shapes", points=0.5)
def _(t):
    n, d = dims(t, 2, 2, 6)
    linear_regression(t, 10 * n, d)


@checks.hidden("neurons.logistic_regression_loss_grad.gradient", points=0.25)
def _(t):
    n, d = dims(t, 2, 3, 8)
    X, y = t.randn(n, d), (t.randn(n) > 0).double()
    w, b = t.randn(d), t.randn()

    def loss_of(function):
        return lambda w, b: function(X, y, w, b)[0]

    def backward_of(function):
        def backward(g):  # the gradients at the point checked, scaled by the upstream gradient
            _, dw, db = function(X, y, w, b)
            return {"w": g * dw, "b": g * db}

        return backward

    mine, ref = t.student.neurons.logistic_regression_loss_grad, t.reference.neurons.logistic_regression_loss_grad
    t.gradcheck(
        loss_of(mine), {"w": w, "b": b}, backward_of(mine), reference=(loss_of(ref), backward_of(ref)),
        what="dw, db of neurons.logistic_regression_loss_grad",
    )


@checks.hidden("neurons.logistic_regression_loss_grad.stable", points=0.25)
def _(t):
    X, w = t.randn(6, 2), t.randn(2)
    X = X * (1000.0 / (X @ w).abs().unsqueeze(1))  # every logit X @ w is +-1000
    logistic(t, X, (t.randn(6) > 0).double(), w, torch.tensor(0.0, dtype=F64))


# --- activations.py --------------------------------------------------------


def against_reference(t, module, name, x, **kwargs):
    """forward and backward on x (any dtype) against the reference in float64; inputs must stay untouched."""
    mine, ref = both(t, module, name, **kwargs)
    g = t.randn(*x.shape, dtype=x.dtype)
    y = t.expect_inputs_kept(mine.forward, x)
    t.expect_close(y, ref.forward(x.double()), dtype=x.dtype)
    dx = t.expect_inputs_kept(mine.backward, g)
    t.expect_close(dx, ref.backward(g.double()), dtype=x.dtype)


for _name, (_kwargs, _margin) in ACTIVATIONS.items():
    # float32 on (N, C) inputs as in the public checks, and other shapes in float64 apart,
    # so that a failure names what is wrong: the dtype, or the handling of more dimensions.

    @checks.hidden(f"activations.{_name}.float32", points=0.0625)
    def _(t, name=_name, kwargs=_kwargs, margin=_margin):
        against_reference(t, "activations", name, t.randn(*dims(t, 2), dtype=F32, scale=3.0, away_from_zero=margin), **kwargs)

    @checks.hidden(f"activations.{_name}.shapes", points=0.0625)
    def _(t, name=_name, kwargs=_kwargs, margin=_margin):
        # (A, B, C): softmax-like units work over the last dimension whatever comes before it
        against_reference(t, "activations", name, t.randn(*dims(t, 3), scale=3.0, away_from_zero=margin), **kwargs)


for _name in ("Sigmoid", "Softplus", "Softmax", "LogSoftmax"):

    @checks.hidden(f"activations.{_name}.stable", points=0.125)
    def _(t, name=_name):
        x = t.randn(4, 6, scale=300.0)
        x[:, 0], x[:, 1] = 1000.0, -1000.0  # the contract promises stability up to |x| = 1e3
        mine, ref = both(t, "activations", name)
        y = mine.forward(x)
        t.expect_finite(y)
        t.expect_close(y, ref.forward(x))
        g = t.randn(4, 6)
        dx = mine.backward(g)
        t.expect_finite(dx)
        t.expect_close(dx, ref.backward(g))


@checks.hidden("activations.ReLU.at_zero", points=0.125)
def _(t):
    x = t.randn(5, 4) * (t.randn(5, 4) > 0)  # about half the entries are exactly 0
    against_reference(t, "activations", "ReLU", x)


# --- backprop.py -----------------------------------------------------------


@checks.hidden("backprop.Linear.float32", points=0.25)
def _(t):
    n, d_in, d_out = dims(t, 3)
    layer, x, W, b = linear(t, n, d_in, d_out, dtype=F32)
    g = t.randn(n, d_out, dtype=F32)
    t.expect_close(t.expect_inputs_kept(layer.forward, x), (x.double() @ W.double() + b.double()), dtype=F32)
    t.expect_close(t.expect_inputs_kept(layer.backward, g), g.double() @ W.double().T, dtype=F32)
    t.expect_close(layer.dW, x.double().T @ g.double(), dtype=F32, what="Linear.dW")
    t.expect_close(layer.db, g.double().sum(0), dtype=F32, what="Linear.db")


@checks.hidden("backprop.MSELoss.shapes", points=0.25)
def _(t):
    # No size is 1 or 2: a divisor taken from part of the shape (the batch size, the
    # first two sizes) or a size standing in for the factor 2 never hits the right value.
    shape = dims(t, 3, 3, 8)
    pred, target = t.randn(*shape, dtype=F32), t.randn(*shape, dtype=F32)
    loss = t.student.backprop.MSELoss()
    value = t.expect_inputs_kept(loss.forward, pred, target)
    t.expect_close(value, ((pred.double() - target.double()) ** 2).mean(), dtype=F32)
    t.expect_close(loss.backward(), 2 * (pred.double() - target.double()) / pred.numel(), dtype=F32)


def cross_entropy(t, logits, target):
    mine, ref = both(t, "backprop", "CrossEntropyLoss")
    value = t.expect_inputs_kept(mine.forward, logits, target)
    t.expect_finite(value)
    t.expect_close(value, ref.forward(logits.double(), target), dtype=logits.dtype)
    grad = mine.backward()
    t.expect_finite(grad)
    t.expect_close(grad, ref.backward(), dtype=logits.dtype)


@checks.hidden("backprop.CrossEntropyLoss.float32", points=0.25)
def _(t):
    n, c = dims(t, 2, 3, 9)
    cross_entropy(t, t.randn(n, c, dtype=F32, scale=3.0), t.randint(0, c, n))


@checks.hidden("backprop.CrossEntropyLoss.stable", points=0.25)
def _(t):
    logits = t.randn(5, 4, scale=300.0)
    logits[:, 0] = 1000.0
    cross_entropy(t, logits, t.randint(0, 4, 5))


@checks.hidden("backprop.Sequential.parameters", points=0.25)
def _(t):
    model, torch_model, factors = fixture_chain(t)
    x = t.randn(*dims(t, 2))
    output = torch_model(x)
    g = t.randn(*output.shape)
    output.backward(g)
    model.forward(x)
    model.backward(g)
    what = "Sequential(Scale(2), Square(), Scale(-0.5))"
    params, grads = model.parameters(), model.gradients()
    t.expect_sequence(params, list, 2, what=f"{what}.parameters() (the 2 factors in layer order)")
    t.expect_sequence(grads, list, 2, what=f"{what}.gradients() (their gradients in layer order)")
    for i, factor in enumerate(factors):
        t.expect_close(params[i], factor.detach(), what=f"{what}.parameters()[{i}]")
        t.expect_close(grads[i], factor.grad, what=f"{what}.gradients()[{i}]")


@checks.hidden("backprop.Dropout.backward", points=0.25)
def _(t):
    p = [0.2, 0.5, 0.7][t.randint(0, 3).item()]
    x = t.uniform(*dims(t, 2, 40, 80), low=0.5, high=1.5)
    layer, y = dropout_output(t, p, x, shown_p="p")
    g = t.randn(*x.shape)  # no entry is 0 (almost surely): a zero in dx marks a dropped entry
    dx = t.expect_inputs_kept(layer.backward, g)
    kept = y != 0
    if isinstance(dx, torch.Tensor) and dx.shape == y.shape:
        passed_where_dropped, dropped_where_kept = int(((dx != 0) & ~kept).sum()), int(((dx == 0) & kept).sum())
        t.expect(
            passed_where_dropped == dropped_where_kept == 0,
            f"Dropout(p).backward must reuse the mask of the last forward: it passed {passed_where_dropped} gradients "
            f"where that forward zeroed the entry and zeroed {dropped_where_kept} where it kept it",
        )
    t.expect_close(
        dx, torch.where(kept, g / (1 - p), 0.0),
        what="Dropout(p).backward: the kept gradients must be scaled by 1/(1 - p) as the forward scaled the kept entries",
    )


@checks.hidden("backprop.BatchNorm1d.eval", points=0.25)
def _(t):
    n, f = dims(t, 2, 4, 9)
    mine, torch_bn = batchnorm_pair(t, f)
    for _ in range(2):
        x = t.randn(n, f, scale=2.0) + 0.5
        mine.forward(x)
        torch_bn(x)
    mine.eval()
    torch_bn.eval()
    x = t.randn(n, f)
    t.expect_close(mine.forward(x), torch_bn(x).detach(), what="BatchNorm1d.forward in eval mode (running statistics)")


@checks.hidden("backprop.BatchNorm1d.float32_backward", points=0.25)
def _(t):
    n, f = dims(t, 2, 4, 9)
    mine, torch_bn = batchnorm_pair(t, f, dtype=F32)
    x, g = t.randn(n, f, dtype=F32, scale=2.0), t.randn(n, f, dtype=F32)
    x_leaf = x.double().requires_grad_(True)
    torch_bn = torch_bn.double()
    torch_bn(x_leaf).backward(g.double())
    t.expect_inputs_kept(mine.forward, x)
    t.expect_close(t.expect_inputs_kept(mine.backward, g), x_leaf.grad, dtype=F32)
    t.expect_close(mine.dgamma, torch_bn.weight.grad, dtype=F32, what="BatchNorm1d.dgamma")
    t.expect_close(mine.dbeta, torch_bn.bias.grad, dtype=F32, what="BatchNorm1d.dbeta")


# --- optimizers.py ---------------------------------------------------------


@checks.hidden("optimizers.SGD.nesterov", points=0.25)
def _(t):
    optimizer_steps(t, "SGD", steps=6, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05)


@checks.hidden("optimizers.AdaGrad.eps", points=0.25)
def _(t):
    optimizer_steps(t, "AdaGrad", steps=6, lr=0.3, eps=1e-3)


@checks.hidden("optimizers.RMSProp.alpha", points=0.25)
def _(t):
    optimizer_steps(t, "RMSProp", steps=6, lr=0.05, alpha=0.9, eps=1e-4)


@checks.hidden("optimizers.Adam.weight_decay", points=0.25)
def _(t):
    optimizer_steps(t, "Adam", steps=6, lr=0.05, weight_decay=0.1)


@checks.hidden("optimizers.Adam.betas", points=0.25)
def _(t):
    optimizer_steps(t, "Adam", steps=8, lr=0.02, betas=(0.8, 0.95), eps=1e-6)


@checks.hidden("optimizers.AdamW.betas", points=0.25)
def _(t):
    optimizer_steps(t, "AdamW", steps=6, lr=0.05, betas=(0.85, 0.99), weight_decay=0.3)
