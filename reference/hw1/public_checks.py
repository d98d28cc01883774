"""hw1 public checks: students run these with `autograder check hw1`.

Each check says what it calls, with what, and what it compares to; tolerances,
finite differences and seeds live in the checks library. Expected values come
from `t.reference` (the reference solution, recorded into the public bundle)
or from torch itself where torch has the exact operation (optimizers,
BatchNorm1d). Helpers here are reused by hidden_checks.py with other inputs.
"""

import math

import torch

from autograder.checks import CheckList

checks = CheckList()
F64, F32 = torch.float64, torch.float32


def _nn(*names):
    """The torch.nn / torch.nn.functional / tensor-method spellings of one operation."""
    found = []
    for name in names:
        found += [f"torch.{name}", f"torch.nn.functional.{name}", f"torch.Tensor.{name}", f"torch.Tensor.{name}_"]
    return found


# What each unit may not call (autograd is forbidden to all of them, see AUTOGRAD_APIS).
FORBIDDEN = {
    "neurons.logistic_regression_loss_grad": [
        "torch.nn.functional.binary_cross_entropy",
        "torch.nn.functional.binary_cross_entropy_with_logits",
        "torch.nn.BCELoss",
        "torch.nn.BCEWithLogitsLoss",
    ],
    "activations.Sigmoid": _nn("sigmoid") + ["torch.special.expit", "torch.nn.Sigmoid"],
    "activations.Tanh": _nn("tanh") + ["torch.nn.Tanh"],
    "activations.ReLU": _nn("relu") + ["torch.nn.ReLU"],
    "activations.LeakyReLU": _nn("leaky_relu") + ["torch.nn.LeakyReLU"],
    "activations.ELU": _nn("elu") + ["torch.nn.ELU"],
    "activations.Softplus": _nn("softplus") + ["torch.nn.Softplus"],
    "activations.GELU": _nn("gelu") + ["torch.nn.GELU"],
    "activations.Softmax": _nn("softmax") + ["torch.special.softmax", "torch.nn.Softmax"],
    "activations.LogSoftmax": _nn("log_softmax") + ["torch.special.log_softmax", "torch.nn.LogSoftmax"],
    "backprop.Linear": ["torch.nn.functional.linear", "torch.nn.Linear"],
    "backprop.MSELoss": ["torch.nn.functional.mse_loss", "torch.nn.MSELoss"],
    "backprop.CrossEntropyLoss": [
        "torch.nn.functional.cross_entropy",
        "torch.nn.functional.nll_loss",
        "torch.nn.CrossEntropyLoss",
        "torch.nn.NLLLoss",
    ],
    "backprop.Sequential": ["torch.nn.Sequential"],
    "backprop.Dropout": _nn("dropout") + ["torch.nn.Dropout"],
    "backprop.BatchNorm1d": ["torch.batch_norm", "torch.nn.functional.batch_norm", "torch.nn.BatchNorm1d"],
    **{f"optimizers.{name}": ["torch.optim"] for name in ("SGD", "AdaGrad", "RMSProp", "Adam", "AdamW")},
}


# --- neurons.py (3 points) -------------------------------------------------


@checks.public("neurons.threshold_neuron.output", points=0.25)
def _(t):
    x, w = t.randn(6, 3), t.randn(3)
    t.expect_equal(t.student.neurons.threshold_neuron(x, w, 0.3), t.reference.neurons.threshold_neuron(x, w, 0.3))


def perceptron(t, X, y, **options):
    got = t.student.neurons.perceptron_fit(X, y, **options)
    expected = t.reference.neurons.perceptron_fit(X, y, **options)
    t.expect_sequence(got, tuple, 2, what=f"the result (w, b) of {t.last_call}")
    t.expect_close(got[0], expected[0], what=f"w of {t.last_call}")
    t.expect_close(got[1], expected[1], what=f"b of {t.last_call}")


@checks.public("neurons.perceptron_fit.separable", points=0.5)
def _(t):
    X = torch.tensor([[2.0, 1.0], [1.0, 3.0], [-1.0, -2.0], [-2.0, 1.0], [3.0, -1.0], [-1.0, -1.0]], dtype=F64)
    perceptron(t, X, torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0], dtype=F64))


