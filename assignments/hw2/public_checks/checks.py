"""hw2 public checks: students run these with `autograder check hw2`.

Each check says what it calls, with what, and what it compares to; tolerances,
finite differences, timing and seeds live in the checks library. Expected
values come from `t.reference` (the reference solution, recorded into the
public bundle). Helpers here are reused by hidden_checks.py with other inputs.
"""

import torch

from autograder.checks import CheckList

checks = CheckList()
F64, F32 = torch.float64, torch.float32

_CONVOLUTIONS = [
    "torch.nn.functional.conv1d",
    "torch.nn.functional.conv2d",
    "torch.nn.functional.conv3d",
    "torch.conv1d",
    "torch.conv2d",
    "torch.conv3d",
    "torch.convolution",
    "torch.nn.functional.unfold",
    "torch.nn.functional.fold",
    "torch.nn.Unfold",
    "torch.nn.Fold",
    "torch.nn.Conv1d",
    "torch.nn.Conv2d",
    "torch.nn.Conv3d",
    "torch.nn.grad",  # conv2d_input / conv2d_weight: the backward pass, ready-made
    "scipy.signal",
    "scipy.ndimage",
]
_TRANSPOSED = [
    "torch.nn.functional.conv_transpose1d",
    "torch.nn.functional.conv_transpose2d",
    "torch.nn.functional.conv_transpose3d",
    "torch.conv_transpose1d",
    "torch.conv_transpose2d",
    "torch.conv_transpose3d",
    "torch.nn.ConvTranspose2d",
]
_MAX_POOLS = [
    "torch.nn.functional.max_pool2d",
    "torch.nn.functional.max_pool2d_with_indices",
    "torch.nn.functional.adaptive_max_pool2d",
    "torch.nn.functional.max_unpool2d",
    "torch.nn.functional.fractional_max_pool2d",
    "torch.max_pool2d",
    "torch.nn.MaxPool2d",
    "torch.nn.AdaptiveMaxPool2d",
]
_AVG_POOLS = [
    "torch.nn.functional.avg_pool2d",
    "torch.nn.functional.adaptive_avg_pool2d",
    "torch.avg_pool1d",
    "torch.nn.AvgPool2d",
    "torch.nn.AdaptiveAvgPool2d",
]

# What each unit may not call (autograd is forbidden to all of them, see AUTOGRAD_APIS).
FORBIDDEN = {
    "convolution.conv2d": _CONVOLUTIONS + _TRANSPOSED,
    "convolution.Conv2d": _CONVOLUTIONS + _TRANSPOSED,
    "convolution.conv_transpose2d": _CONVOLUTIONS + _TRANSPOSED,
    "convolution.MaxPool2d": _MAX_POOLS + _CONVOLUTIONS,
    "convolution.AvgPool2d": _AVG_POOLS + _CONVOLUTIONS,
}

# (x shape, weight shape, options): stride, padding and dilation as ints and pairs,
# non-square kernels, odd sizes.
CONV_GRID = [
    ((1, 1, 5, 5), (1, 1, 3, 3), {}),
    ((2, 3, 7, 9), (4, 3, 3, 3), {"padding": 1}),
    ((2, 2, 8, 7), (3, 2, 2, 3), {"stride": 2}),
    ((1, 3, 9, 8), (2, 3, 3, 2), {"stride": (2, 1), "padding": (1, 2)}),
    ((2, 2, 9, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2}),
    ((1, 2, 10, 7), (2, 2, 2, 3), {"stride": (1, 2), "dilation": (2, 1), "padding": (0, 1)}),
    ((3, 1, 6, 11), (2, 1, 1, 4), {"stride": (3, 2), "padding": (2, 0), "dilation": (1, 3)}),
]


# --- conv2d (2.75 points) --------------------------------------------------


def conv(t, x, weight, bias, options, dtype=F64):
    """The student's conv2d against the reference's on the same inputs (the reference in float64)."""
    expected = t.reference.convolution.conv2d(
        x.double(), weight.double(), None if bias is None else bias.double(), **options
    )
    t.expect_close(t.student.convolution.conv2d(x, weight, bias, **options), expected, dtype=dtype)


def conv_inputs(t, x_shape, w_shape, dtype=F64, bias=True):
    x, weight = t.randn(*x_shape, dtype=dtype), t.randn(*w_shape, dtype=dtype)
    return x, weight, t.randn(w_shape[0], dtype=dtype) if bias else None


@checks.public("convolution.conv2d.output", points=0.75)
def _(t):
    for number, (x_shape, w_shape, options) in enumerate(CONV_GRID):
        conv(t, *conv_inputs(t, x_shape, w_shape, bias=number % 2 == 0), options)


