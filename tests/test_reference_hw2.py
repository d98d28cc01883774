"""The hw2 reference solution (`reference/hw2/convolution.py`) against torch.

The file is loaded by path; of `autograder`, only the release's stub maker is
used (to check the solution regions). torch.nn.functional and autograd are
used here, in the tests, to compute the expected values and gradients.
"""

import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from autograder.release.release import make_stub
from reference_helpers import assert_matches, assert_regions_well_placed, functions_of, leaf, load_module, untouched

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "hw2" / "convolution.py"
UNITS = ["conv2d", "Conv2d", "MaxPool2d", "AvgPool2d", "conv_transpose2d", "iou_per_class", "dice_loss"]
DTYPES = [torch.float64, torch.float32]


@pytest.fixture(scope="module")
def conv():
    return load_module(REFERENCE, "_hw2_reference_convolution")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def randn(gen, *shape, dtype=torch.float64):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def distinct(gen, *shape, dtype=torch.float64):
    """Values without ties (exact in float32 too): a window's maximum is unique."""
    n = math.prod(shape)
    return ((torch.randperm(n, generator=gen) - n / 2) / 4).reshape(shape).to(dtype)


# ---------------------------------------------------------------------------
# The contract: names, markers, forbidden APIs
# ---------------------------------------------------------------------------


def test_every_unit_exists(conv):
    assert not [unit for unit in UNITS if not callable(getattr(conv, unit, None))]


# names the file may not use anywhere: the torch versions of its units, torch.nn, autograd
FORBIDDEN_NAMES = {
    "nn", "functional", "autograd", "func", "optim", "requires_grad", "requires_grad_", "grad",
    "conv1d", "conv2d", "conv3d", "convolution", "conv_transpose2d", "unfold", "fold", "im2col", "col2im",
    "max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d", "one_hot",
}