def linear_regression(t, n, d, dtype=F64):
    X = t.randn(n, d, dtype=dtype)
    y = X @ t.randn(d, dtype=dtype) + 2.0 + 0.1 * t.randn(n, dtype=dtype)
    t.expect_close(t.student.neurons.linear_regression_fit(X, y), t.reference.neurons.linear_regression_fit(X, y))


@checks.public("neurons.linear_regression_fit.fit", points=0.25)
def _(t):
    linear_regression(t, 20, 3)


def logistic(t, X, y, w, b):
    got = t.student.neurons.logistic_regression_loss_grad(X, y, w, b)
    expected = t.reference.neurons.logistic_regression_loss_grad(X, y, w, b)
    t.expect_sequence(got, tuple, 3, what=f"the result (loss, dw, db) of {t.last_call}")
    for name, g, e in zip(("loss", "dw", "db"), got, expected):
        t.expect_close(g, e, what=f"{name} of {t.last_call}")


@checks.public("neurons.logistic_regression_loss_grad.values", points=0.25)
def _(t):
    X, w = t.randn(8, 3), t.randn(3)
    logistic(t, X, (t.randn(8) > 0).double(), w, torch.tensor(0.5, dtype=F64))


# --- activations.py (4 points) ---------------------------------------------
# unit: (constructor arguments, |x| kept above this so finite differences never straddle a kink)
ACTIVATIONS = {
    "Sigmoid": ({}, 0.0),
    "Tanh": ({}, 0.0),
    "ReLU": ({}, 0.05),
    "LeakyReLU": ({"slope": 0.2}, 0.05),
    "ELU": ({"alpha": 1.5}, 0.05),
    "Softplus": ({}, 0.0),
    "GELU": ({}, 0.0),
    "Softmax": ({}, 0.0),
    "LogSoftmax": ({}, 0.0),
}


def both(t, module, name, **kwargs):
    """The student's and the reference's instance of one unit."""
    return getattr(getattr(t.student, module), name)(**kwargs), getattr(getattr(t.reference, module), name)(**kwargs)


def activation_forward(t, name, x):
    kwargs, _ = ACTIVATIONS[name]
    mine, ref = both(t, "activations", name, **kwargs)
    t.expect_close(mine.forward(x), ref.forward(x.double()), dtype=x.dtype)


