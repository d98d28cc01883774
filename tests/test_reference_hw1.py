"""The hw1 reference solution, and a second correct solution written differently, against torch.

Every test runs once per implementation directory (`reference/hw1` and
`tests/submissions/hw1_alternative`): the same checks must pass for any
correct solution, which is what keeps them honest. The files are loaded by
path; of `autograder`, only the release's stub maker is used (to check the
solution regions). Autograd is used here, in the tests,
to compute the expected gradients.
"""

import ast
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.release.release import make_stub
from reference_helpers import assert_matches, assert_regions_well_placed, functions_of, leaf, load_module, untouched

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "hw1"
IMPLEMENTATIONS = {"reference": REFERENCE, "alternative": ROOT / "tests" / "submissions" / "hw1_alternative"}
STEMS = ("neurons", "activations", "backprop", "optimizers")
UNITS = {  # the contract of ASSIGNMENTS.md, hw1
    "neurons": ["threshold_neuron", "perceptron_fit", "linear_regression_fit", "logistic_regression_loss_grad"],
    "activations": ["Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU", "Softmax", "LogSoftmax"],
    "backprop": ["Linear", "MSELoss", "CrossEntropyLoss", "Sequential", "Dropout", "BatchNorm1d"],
    "optimizers": ["SGD", "AdaGrad", "RMSProp", "Adam", "AdamW"],
}
DTYPES = [torch.float64, torch.float32]


@pytest.fixture(scope="module", params=sorted(IMPLEMENTATIONS))
def hw(request):
    """The four hw1 modules of one implementation, as attributes of a namespace."""
    directory = IMPLEMENTATIONS[request.param]
    modules = {stem: load_module(directory / f"{stem}.py", f"_hw1_{request.param}_{stem}") for stem in STEMS}
    return types.SimpleNamespace(**modules)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def randn(gen, *shape, dtype=torch.float64, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).mul(scale).add(shift).to(dtype)


# ---------------------------------------------------------------------------
# The contract: names, markers, forbidden APIs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stem", STEMS)
def test_every_unit_exists(hw, stem):
    module = getattr(hw, stem)
    missing = [unit for unit in UNITS[stem] if not callable(getattr(module, unit, None))]
    assert not missing


# names a unit may not use: its torch.nn / torch.nn.functional / torch equivalent
FORBIDDEN_NAMES = {
    "activations.Sigmoid": {"sigmoid", "sigmoid_", "expit"},
    "activations.Tanh": {"tanh", "tanh_"},
    "activations.ReLU": {"relu", "relu_", "relu6", "threshold", "threshold_"},
    "activations.LeakyReLU": {"leaky_relu", "leaky_relu_", "rrelu", "prelu"},
    "activations.ELU": {"elu", "elu_", "celu", "selu"},
    "activations.Softplus": {"softplus"},
    "activations.GELU": {"gelu"},
    "activations.Softmax": {"softmax", "log_softmax", "_softmax"},
    "activations.LogSoftmax": {"log_softmax", "softmax", "_log_softmax"},
    "backprop.Linear": {"linear", "bilinear"},
    "backprop.MSELoss": {"mse_loss"},
    "backprop.CrossEntropyLoss": {"cross_entropy", "nll_loss", "log_softmax", "softmax"},
    "backprop.Dropout": {"dropout", "dropout_", "feature_dropout", "alpha_dropout", "native_dropout"},
    "backprop.BatchNorm1d": {"batch_norm", "native_batch_norm", "layer_norm", "instance_norm"},
    "neurons.logistic_regression_loss_grad": {"binary_cross_entropy", "binary_cross_entropy_with_logits"},
}
TORCH_ESCAPES = {"nn", "optim", "autograd", "func"}  # torch.<these> is off limits in every unit