def test_no_forbidden_api():
    tree = ast.parse(REFERENCE.read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            used |= {alias.name for alias in node.names} | {getattr(node, "module", None)}
    assert not used & FORBIDDEN_NAMES
    assert used >= {"as_strided"}  # the windows are a strided view, not a library call


def test_solution_regions_release_cleanly(tmp_path):
    source = REFERENCE.read_text()
    original = functions_of(ast.parse(source))
    regions = assert_regions_well_placed(source)
    # every function but the skeleton (_pair, constructors, parameters(), gradients()) is a region
    skeleton = {"_pair", "parameters", "gradients", "__init__"}
    assert regions == len([name for name in original if name.split(".")[-1] not in skeleton])

    stub_source = make_stub(source, "convolution.py")  # exactly what students get
    assert functions_of(ast.parse(stub_source)).keys() == original.keys(), "a region swallowed a def"
    path = tmp_path / "convolution.py"
    path.write_text(stub_source)
    stub = load_module(path, "_hw2_stub_convolution")

    # the skeleton works without the solution: constructors, parameters, _pair
    layer = stub.Conv2d(3, 4, (2, 3), stride=2, padding=(1, 0), dilation=1)
    assert [tuple(p.shape) for p in layer.parameters()] == [(4, 3, 2, 3), (4,)]
    assert layer.gradients() == [None, None]
    assert (layer.stride, layer.padding, layer.dilation, layer.kernel_size) == ((2, 2), (1, 0), (1, 1), (2, 3))
    assert stub.MaxPool2d(3).stride == (3, 3) and stub.AvgPool2d(2, (1, 2)).stride == (1, 2)

    x, w = torch.zeros(1, 3, 5, 5), torch.zeros(4, 3, 2, 3)
    labels = torch.zeros(1, 5, 5, dtype=torch.int64)
    calls = {
        "conv2d": lambda: stub.conv2d(x, w),
        "Conv2d.forward": lambda: layer.forward(x),
        "Conv2d.backward": lambda: layer.backward(torch.zeros(1, 4, 3, 2)),
        "MaxPool2d.forward": lambda: stub.MaxPool2d(2).forward(x),
        "MaxPool2d.backward": lambda: stub.MaxPool2d(2).backward(torch.zeros(1, 3, 2, 2)),
        "AvgPool2d.forward": lambda: stub.AvgPool2d(2).forward(x),
        "AvgPool2d.backward": lambda: stub.AvgPool2d(2).backward(torch.zeros(1, 3, 2, 2)),
        "conv_transpose2d": lambda: stub.conv_transpose2d(x, torch.zeros(3, 4, 2, 3)),
        "iou_per_class": lambda: stub.iou_per_class(labels, labels, 3),
        "dice_loss": lambda: stub.dice_loss(torch.zeros(1, 3, 5, 5), labels),
    }
    for name, call in calls.items():
        with pytest.raises(NotImplementedError, match=rf"^{name}: "):
            call()


# ---------------------------------------------------------------------------
# conv2d and Conv2d
# ---------------------------------------------------------------------------

# (x shape, weight shape, options): int and pair arguments, non-square kernels, odd sizes, batch 1 and 3
CONV_GRID = [
    ((1, 1, 5, 5), (1, 1, 3, 3), {}),
    ((3, 2, 7, 9), (4, 2, 3, 3), {"padding": 1}),
    ((3, 2, 8, 7), (3, 2, 2, 3), {"stride": 2}),
    ((1, 3, 9, 8), (2, 3, 3, 2), {"stride": (2, 1), "padding": (1, 2)}),
    ((3, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2}),
    ((1, 2, 10, 7), (2, 2, 2, 3), {"stride": (1, 2), "dilation": (2, 1), "padding": (0, 1)}),
    ((3, 1, 6, 11), (2, 1, 1, 4), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}),
    ((1, 2, 8, 8), (3, 2, 2, 3), {"stride": 2, "padding": 1, "dilation": (2, 1)}),
    ((3, 3, 5, 6), (2, 3, 5, 6), {}),  # a kernel as large as the image: one output pixel
    ((1, 2, 7, 5), (3, 2, 2, 3), {"stride": [2, 1], "padding": [1, 2], "dilation": [2, 1]}),  # lists
]
CONV_IDS = [f"{x}-{w}-{o}" for x, w, o in CONV_GRID]


def conv_expected(x, weight, bias, options, grad_out=None):
    """F.conv2d's output and, given grad_out, autograd's gradients wrt (x, weight, bias)."""
    xt, wt = leaf(x), leaf(weight)
    bt = None if bias is None else leaf(bias)
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    out = F.conv2d(xt, wt, bt, **options)
    if grad_out is None:
        return out
    return out, torch.autograd.grad(out, [xt, wt, bt], grad_out)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", CONV_GRID, ids=CONV_IDS)
def test_conv2d(conv, case, with_bias, dtype, gen):
    x_shape, w_shape, options = case
    x, weight = randn(gen, *x_shape, dtype=dtype), randn(gen, *w_shape, dtype=dtype)
    bias = randn(gen, w_shape[0], dtype=dtype) if with_bias else None
    with untouched(*[t for t in (x, weight, bias) if t is not None]):
        out = conv.conv2d(x, weight, bias, **options)
    assert_matches(out, conv_expected(x, weight, bias, options))


def test_conv2d_defaults_and_noncontiguous_input(conv, gen):
    x, weight = randn(gen, 2, 3, 6, 7), randn(gen, 4, 3, 3, 2)
    assert_matches(conv.conv2d(x, weight), F.conv2d(x, weight))
    xt = randn(gen, 2, 3, 7, 6).transpose(2, 3)  # strides that are not those of a contiguous tensor
    assert_matches(conv.conv2d(xt, weight, padding=1, stride=(1, 2)), F.conv2d(xt, weight, padding=1, stride=(1, 2)))