def layer_gradcheck(t, mine, ref, x, parameters=None, gradients=None):
    """t.gradcheck of layer.forward(x) and layer.backward(g), the student's against the reference's.

    parameters: name -> value, set on the layer before each forward (W, b, gamma, ...);
    gradients: parameter name -> the attribute backward stores its gradient in (W -> dW).
    """
    parameters, gradients = parameters or {}, gradients or {}

    def forward_of(layer):
        def forward(x, **values):
            for name, value in values.items():
                setattr(layer, name, value)
            return layer.forward(x)

        return forward

    def backward_of(layer):
        return lambda g: {"x": layer.backward(g), **{name: getattr(layer, attribute) for name, attribute in gradients.items()}}

    t.gradcheck(forward_of(mine), {"x": x, **parameters}, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


def activation_gradcheck(t, name, x):
    kwargs, _ = ACTIVATIONS[name]
    layer_gradcheck(t, *both(t, "activations", name, **kwargs), x)


for _name, (_kwargs, _margin) in ACTIVATIONS.items():

    @checks.public(f"activations.{_name}.forward", points=0.125)
    def _(t, name=_name, margin=_margin):
        activation_forward(t, name, t.randn(4, 5, scale=2.0, away_from_zero=margin))

    @checks.public(f"activations.{_name}.backward", points=0.125)
    def _(t, name=_name, margin=_margin):
        activation_gradcheck(t, name, t.randn(3, 4, away_from_zero=margin))


# --- backprop.py (5 points) ------------------------------------------------


def linear(t, n, d_in, d_out, dtype=F64):
    """A student Linear with parameters set by the grader, and its inputs."""
    layer = t.student.backprop.Linear(d_in, d_out)
    W, b = t.randn(d_in, d_out, dtype=dtype), t.randn(d_out, dtype=dtype)
    layer.W, layer.b = W, b
    return layer, t.randn(n, d_in, dtype=dtype), W, b


@checks.public("backprop.Linear.forward", points=0.25)
def _(t):
    layer, x, W, b = linear(t, 5, 3, 4)
    t.expect_close(layer.forward(x), x @ W + b)


@checks.public("backprop.Linear.backward", points=0.25)
def _(t):
    layer, x, W, b = linear(t, 5, 3, 4)
    ref = t.reference.backprop.Linear(3, 4)
    layer_gradcheck(t, layer, ref, x, {"W": W, "b": b}, {"W": "dW", "b": "db"})


@checks.public("backprop.Linear.parameters", points=0.25)
def _(t):
    layer, x, W, b = linear(t, 5, 3, 4)
    g = t.randn(5, 4)
    layer.forward(x)
    layer.backward(g)
    params, grads = layer.parameters(), layer.gradients()
    t.expect_sequence(params, list, 2, what="Linear.parameters(), [W, b],")
    t.expect_sequence(grads, list, 2, what="Linear.gradients(), [dW, db],")
    t.expect_close(params[0], W, what="Linear.parameters()[0] (W)")
    t.expect_close(params[1], b, what="Linear.parameters()[1] (b)")
    t.expect_close(grads[0], x.T @ g, what="Linear.gradients()[0] (dW)")
    t.expect_close(grads[1], g.sum(0), what="Linear.gradients()[1] (db)")


@checks.public("backprop.MSELoss.forward", points=0.125)
def _(t):
    pred, target = t.randn(6, 3), t.randn(6, 3)
    t.expect_close(t.student.backprop.MSELoss().forward(pred, target), ((pred - target) ** 2).mean())


def loss_gradcheck(t, name, argument, prediction, target):
    """t.gradcheck of loss.forward(prediction, target) and loss.backward(), the student's against the
    reference's; argument names the prediction as the contract does (pred, logits)."""
    mine, ref = both(t, "backprop", name)

    def forward_of(loss):
        return lambda **prediction: loss.forward(prediction[argument], target)

    def backward_of(loss):
        return lambda g: {argument: g * loss.backward()}

    t.gradcheck(forward_of(mine), {argument: prediction}, backward_of(mine), reference=(forward_of(ref), backward_of(ref)))


@checks.public("backprop.MSELoss.backward", points=0.125)
def _(t):
    loss_gradcheck(t, "MSELoss", "pred", t.randn(6, 3), t.randn(6, 3))


@checks.public("backprop.CrossEntropyLoss.forward", points=0.25)
def _(t):
    logits, target = t.randn(6, 4, scale=2.0), t.randint(0, 4, 6)
    mine, ref = both(t, "backprop", "CrossEntropyLoss")
    t.expect_close(mine.forward(logits, target), ref.forward(logits, target))


@checks.public("backprop.CrossEntropyLoss.backward", points=0.25)
def _(t):
    loss_gradcheck(t, "CrossEntropyLoss", "logits", t.randn(5, 4, scale=2.0), t.randint(0, 4, 5))


def fixture_chain(t):
    """Sequential(Scale(2), Square(), Scale(-0.5)) from the grader's trusted layers, and the same in torch."""
    Scale, Square = t.fixture("Scale"), t.fixture("Square")
    model = t.student.backprop.Sequential(Scale(2.0), Square(), Scale(-0.5))
    factors = [torch.tensor(2.0, dtype=F64, requires_grad=True), torch.tensor(-0.5, dtype=F64, requires_grad=True)]
    return model, lambda x: factors[1] * (factors[0] * x) ** 2, factors


@checks.public("backprop.Sequential.forward_backward", points=0.25)
def _(t):
    model, torch_model, _ = fixture_chain(t)
    x, g = t.randn(4, 3), t.randn(4, 3)
    x_leaf = x.clone().requires_grad_(True)
    expected = torch_model(x_leaf)
    expected.backward(g)
    t.expect_close(model.forward(x), expected.detach(), what="Sequential(Scale(2), Square(), Scale(-0.5)).forward")
    t.expect_close(model.backward(g), x_leaf.grad, what="Sequential(Scale(2), Square(), Scale(-0.5)).backward")


def dropout_output(t, p, x, shown_p=None):
    """Two forwards of a student Dropout(p) in train mode on x (all entries nonzero); the layer and the
    last output. shown_p is how messages name p (a hidden check's p is one of its inputs)."""
    shown_p = shown_p or repr(p)
    layer = t.student.backprop.Dropout(p)
    first = layer.forward(x)
    t.expect_close(
        first, torch.where(first == 0, 0.0, x / (1 - p)), dtype=x.dtype,
        what=f"Dropout({shown_p}).forward: the kept entries must be scaled by 1/(1 - {shown_p}) (inverted dropout), "
        f"so expected x / (1 - {shown_p}) wherever the output is not 0",
    )
    rate = (first == 0).double().mean().item()
    # Five standard errors of the zeroed fraction: a right solution fails once in millions of students,
    # a solution that keeps with probability p (or ignores p) is off by far more.
    tolerance = 5 * math.sqrt(p * (1 - p) / first.numel())
    t.expect(
        abs(rate - p) < tolerance,
        f"Dropout({p}).forward zeroed {rate:.3f} of the {first.numel()} entries, expected {p} within {tolerance:.3f}",
        "Dropout.forward zeroed too many or too few entries",
    )
    y = layer.forward(x)
    # Two independent masks agree with probability (p^2 + (1-p)^2)^n: for the sizes checked
    # (n >= 1600 entries, 0.2 <= p <= 0.7) under 1e-260, so a right solution never fails this.
    same = bool(torch.equal(first == 0, y == 0))
    chance = y.numel() * math.log10(p**2 + (1 - p) ** 2)
    t.expect(
        not same,
        f"Dropout({p}).forward zeroed exactly the same {int((y == 0).sum())} of {y.numel()} entries in two calls on "
        "the same input: each forward in train mode must draw a new random mask (two independent masks agree "
        f"with probability 10^{chance:.0f})",
        "Dropout.forward zeroed the same entries in two calls: each forward in train mode must draw a new random mask",
    )
    return layer, y


@checks.public("backprop.Dropout.train", points=0.25)
def _(t):
    dropout_output(t, 0.3, t.uniform(100, 100, low=0.5, high=1.5))


@checks.public("backprop.Dropout.eval", points=0.25)
def _(t):
    x = t.uniform(50, 40, low=0.5, high=1.5)
    layer = t.student.backprop.Dropout(0.5)
    layer.eval()
    t.expect_equal(layer.forward(x), x, what="Dropout(0.5) in eval mode must be the identity")
    layer.train()
    t.expect(bool((layer.forward(x) == 0).any()), "Dropout(0.5).train() must switch dropout back on")


def batchnorm_pair(t, features, dtype=F64):
    """A student BatchNorm1d and torch's, with the same random gamma and beta."""
    mine = t.student.backprop.BatchNorm1d(features)
    torch_bn = torch.nn.BatchNorm1d(features).to(dtype)
    gamma, beta = t.randn(features, dtype=dtype), t.randn(features, dtype=dtype)
    mine.gamma, mine.beta = gamma, beta
    with torch.no_grad():
        torch_bn.weight.copy_(gamma)
        torch_bn.bias.copy_(beta)
    return mine, torch_bn


@checks.public("backprop.BatchNorm1d.forward", points=0.25)
def _(t):
    mine, torch_bn = batchnorm_pair(t, 5)
    x = t.randn(16, 5, scale=3.0) + 1.0
    t.expect_close(mine.forward(x), torch_bn(x).detach())


@checks.public("backprop.BatchNorm1d.running_stats", points=0.25)
def _(t):
    mine, torch_bn = batchnorm_pair(t, 4)
    for step in range(3):
        x = t.randn(8, 4, scale=2.0) + step
        mine.forward(x)
        torch_bn(x)
        t.expect_close(mine.running_mean, torch_bn.running_mean, what=f"BatchNorm1d.running_mean after {step + 1} forward passes")
        t.expect_close(mine.running_var, torch_bn.running_var, what=f"BatchNorm1d.running_var after {step + 1} forward passes")


@checks.public("backprop.BatchNorm1d.backward", points=0.25)
def _(t):
    mine, _ = batchnorm_pair(t, 3)
    x, gamma, beta = t.randn(6, 3), t.randn(3), t.randn(3)
    ref = t.reference.backprop.BatchNorm1d(3)
    layer_gradcheck(t, mine, ref, x, {"gamma": gamma, "beta": beta}, {"gamma": "dgamma", "beta": "dbeta"})


# --- optimizers.py (3 points) ----------------------------------------------
# student class -> the torch.optim class it must match step for step
OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "AdaGrad": torch.optim.Adagrad,
    "RMSProp": torch.optim.RMSprop,
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
}