@checks.public("convolution.conv2d.arguments", points=0.25)
def _(t):
    # an int means the same on both axes; the defaults are stride 1, padding 0, dilation 1, no bias
    x, weight, bias = conv_inputs(t, (2, 2, 7, 8), (3, 2, 3, 3))
    both_axes = {"stride": (2, 2), "padding": (1, 1), "dilation": (2, 2)}
    conv(t, x, weight, bias, {"stride": 2, "padding": 1, "dilation": 2})
    conv(t, x, weight, bias, both_axes)
    t.expect_close(t.student.convolution.conv2d(x, weight), t.reference.convolution.conv2d(x, weight, None))


# --- Conv2d (3.25 points) --------------------------------------------------


def conv_layer(code, weight, bias, options, w_shape=None):
    """A Conv2d of `code` (the student's or the reference's module) with the grader's parameters."""
    out_channels, in_channels, *kernel = w_shape or weight.shape
    layer = code.convolution.Conv2d(in_channels, out_channels, tuple(kernel), **options)
    layer.weight, layer.bias = weight, bias
    return layer


def layer_backward(t, x_shape, w_shape, options, dtype=F64):
    """Conv2d forward then backward, against the reference layer in float64: grad x, dweight, dbias."""
    x, weight, bias = conv_inputs(t, x_shape, w_shape, dtype=dtype)
    mine = conv_layer(t.student, weight, bias, options)
    ref = conv_layer(t.reference, weight.double(), bias.double(), options)
    expected = ref.forward(x.double())
    t.expect_close(mine.forward(x), expected, dtype=dtype)
    upstream = t.randn(*expected.shape, dtype=dtype)
    t.expect_close(mine.backward(upstream), ref.backward(upstream.double()), dtype=dtype)
    t.expect_close(mine.dweight, ref.dweight, what=f"Conv2d.dweight after {t.last_call}", dtype=dtype)
    t.expect_close(mine.dbias, ref.dbias, what=f"Conv2d.dbias after {t.last_call}", dtype=dtype)
    return mine, weight, bias


@checks.public("convolution.Conv2d.forward", points=0.25)
def _(t):
    for x_shape, w_shape, options in CONV_GRID[1:4]:
        x, weight, bias = conv_inputs(t, x_shape, w_shape)
        expected = t.reference.convolution.conv2d(x, weight, bias, **options)
        t.expect_close(conv_layer(t.student, weight, bias, options).forward(x), expected)


@checks.public("convolution.Conv2d.backward", points=0.5)
def _(t):
    mine, weight, bias = layer_backward(t, (2, 3, 8, 7), (4, 3, 3, 2), {"stride": (2, 1), "padding": 1})
    params, grads = mine.parameters(), mine.gradients()
    t.expect_sequence(params, list, 2, what="Conv2d.parameters(), [weight, bias],")
    t.expect_sequence(grads, list, 2, what="Conv2d.gradients(), [dweight, dbias],")
    t.expect_close(params[0], weight, what="Conv2d.parameters()[0] (weight)")
    t.expect_close(params[1], bias, what="Conv2d.parameters()[1] (bias)")
    t.expect_close(grads[0], mine.dweight, what="Conv2d.gradients()[0] (dweight)")
    t.expect_close(grads[1], mine.dbias, what="Conv2d.gradients()[1] (dbias)")


@checks.public("convolution.Conv2d.gradcheck", points=0.5)
def _(t):
    # finite differences of forward, element by element, against backward, and both against the
    # reference's layer with the same parameters: grad x, dweight, dbias
    options = {"stride": (1, 2), "padding": 1, "dilation": (2, 1)}
    x, weight, bias = conv_inputs(t, (1, 2, 6, 5), (2, 2, 2, 3))

    def forward_of(layer):
        def forward(x, weight, bias):
            layer.weight, layer.bias = weight, bias
            return layer.forward(x)

        return forward

    def backward_of(layer):
        return lambda g: {"x": layer.backward(g), "weight": layer.dweight, "bias": layer.dbias}

    mine, ref = conv_layer(t.student, weight, bias, options), conv_layer(t.reference, weight, bias, options)
    t.gradcheck(
        forward_of(mine), {"x": x, "weight": weight, "bias": bias}, backward_of(mine),
        reference=(forward_of(ref), backward_of(ref)),
    )


# --- MaxPool2d (1 point) and AvgPool2d (0.75 points) -----------------------


def pool_input(t, *shape, dtype=F64):
    """Distinct values in random order: no ties within any window, so the maximum is unique."""
    count = 1
    for size in shape:
        count *= size
    order = t.randn(count).argsort().to(dtype)
    return (order / count - 0.5).reshape(shape) * 4


def pool_forward(t, name, x, kernel_size, stride=None):
    mine = getattr(t.student.convolution, name)(kernel_size, stride)
    ref = getattr(t.reference.convolution, name)(kernel_size, stride)
    t.expect_close(mine.forward(x), ref.forward(x.double()), dtype=x.dtype)
    return mine, ref