def test_conv2d_layer_init(conv):
    torch.manual_seed(0)
    layer = conv.Conv2d(3, 5, (2, 4), stride=(2, 1), padding=1, dilation=2)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == ((2, 4), (2, 1), (1, 1), (2, 2))
    weight, bias = layer.parameters()
    assert weight.shape == (5, 3, 2, 4) and bias.shape == (5,) and weight.dtype == torch.float32
    bound = 1 / math.sqrt(3 * 2 * 4)
    assert weight.abs().max() <= bound and bias.abs().max() <= bound
    assert weight.abs().max() > bound / 2  # spread over the range, not a constant
    assert layer.gradients() == [None, None]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CONV_GRID, ids=CONV_IDS)
def test_conv2d_layer_forward_backward(conv, case, dtype, gen):
    x_shape, w_shape, options = case
    layer = conv.Conv2d(w_shape[1], w_shape[0], w_shape[2:], **options)
    layer.weight = randn(gen, *w_shape, dtype=dtype)  # the grader assigns the parameters directly
    layer.bias = randn(gen, w_shape[0], dtype=dtype)
    x = randn(gen, *x_shape, dtype=dtype)
    out_expected = conv_expected(x, layer.weight, layer.bias, options)
    grad_out = randn(gen, *out_expected.shape, dtype=dtype)
    with untouched(x, grad_out, layer.weight, layer.bias):
        out = layer.forward(x)
        dx = layer.backward(grad_out)
    _, (dx_t, dw_t, db_t) = conv_expected(x, layer.weight, layer.bias, options, grad_out)
    assert_matches(out, out_expected)
    assert_matches(dx, dx_t)
    assert_matches(layer.dweight, dw_t)
    assert_matches(layer.dbias, db_t)
    assert [g is d for g, d in zip(layer.gradients(), (layer.dweight, layer.dbias))] == [True, True]


def test_conv2d_layer_backward_uses_last_forward(conv, gen):
    layer = conv.Conv2d(2, 3, 3, padding=1)
    first, second = randn(gen, 2, 2, 5, 5, dtype=torch.float32), randn(gen, 1, 2, 4, 6, dtype=torch.float32)
    layer.forward(first)
    layer.forward(second)
    grad_out = randn(gen, 1, 3, 4, 6, dtype=torch.float32)
    _, expected = conv_expected(second, layer.weight, layer.bias, {"padding": 1}, grad_out)
    for got, want in zip([layer.backward(grad_out), layer.dweight, layer.dbias], expected):
        assert_matches(got, want)


# ---------------------------------------------------------------------------
# MaxPool2d and AvgPool2d
# ---------------------------------------------------------------------------

# (x shape, kernel_size, stride): stride None is the kernel; stride < kernel makes windows overlap
POOL_GRID = [
    ((1, 1, 4, 4), 2, None),
    ((3, 2, 7, 9), 3, None),  # sizes not divisible by the kernel: the rest is dropped
    ((3, 2, 6, 7), (2, 3), None),
    ((1, 3, 7, 8), 3, 1),  # overlapping windows: gradients add up
    ((3, 2, 9, 8), (3, 2), (2, 1)),
    ((1, 2, 5, 7), [2, 3], [1, 2]),
]
POOL_IDS = [f"{x}-{k}-{s}" for x, k, s in POOL_GRID]
POOLS = {"MaxPool2d": F.max_pool2d, "AvgPool2d": F.avg_pool2d}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", POOL_GRID, ids=POOL_IDS)
@pytest.mark.parametrize("name", POOLS)
def test_pool(conv, name, case, dtype, gen):
    x_shape, kernel_size, stride = case
    x = distinct(gen, *x_shape, dtype=dtype)
    pool = getattr(conv, name)(kernel_size, stride)
    xt = leaf(x)
    as_tuple = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
    expected = POOLS[name](xt, as_tuple(kernel_size), as_tuple(stride))
    grad_out = randn(gen, *expected.shape, dtype=dtype)
    (dx_t,) = torch.autograd.grad(expected, xt, grad_out)
    with untouched(x, grad_out):
        out = pool.forward(x)
        dx = pool.backward(grad_out)
    assert_matches(out, expected)
    assert_matches(dx, dx_t)