# torch.optim's update rule of each, shown with a wrong step: most near misses are where eps,
# the bias corrections or the weight decay enter it.
UPDATES = {
    "SGD": "g = grad + weight_decay * p; v = momentum * v + g (v = g at step 1); "
    "p -= lr * (g + momentum * v if nesterov else v)",
    "AdaGrad": "s += grad**2; p -= lr * grad / (sqrt(s) + eps), eps added after the square root",
    "RMSProp": "v = alpha * v + (1 - alpha) * grad**2; p -= lr * grad / (sqrt(v) + eps), eps added after the square root",
    "Adam": "g = grad + weight_decay * p; m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g**2; "
    "p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps), eps added after the square root of the corrected v",
    "AdamW": "p *= 1 - lr * weight_decay; m = b1 * m + (1 - b1) * grad; v = b2 * v + (1 - b2) * grad**2; "
    "p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps), eps added after the square root of the corrected v",
}


def optimizer_steps(t, name, steps=5, **hyper):
    """Run the student's optimizer and torch.optim's side by side; compare the parameters after every
    step. The gradients passed to step live in the student's process and must come back unchanged."""
    params = [t.randn(3, 4), t.randn(4)]
    grads = [[t.randn(3, 4), t.randn(4)] for _ in range(steps)]
    mine = getattr(t.student.optimizers, name)(params, **hyper)
    torch_params = [p.clone().requires_grad_(True) for p in params]
    theirs = OPTIMIZERS[name](torch_params, **hyper)
    setting = ", ".join(f"{k}={v}" for k, v in hyper.items())
    for step, step_grads in enumerate(grads, start=1):
        handles = t.put_all(step_grads)
        with t.fetching(handles) as after:
            mine.step(handles)
        t.expect_unchanged(
            handles, step_grads, [f"grads[{i}]" for i in range(len(handles))],
            what=f"{name}.step(grads) at step {step}", rule="a caller may still need its gradients after step", after=after,
        )
        for p, g in zip(torch_params, step_grads):
            p.grad = g.clone()
        theirs.step()
        got = mine.params
        t.expect_sequence(got, list, 2, what=f"{name}.params after step {step}")
        for i, (g, e) in enumerate(zip(got, torch_params)):
            t.expect_close(
                g, e.detach(), what=f"{name}({setting}): params[{i}] after step {step}",
                hint=f"torch.optim.{OPTIMIZERS[name].__name__}'s step: {UPDATES[name]}",
            )


@checks.public("optimizers.SGD.plain", points=0.25)
def _(t):
    optimizer_steps(t, "SGD", lr=0.1)


@checks.public("optimizers.SGD.momentum", points=0.25)
def _(t):
    optimizer_steps(t, "SGD", lr=0.05, momentum=0.9, weight_decay=0.01)


@checks.public("optimizers.AdaGrad.steps", points=0.25)
def _(t):
    optimizer_steps(t, "AdaGrad", lr=0.1)


@checks.public("optimizers.RMSProp.steps", points=0.25)
def _(t):
    optimizer_steps(t, "RMSProp", lr=0.01)


@checks.public("optimizers.Adam.steps", points=0.25)
def _(t):
    optimizer_steps(t, "Adam", lr=0.01)


@checks.public("optimizers.AdamW.steps", points=0.25)
def _(t):
    optimizer_steps(t, "AdamW", lr=0.01, weight_decay=0.1)