def pool_backward(t, name, x, kernel_size, stride=None):
    mine, ref = pool_forward(t, name, x, kernel_size, stride)
    upstream = t.randn(*ref.forward(x.double()).shape, dtype=x.dtype)
    t.expect_close(mine.backward(upstream), ref.backward(upstream.double()), dtype=x.dtype)


@checks.public("convolution.MaxPool2d.forward", points=0.25)
def _(t):
    pool_forward(t, "MaxPool2d", pool_input(t, 2, 3, 6, 8), 2)
    pool_forward(t, "MaxPool2d", pool_input(t, 1, 2, 7, 9), (3, 2), (2, 3))


@checks.public("convolution.MaxPool2d.backward", points=0.25)
def _(t):
    pool_backward(t, "MaxPool2d", pool_input(t, 2, 2, 6, 6), 2)
    pool_backward(t, "MaxPool2d", pool_input(t, 1, 3, 7, 8), (3, 2), (2, 3))


@checks.public("convolution.AvgPool2d.forward", points=0.25)
def _(t):
    pool_forward(t, "AvgPool2d", t.randn(2, 3, 6, 8), 2)
    pool_forward(t, "AvgPool2d", t.randn(1, 2, 7, 9), (3, 2), (2, 3))


@checks.public("convolution.AvgPool2d.backward", points=0.25)
def _(t):
    pool_backward(t, "AvgPool2d", t.randn(2, 2, 6, 6), 2)
    pool_backward(t, "AvgPool2d", t.randn(1, 3, 7, 8), (3, 2), (2, 3))


# --- conv_transpose2d (1 point) --------------------------------------------

TRANSPOSED_GRID = [
    ((1, 2, 4, 4), (2, 3, 3, 3), {}),
    ((2, 3, 3, 5), (3, 2, 2, 3), {"stride": 2}),
    ((1, 2, 4, 3), (2, 2, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 1, 5, 4), (1, 3, 4, 3), {"stride": (3, 2), "padding": (1, 2)}),
]


def transposed(t, x_shape, w_shape, options, dtype=F64, bias=True):
    x, weight = t.randn(*x_shape, dtype=dtype), t.randn(*w_shape, dtype=dtype)
    b = t.randn(w_shape[1], dtype=dtype) if bias else None
    expected = t.reference.convolution.conv_transpose2d(
        x.double(), weight.double(), None if b is None else b.double(), **options
    )
    t.expect_close(t.student.convolution.conv_transpose2d(x, weight, b, **options), expected, dtype=dtype)


@checks.public("convolution.conv_transpose2d.output", points=0.5)
def _(t):
    for number, (x_shape, w_shape, options) in enumerate(TRANSPOSED_GRID):
        transposed(t, x_shape, w_shape, options, bias=number % 2 == 1)


# --- iou_per_class (0.75 points) and dice_loss (0.5 points) ----------------


def iou(t, pred, target, num_classes):
    expected = t.reference.convolution.iou_per_class(pred, target, num_classes)
    # NaN (a class absent from both) must be NaN at the same places: expect_close treats NaN as equal only to NaN
    t.expect_close(t.student.convolution.iou_per_class(pred, target, num_classes), expected)


@checks.public("convolution.iou_per_class.values", points=0.25)
def _(t):
    iou(t, t.randint(0, 4, 2, 5, 6), t.randint(0, 4, 2, 5, 6), 4)


@checks.public("convolution.iou_per_class.absent_classes", points=0.25)
def _(t):
    # class 3 in neither (NaN), class 2 only in the prediction, class 4 only in the target
    pred = torch.tensor([[[0, 1, 1], [2, 0, 1]], [[1, 1, 0], [0, 2, 1]]])
    target = torch.tensor([[[0, 1, 0], [4, 0, 1]], [[1, 4, 0], [0, 1, 1]]])
    iou(t, pred, target, 5)


def dice(t, probs, target):
    t.expect_close(t.student.convolution.dice_loss(probs, target), t.reference.convolution.dice_loss(probs.double(), target), dtype=probs.dtype)
    eps = 0.5
    t.expect_close(
        t.student.convolution.dice_loss(probs, target, eps), t.reference.convolution.dice_loss(probs.double(), target, eps), dtype=probs.dtype
    )


def softmax_probs(t, n, c, h, w, dtype=F64):
    return t.randn(n, c, h, w, scale=2.0).softmax(dim=1).to(dtype)


@checks.public("convolution.dice_loss.values", points=0.25)
def _(t):
    # classes 0..2 occur in the target, class 3 does not (its term is eps / (sum(p) + eps))
    dice(t, softmax_probs(t, 2, 4, 5, 6), t.randint(0, 3, 2, 5, 6))