def test_max_pool_backward_routes_to_the_maximum(conv):
    x = torch.tensor([[[[1.0, 5.0, 2.0], [3.0, 0.0, 4.0], [6.0, 7.0, 8.0]]]])
    pool = conv.MaxPool2d(2, 1)  # four overlapping windows; 5 is the max of two, 8 of one, 7 of one
    assert pool.forward(x).tolist() == [[[[5.0, 5.0], [7.0, 8.0]]]]
    dx = pool.backward(torch.tensor([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    assert dx.tolist() == [[[[0.0, 11.0, 0.0], [0.0, 0.0, 0.0], [0.0, 100.0, 1000.0]]]]


# ---------------------------------------------------------------------------
# conv_transpose2d
# ---------------------------------------------------------------------------

TRANSPOSED_GRID = [
    ((1, 1, 3, 3), (1, 1, 3, 3), {}),
    ((3, 2, 4, 5), (2, 3, 3, 3), {"stride": 2}),
    ((1, 3, 5, 4), (3, 2, 2, 3), {"stride": (2, 1), "padding": (1, 2)}),
    ((3, 2, 4, 4), (2, 4, 3, 3), {"padding": 1}),
    ((1, 2, 5, 6), (2, 3, 2, 3), {"stride": (1, 2), "padding": (0, 1)}),
    ((3, 2, 3, 5), (2, 2, 4, 3), {"stride": [3, 2], "padding": [1, 0]}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", TRANSPOSED_GRID, ids=[f"{x}-{w}-{o}" for x, w, o in TRANSPOSED_GRID])
def test_conv_transpose2d(conv, case, with_bias, dtype, gen):
    x_shape, w_shape, options = case
    x, weight = randn(gen, *x_shape, dtype=dtype), randn(gen, *w_shape, dtype=dtype)
    bias = randn(gen, w_shape[1], dtype=dtype) if with_bias else None
    with untouched(*[t for t in (x, weight, bias) if t is not None]):
        out = conv.conv_transpose2d(x, weight, bias, **options)
    torch_options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    assert_matches(out, F.conv_transpose2d(x, weight, bias, **torch_options))


def test_conv_transpose2d_is_the_gradient_of_conv2d(conv, gen):
    x, weight = randn(gen, 2, 3, 9, 8), randn(gen, 4, 3, 3, 2)
    layer = conv.Conv2d(3, 4, (3, 2), stride=2, padding=1)
    layer.weight, layer.bias = weight, torch.zeros(4, dtype=torch.float64)
    grad_out = randn(gen, *layer.forward(x).shape)
    dx = layer.backward(grad_out)
    # for stride > 1 several input sizes give one output size; for this x the transpose gives x's size back
    assert_matches(conv.conv_transpose2d(grad_out, weight, stride=2, padding=1), dx)


# ---------------------------------------------------------------------------
# iou_per_class and dice_loss
# ---------------------------------------------------------------------------


def iou_expected(pred, target, num_classes):
    values = []
    for c in range(num_classes):
        p, t = pred == c, target == c
        union = (p | t).sum().item()
        values.append((p & t).sum().item() / union if union else math.nan)
    return torch.tensor(values, dtype=torch.float64)


def test_iou_per_class_known_values(conv):
    pred = torch.tensor([[[0, 0, 1], [1, 3, 3]]])
    target = torch.tensor([[[0, 1, 1], [1, 4, 4]]])
    # class 0: 1/2; class 1: 2/3; class 2: in neither (NaN); class 3: predicted only (0); class 4: target only (0)
    with untouched(pred, target):
        iou = conv.iou_per_class(pred, target, 5)
    torch.testing.assert_close(iou, torch.tensor([0.5, 2 / 3, math.nan, 0.0, 0.0], dtype=torch.float64), equal_nan=True)


@pytest.mark.parametrize("num_classes", [2, 5, 7])
def test_iou_per_class_random(conv, num_classes, gen):
    pred = torch.randint(0, 5, (3, 6, 7), generator=gen)  # with 7 classes, 5 and 6 are in neither
    target = torch.randint(0, min(num_classes, 5), (3, 6, 7), generator=gen)
    target[0, 0, 0] = pred[0, 0, 0] = 0
    iou = conv.iou_per_class(pred.clamp(max=num_classes - 1), target, num_classes)
    expected = iou_expected(pred.clamp(max=num_classes - 1), target, num_classes)
    assert iou.dtype == torch.float64 and iou.shape == (num_classes,)
    torch.testing.assert_close(iou, expected, equal_nan=True, rtol=1e-12, atol=0)
    assert iou.isnan().sum() == (2 if num_classes == 7 else 0)


def dice_expected(probs, target, eps):
    t = F.one_hot(target, probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    dice = (2 * (probs * t).sum(dims) + eps) / (probs.sum(dims) + t.sum(dims) + eps)
    return 1 - dice.mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("eps", [1.0, 1e-3])
def test_dice_loss(conv, eps, dtype, gen):
    probs = torch.softmax(randn(gen, 2, 4, 5, 6, dtype=dtype), dim=1)
    target = torch.randint(0, 3, (2, 5, 6), generator=gen)  # class 3 is absent from the target
    with untouched(probs, target):
        loss = conv.dice_loss(probs, target, eps=eps)
    assert loss.shape == () and loss.dtype == dtype
    assert_matches(loss, dice_expected(probs, target, eps))
    assert_matches(conv.dice_loss(probs, target), dice_expected(probs, target, 1.0))  # the default eps


def test_dice_loss_perfect_and_empty(conv):
    target = torch.tensor([[[0, 1], [1, 0]]])
    probs = F.one_hot(target, 3).permute(0, 3, 1, 2).double()  # class 2: absent, and predicted nowhere
    assert conv.dice_loss(probs, target, eps=1.0).item() == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------
# CUDA, where there is one: outputs stay on the device
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_outputs_stay_on_the_device(conv, gen):
    cuda = torch.device("cuda")
    x, weight, bias = randn(gen, 2, 3, 8, 7), randn(gen, 4, 3, 3, 2), randn(gen, 4)
    xc, wc, bc = x.to(cuda), weight.to(cuda), bias.to(cuda)
    options = {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}
    assert_matches(conv.conv2d(xc, wc, bc, **options).cpu(), F.conv2d(x, weight, bias, **options))
    layer = conv.Conv2d(3, 4, (3, 2), **options)
    layer.weight, layer.bias = wc, bc
    out = layer.forward(xc)
    grad_out = randn(gen, *out.shape)
    _, expected = conv_expected(x, weight, bias, options, grad_out)
    results = [layer.backward(grad_out.to(cuda)), layer.dweight, layer.dbias]
    for got, want in zip(results, expected):
        assert got.device.type == "cuda"
        assert_matches(got.cpu(), want)
    for name, torch_pool in POOLS.items():
        pool = getattr(conv, name)(3, (2, 1))
        xd = distinct(gen, 2, 3, 8, 7)
        assert_matches(pool.forward(xd.to(cuda)).cpu(), torch_pool(xd, 3, (2, 1)))
        assert pool.backward(torch.ones(2, 3, 3, 5, device=cuda, dtype=torch.float64)).device.type == "cuda"
    assert_matches(conv.conv_transpose2d(xc, wc.transpose(0, 1), stride=2, padding=1).cpu(),
                   F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=1))
    labels = torch.randint(0, 3, (2, 8, 7), generator=gen)
    iou = conv.iou_per_class(labels.to(cuda), labels.flip(1).to(cuda), 4)
    assert iou.device.type == "cuda" and iou.dtype == torch.float64
    probs = torch.softmax(randn(gen, 2, 3, 8, 7, dtype=torch.float32), dim=1)
    assert_matches(conv.dice_loss(probs.to(cuda), labels.to(cuda)).cpu(), dice_expected(probs, labels, 1.0))