def _names(node):
    """Names a piece of code calls or reads: attributes (but not self.<cache>), names, keywords."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            if not (isinstance(sub.value, ast.Name) and sub.value.id == "self"):  # self.softmax is a cache
                yield sub.attr
        elif isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.keyword) and sub.arg:
            yield sub.arg


def _escapes(tree):
    """Uses of autograd, torch.nn, torch.optim or torch.func anywhere in a file."""
    for sub in ast.walk(tree):
        modules = []
        if isinstance(sub, ast.Import):
            modules = [alias.name for alias in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            modules = [sub.module] + [f"{sub.module}.{alias.name}" for alias in sub.names]
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "torch":
            modules = [f"torch.{sub.attr}"]
        for module in modules:
            if module.split(".")[:2] in [["torch", name] for name in TORCH_ESCAPES]:
                yield module
    yield from {"requires_grad", "requires_grad_"} & set(_names(tree))


@pytest.mark.parametrize("stem", STEMS)
def test_no_forbidden_api(hw, stem):
    tree = ast.parse(Path(getattr(hw, stem).__file__).read_text())
    escapes = set(_escapes(tree))
    assert not escapes, f"autograd / torch.nn / torch.optim / torch.func used: {escapes}"
    top = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    for unit in UNITS[stem]:
        # the unit's own code and the module-level helpers it refers to
        used = set(_names(top[unit]))
        for helper in used & set(top) - {unit}:
            used |= set(_names(top[helper]))
        bad = FORBIDDEN_NAMES.get(f"{stem}.{unit}", set()) & used
        assert not bad, f"{stem}.{unit} uses {bad}"


@pytest.mark.parametrize("stem", STEMS)
def test_solution_regions_release_cleanly(stem, tmp_path):
    source = (REFERENCE / f"{stem}.py").read_text()
    original = functions_of(ast.parse(source))
    assert assert_regions_well_placed(source) > 0
    stub_source = make_stub(source, f"{stem}.py")  # exactly what students get
    stubbed = functions_of(ast.parse(stub_source))
    assert stubbed.keys() == original.keys(), "a region swallowed a def"
    # the released module imports, its constructors run, and the stubs raise
    path = tmp_path / f"{stem}.py"
    path.write_text(stub_source)
    stub = load_module(path, f"_hw1_stub_{stem}")
    if stem == "activations":
        objs = [getattr(stub, name)() for name in UNITS[stem]]
        calls = [lambda o=o: o.forward(torch.zeros(2, 3)) for o in objs]
    elif stem == "backprop":
        objs = [stub.Linear(3, 2), stub.MSELoss(), stub.CrossEntropyLoss(), stub.Sequential(stub.Linear(3, 2)),
                stub.Dropout().eval().train(), stub.BatchNorm1d(3).eval().train()]
        assert objs[0].parameters()[0].shape == (3, 2) and objs[5].parameters()[0].shape == (3,)
        calls = [lambda: objs[0].forward(torch.zeros(4, 3)), lambda: objs[3].forward(torch.zeros(4, 3)),
                 lambda: objs[4].forward(torch.zeros(4, 3)), lambda: objs[5].forward(torch.zeros(4, 3))]
    elif stem == "optimizers":
        objs = [getattr(stub, name)([torch.zeros(3)], 0.1) for name in UNITS[stem]]
        calls = [lambda o=o: o.step([torch.ones(3)]) for o in objs]
    else:
        calls = [lambda: stub.threshold_neuron(torch.zeros(2, 2), torch.zeros(2), 0.0)]
    for call in calls:
        with pytest.raises(NotImplementedError):
            call()


def test_alternative_has_no_markers():
    for stem in STEMS:
        assert "SOLUTION" not in (IMPLEMENTATIONS["alternative"] / f"{stem}.py").read_text()


# ---------------------------------------------------------------------------
# activations.py
# ---------------------------------------------------------------------------

ACTIVATIONS = {  # id: (class, constructor kwargs, torch function)
    "Sigmoid": ("Sigmoid", {}, torch.sigmoid),
    "Tanh": ("Tanh", {}, torch.tanh),
    "ReLU": ("ReLU", {}, torch.relu),
    "LeakyReLU": ("LeakyReLU", {}, lambda x: F.leaky_relu(x, 0.1)),
    "LeakyReLU-0.3": ("LeakyReLU", {"slope": 0.3}, lambda x: F.leaky_relu(x, 0.3)),
    "ELU": ("ELU", {}, F.elu),
    "ELU-0.5": ("ELU", {"alpha": 0.5}, lambda x: F.elu(x, 0.5)),
    # logaddexp rather than F.softplus, which returns x itself above x = 20
    "Softplus": ("Softplus", {}, lambda x: torch.logaddexp(x, torch.zeros_like(x))),
    "GELU": ("GELU", {}, F.gelu),
    "Softmax": ("Softmax", {}, lambda x: torch.softmax(x, dim=-1)),
    "LogSoftmax": ("LogSoftmax", {}, lambda x: torch.log_softmax(x, dim=-1)),
}
EXTREME = [[-1000.0, -80.0, -3.5, -0.75, 0.5, 2.25, 40.0, 1000.0], [1000.0, 999.0, -1000.0, 3.0, 0.125, -0.3, 50.0, -60.0]]


def run_activation(hw, key, x, grad_out):
    """The activation's (forward, backward) against torch's (value, autograd gradient)."""
    cls, kwargs, torch_fn = ACTIVATIONS[key]
    act = getattr(hw.activations, cls)(**kwargs)
    with untouched(x, grad_out):
        y = act.forward(x)
        dx = act.backward(grad_out)
    xt = leaf(x)
    yt = torch_fn(xt)
    (dxt,) = torch.autograd.grad(yt, xt, grad_out)
    return (y, yt), (dx, dxt)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(4, 3, 5), (7,)], ids=str)
@pytest.mark.parametrize("key", ACTIVATIONS)
def test_activation(hw, key, shape, dtype, gen):
    x = randn(gen, *shape, dtype=dtype, scale=3.0)
    g = randn(gen, *shape, dtype=dtype)
    (y, yt), (dx, dxt) = run_activation(hw, key, x, g)
    assert_matches(y, yt)
    assert_matches(dx, dxt)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("key", ACTIVATIONS)
def test_activation_extreme_inputs(hw, key, dtype, gen):
    x = torch.tensor(EXTREME, dtype=dtype)
    g = randn(gen, *x.shape, dtype=dtype)
    (y, yt), (dx, dxt) = run_activation(hw, key, x, g)
    assert torch.isfinite(y).all() and torch.isfinite(dx).all()
    assert_matches(y, yt)
    assert_matches(dx, dxt)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_kinks_at_zero(hw, dtype):
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=dtype)
    g = torch.tensor([5.0, 7.0, 11.0], dtype=dtype)
    relu = hw.activations.ReLU()
    assert torch.equal(relu.forward(x), torch.tensor([0.0, 0.0, 2.0], dtype=dtype))
    assert torch.equal(relu.backward(g), torch.tensor([0.0, 0.0, 11.0], dtype=dtype))  # ReLU'(0) = 0
    leaky = hw.activations.LeakyReLU(slope=0.25)
    assert torch.equal(leaky.forward(x), torch.tensor([-0.25, 0.0, 2.0], dtype=dtype))
    assert torch.equal(leaky.backward(g), torch.tensor([1.25, 7.0, 11.0], dtype=dtype))  # the x >= 0 branch
    elu = hw.activations.ELU(alpha=0.5)
    assert torch.equal(elu.forward(x[1:]), torch.tensor([0.0, 2.0], dtype=dtype))
    assert_matches(elu.backward(g[1:]), torch.tensor([3.5, 11.0], dtype=dtype))  # the x <= 0 branch: alpha e^0


# ---------------------------------------------------------------------------
# backprop.py
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_linear(hw, dtype, gen):
    layer = hw.backprop.Linear(4, 3)
    assert layer.W.shape == (4, 3) and layer.b.shape == (3,)
    assert layer.W.abs().max() <= 0.5 and layer.b.abs().max() <= 0.5  # +-1/sqrt(in_features)
    W, b, x, g = (randn(gen, *s, dtype=dtype) for s in [(4, 3), (3,), (5, 4), (5, 3)])
    layer.W, layer.b = W, b  # the grader may assign parameters
    with untouched(W, b, x, g):
        y = layer.forward(x)
        dx = layer.backward(g)
    Wt, bt, xt = leaf(W), leaf(b), leaf(x)
    yt = xt @ Wt + bt
    dxt, dWt, dbt = torch.autograd.grad(yt, [xt, Wt, bt], g)
    assert_matches(y, yt)
    assert_matches(dx, dxt)
    assert_matches(layer.dW, dWt)
    assert_matches(layer.db, dbt)
    assert [p is q for p, q in zip(layer.parameters(), [layer.W, layer.b])] == [True, True]
    assert [p is q for p, q in zip(layer.gradients(), [layer.dW, layer.db])] == [True, True]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(6, 3), (10,)], ids=str)
def test_mse_loss(hw, shape, dtype, gen):
    pred, target = randn(gen, *shape, dtype=dtype), randn(gen, *shape, dtype=dtype)
    loss = hw.backprop.MSELoss()
    with untouched(pred, target):
        value = loss.forward(pred, target)
        grad = loss.backward()
    pt = leaf(pred)
    vt = F.mse_loss(pt, target)
    (gt,) = torch.autograd.grad(vt, pt)
    assert value.dim() == 0
    assert_matches(value, vt)
    assert_matches(grad, gt)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("extreme", [False, True], ids=["normal", "extreme"])
def test_cross_entropy_loss(hw, extreme, dtype, gen):
    if extreme:
        logits = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 500.0], [0.0, 0.0, 0.0], [999.0, 1000.0, -5.0]], dtype=dtype)
        target = torch.tensor([1, 2, 0, 0])
    else:
        logits = randn(gen, 7, 5, dtype=dtype, scale=3.0)
        target = torch.randint(0, 5, (7,), generator=gen)
    loss = hw.backprop.CrossEntropyLoss()
    with untouched(logits, target):
        value = loss.forward(logits, target)
        grad = loss.backward()
    lt = leaf(logits)
    vt = F.cross_entropy(lt, target)
    (gt,) = torch.autograd.grad(vt, lt)
    assert value.dim() == 0 and torch.isfinite(value) and torch.isfinite(grad).all()
    assert_matches(value, vt)
    assert_matches(grad, gt)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sequential(hw, dtype, gen):
    bp, act = hw.backprop, hw.activations
    lin1, lin2 = bp.Linear(4, 6), bp.Linear(6, 3)
    model = bp.Sequential(lin1, act.ReLU(), lin2, act.Tanh())
    Ws = [randn(gen, *s, dtype=dtype) for s in [(4, 6), (6,), (6, 3), (3,)]]
    lin1.W, lin1.b, lin2.W, lin2.b = Ws
    x, g = randn(gen, 5, 4, dtype=dtype), randn(gen, 5, 3, dtype=dtype)
    with untouched(x, g, *Ws):
        y = model.forward(x)
        dx = model.backward(g)
    leaves = [leaf(t) for t in [x, *Ws]]
    xt, W1, b1, W2, b2 = leaves
    yt = torch.tanh(torch.relu(xt @ W1 + b1) @ W2 + b2)
    expected = torch.autograd.grad(yt, leaves, g)
    assert_matches(y, yt)
    assert_matches(dx, expected[0])
    params, grads = model.parameters(), model.gradients()
    assert [p is q for p, q in zip(params, Ws)] == [True] * 4 and len(params) == 4
    assert len(grads) == 4
    for got, want in zip(grads, expected[1:]):
        assert_matches(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_train_statistics_and_backward(hw, p, dtype, gen):
    layer = hw.backprop.Dropout(p)
    x = torch.ones(200_000, dtype=dtype)
    with untouched(x):
        y = layer.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    scale = torch.tensor(1 / (1 - p), dtype=dtype)
    assert ((y == 0) | torch.isclose(y, scale)).all(), "kept entries must be scaled by 1/(1-p)"
    dropped = (y == 0).double().mean().item()
    sigma = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(dropped - p) < 6 * sigma, f"dropped {dropped:.4f}, expected {p}"
    g = randn(gen, *x.shape, dtype=dtype)
    with untouched(g):
        dx = layer.backward(g)
    assert_matches(dx, g * y)  # the same mask and scale as the forward (x = 1 so y is mask * scale)
    x2 = randn(gen, 50, 40, dtype=dtype)
    y2 = layer.forward(x2)
    assert_matches(layer.backward(torch.ones_like(x2)) * x2, y2)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_modes_and_rng(hw, dtype, gen):
    x = randn(gen, 64, 32, dtype=dtype)
    g = randn(gen, 64, 32, dtype=dtype)
    layer = hw.backprop.Dropout()  # p = 0.5, training mode by default
    dropped = (layer.forward(x) == 0).double().mean().item()
    assert 0.4 < dropped < 0.6
    layer.eval()
    assert torch.equal(layer.forward(x), x), "eval must be the identity"
    assert torch.equal(layer.backward(g), g)
    layer.train()
    assert (layer.forward(x) == 0).any(), "train() must switch dropout back on"
    # the randomness comes from torch's global RNG
    torch.manual_seed(7)
    first = layer.forward(x)
    torch.manual_seed(7)
    assert torch.equal(layer.forward(x), first)
    assert not torch.equal(layer.forward(x), first)
    assert torch.equal(hw.backprop.Dropout(0.0).forward(x), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("eps,momentum", [(1e-5, 0.1), (1e-3, 0.3)])
def test_batchnorm1d(hw, eps, momentum, dtype, gen):
    nf = 4
    if (eps, momentum) == (1e-5, 0.1):
        bn = hw.backprop.BatchNorm1d(nf)
    else:
        bn = hw.backprop.BatchNorm1d(nf, eps=eps, momentum=momentum)
    assert torch.equal(bn.gamma, torch.ones(nf)) and torch.equal(bn.beta, torch.zeros(nf))
    assert torch.equal(bn.running_mean, torch.zeros(nf)) and torch.equal(bn.running_var, torch.ones(nf))
    torch_bn = torch.nn.BatchNorm1d(nf, eps=eps, momentum=momentum).to(dtype)
    gamma, beta = randn(gen, nf, dtype=dtype, shift=1.0), randn(gen, nf, dtype=dtype)
    bn.gamma, bn.beta = gamma, beta
    bn.running_mean, bn.running_var = bn.running_mean.to(dtype), bn.running_var.to(dtype)
    with torch.no_grad():
        torch_bn.weight.copy_(gamma)
        torch_bn.bias.copy_(beta)

    def step(n):
        x = randn(gen, n, nf, dtype=dtype, scale=2.0, shift=0.5)
        g = randn(gen, n, nf, dtype=dtype)
        with untouched(x, g, gamma, beta):
            y = bn.forward(x)
            dx = bn.backward(g)
        xt = leaf(x)
        yt = torch_bn(xt)
        dxt, dgt, dbt = torch.autograd.grad(yt, [xt, torch_bn.weight, torch_bn.bias], g)
        assert_matches(y, yt)
        assert_matches(dx, dxt)
        assert_matches(bn.dgamma, dgt)
        assert_matches(bn.dbeta, dbt)
        assert_matches(bn.running_mean, torch_bn.running_mean)
        assert_matches(bn.running_var, torch_bn.running_var)

    for n in (8, 5, 16):
        step(n)
    bn.eval()
    torch_bn.eval()
    step(6)
    step(3)
    bn.train()
    torch_bn.train()
    step(7)
    assert [p is q for p, q in zip(bn.parameters(), [gamma, beta])] == [True, True]
    assert [p is q for p, q in zip(bn.gradients(), [bn.dgamma, bn.dbeta])] == [True, True]


def test_batchnorm1d_float32_defaults(hw, gen):
    bn = hw.backprop.BatchNorm1d(3)
    torch_bn = torch.nn.BatchNorm1d(3)
    for _ in range(3):
        x = randn(gen, 10, 3, dtype=torch.float32, scale=3.0, shift=-1.0)
        assert_matches(bn.forward(x), torch_bn(x).detach())
    assert_matches(bn.running_mean, torch_bn.running_mean)
    assert_matches(bn.running_var, torch_bn.running_var)
    bn.eval()
    torch_bn.eval()
    assert_matches(bn.forward(x), torch_bn(x).detach())


# ---------------------------------------------------------------------------
# neurons.py
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("theta", [0.0, 1.5, -2.0])
def test_threshold_neuron(hw, theta, dtype, gen):
    x = torch.randint(-3, 4, (40, 3), generator=gen).to(dtype)
    x[0] = torch.tensor([theta, 0.0, 0.0])  # on the threshold exactly: >= must fire
    w = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    with untouched(x, w):
        out = hw.neurons.threshold_neuron(x, w, theta)
    assert out.dtype == dtype and out.shape == (40,)
    assert torch.equal(out, (x @ w >= theta).to(dtype))


def rosenblatt(X, y, lr, epochs):
    """The loop of ASSIGNMENTS.md, written out."""
    w = torch.zeros(X.shape[1], dtype=X.dtype)
    b = torch.zeros((), dtype=X.dtype)
    for _ in range(epochs):
        for i in range(len(X)):
            pred = 1 if X[i] @ w + b > 0 else 0
            w = w + lr * (float(y[i]) - pred) * X[i]
            b = b + lr * (float(y[i]) - pred)
    return w, b


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("labels", ["separable", "noisy"])
@pytest.mark.parametrize("lr,epochs,ydtype", [(1.0, 10, torch.float64), (0.5, 3, torch.int64), (0.1, 7, torch.float32)])
def test_perceptron_fit(hw, labels, lr, epochs, ydtype, dtype, gen):
    X = randn(gen, 30, 2, dtype=dtype)
    if labels == "separable":
        y = (X @ torch.tensor([1.0, -2.0], dtype=dtype) + 0.3 > 0).to(ydtype)
    else:
        y = torch.randint(0, 2, (30,), generator=gen).to(ydtype)
    with untouched(X, y):
        w, b = hw.neurons.perceptron_fit(X, y, lr=lr, epochs=epochs)
    w_ref, b_ref = rosenblatt(X, y, lr, epochs)
    assert w.shape == (2,) and b.shape == ()
    assert_matches(w, w_ref)
    assert_matches(b, b_ref)


def test_perceptron_defaults_and_convergence(hw, gen):
    X = randn(gen, 200, 2)
    score = X @ torch.tensor([1.0, -2.0], dtype=X.dtype) + 0.3
    X, score = X[score.abs() > 0.3], score[score.abs() > 0.3]  # a margin: the perceptron converges
    y = (score > 0).double()
    w, b = hw.neurons.perceptron_fit(X, y)
    w_ref, b_ref = rosenblatt(X, y, 1.0, 10)
    assert_matches(w, w_ref)
    assert_matches(b, b_ref)
    w, b = hw.neurons.perceptron_fit(X, y, epochs=100)
    assert torch.equal((X @ w + b > 0).double(), y)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_linear_regression_fit(hw, noise, dtype, gen):
    X = randn(gen, 50, 3, dtype=torch.float64, scale=2.0)
    y = X @ torch.tensor([1.5, -2.0, 0.25], dtype=torch.float64) + 3.0 + noise * randn(gen, 50)
    X, y = X.to(dtype), y.to(dtype)
    with untouched(X, y):
        coef = hw.neurons.linear_regression_fit(X, y)
    A = np.hstack([np.ones((50, 1)), X.double().numpy()])
    expected = torch.from_numpy(np.linalg.lstsq(A, y.double().numpy(), rcond=None)[0])
    assert coef.dtype == dtype and coef.shape == (4,)
    if dtype == torch.float64:
        assert_matches(coef, expected)
    else:
        torch.testing.assert_close(coef.double(), expected, rtol=1e-4, atol=1e-4)
    if noise == 0.0:
        torch.testing.assert_close(coef.double(), torch.tensor([3.0, 1.5, -2.0, 0.25], dtype=torch.float64), rtol=1e-4, atol=1e-4)


def logistic_expected(X, y, w, b):
    Xt, wt, bt = leaf(X), leaf(w), leaf(b)
    loss = F.binary_cross_entropy_with_logits(Xt @ wt + bt, y.to(X.dtype))
    return (loss, *torch.autograd.grad(loss, [wt, bt]))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("ydtype", [torch.int64, torch.float64], ids=str)
def test_logistic_regression_loss_grad(hw, ydtype, dtype, gen):
    X, w = randn(gen, 20, 3, dtype=dtype), randn(gen, 3, dtype=dtype)
    b = torch.tensor(0.3, dtype=dtype)
    y = torch.randint(0, 2, (20,), generator=gen).to(ydtype if ydtype == torch.int64 else dtype)
    with untouched(X, y, w, b):
        loss, dw, db = hw.neurons.logistic_regression_loss_grad(X, y, w, b)
    expected = logistic_expected(X, y, w, b)
    assert loss.shape == () and dw.shape == (3,) and db.shape == ()
    for got, want in zip((loss, dw, db), expected):
        assert_matches(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_logistic_regression_extreme_logits(hw, dtype):
    X = torch.tensor([[1000.0, 0.0], [-1000.0, 0.0], [1000.0, 1.0], [-999.5, 2.0], [0.5, -1.0]], dtype=dtype)
    y = torch.tensor([0, 1, 1, 0, 1])
    w = torch.tensor([1.0, 0.25], dtype=dtype)
    b = torch.tensor(-0.5, dtype=dtype)
    loss, dw, db = hw.neurons.logistic_regression_loss_grad(X, y, w, b)
    assert all(torch.isfinite(t).all() for t in (loss, dw, db))
    for got, want in zip((loss, dw, db), logistic_expected(X, y, w, b)):
        assert_matches(got, want)


# ---------------------------------------------------------------------------
# optimizers.py
# ---------------------------------------------------------------------------

OPTIMIZERS = {  # id: (class, torch.optim class, kwargs)
    "SGD": ("SGD", torch.optim.SGD, {"lr": 0.1}),
    "SGD-momentum": ("SGD", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    "SGD-nesterov": ("SGD", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "SGD-wd": ("SGD", torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.1}),
    "SGD-all": ("SGD", torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.05}),
    "AdaGrad": ("AdaGrad", torch.optim.Adagrad, {}),
    "AdaGrad-eps": ("AdaGrad", torch.optim.Adagrad, {"lr": 0.5, "eps": 1e-3}),
    "RMSProp": ("RMSProp", torch.optim.RMSprop, {}),
    "RMSProp-alpha-eps": ("RMSProp", torch.optim.RMSprop, {"lr": 0.05, "alpha": 0.9, "eps": 1e-3}),
    "Adam": ("Adam", torch.optim.Adam, {}),
    "Adam-betas-eps": ("Adam", torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-3}),
    "Adam-wd": ("Adam", torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    "AdamW": ("AdamW", torch.optim.AdamW, {}),
    "AdamW-wd": ("AdamW", torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.5}),
    "AdamW-betas-no-wd": ("AdamW", torch.optim.AdamW, {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.0}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("key", OPTIMIZERS)
def test_optimizer_matches_torch(hw, key, dtype, gen):
    name, torch_cls, kwargs = OPTIMIZERS[key]
    start = [randn(gen, 3, 4, dtype=dtype), randn(gen, 5, dtype=dtype)]
    targets = [randn(gen, 3, 4, dtype=dtype), randn(gen, 5, dtype=dtype)]
    theirs = [leaf(p) for p in start]
    torch_opt = torch_cls(theirs, **kwargs)
    rest = dict(kwargs)
    args = [rest.pop("lr")] if "lr" in rest else []  # lr is the second positional argument
    opt = getattr(hw.optimizers, name)([p.clone() for p in start], *args, **rest)
    assert len(opt.params) == 2
    for step in range(5):
        # the gradient of |p - target|^2 plus some noise, evaluated at torch's parameters
        grads = [2 * (p.detach() - t) + 0.5 * randn(gen, *p.shape, dtype=dtype) for p, t in zip(theirs, targets)]
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        torch_opt.step()
        with untouched(*grads):
            opt.step(grads)
        for mine, want in zip(opt.params, theirs):
            assert_matches(mine, want)
