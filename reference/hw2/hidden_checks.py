"""hw2 hidden checks: run only by `autograder grade`, never shipped to students.

Inputs are drawn from a seed of (student id, assignment, check id): every
student gets other sizes, strides, paddings and dilations, and a regrade gets
the same ones. They cover what the public checks leave out: float32 (outputs
keep their dtype), random configurations, inputs left unmodified, overlapping
pooling windows, empty classes; and the timed checks (model acceleration),
which race the student's code against the reference's. Checks declared with
`cuda=` run again on CUDA tensors where the grading host has a CUDA device.
"""

import torch

from autograder.checks import CheckList

from .public_checks import (
    F32,
    F64,
    conv,
    conv_inputs,
    conv_layer,
    dice,
    iou,
    layer_backward,
    pool_backward,
    pool_input,
    softmax_probs,
    transposed,
)

checks = CheckList()


def dims(t, count, low, high):
    """count random sizes in [low, high): the hidden shapes differ per student."""
    return t.randint(low, high, count).tolist()


def pair_or_int(h, w):
    return h if h == w else (h, w)


def random_conv(t, everything=False):
    """A per-student convolution: (x shape, weight shape, options), with an output of at least 1x1.

    everything: every option off its default on both axes (kernel, stride and dilation at least 2,
    padding at least 1), so that no student's draw hides a bug in one option or one axis behind a
    default; a check's other draws may hit the defaults, which the public checks cover as well.
    """
    least = 2 if everything else 1
    n, cin, cout = dims(t, 3, 1, 4)
    kh, kw = dims(t, 2, least, 4)
    sh, sw, dh, dw = dims(t, 4, least, least + 2)
    ph, pw = dims(t, 2, least - 1, 3)
    eh, ew = dims(t, 2, 0, 6)  # input size beyond the smallest that gives one output pixel
    h, w = max(1, dh * (kh - 1) + 1 - 2 * ph) + eh, max(1, dw * (kw - 1) + 1 - 2 * pw) + ew
    options = {"stride": pair_or_int(sh, sw), "padding": pair_or_int(ph, pw), "dilation": pair_or_int(dh, dw)}
    return (n, cin, h, w), (cout, cin, kh, kw), options


# --- conv2d ----------------------------------------------------------------


@checks.hidden("convolution.conv2d.shapes", points=0.5)
def _(t):
    for number in range(3):
        x_shape, w_shape, options = random_conv(t, everything=number == 0)
        conv(t, *conv_inputs(t, x_shape, w_shape), options)


@checks.hidden("convolution.conv2d.float32", points=0.25, cuda=0.25)
def _(t):
    for number in range(2):
        x_shape, w_shape, options = random_conv(t, everything=number == 0)
        conv(t, *conv_inputs(t, x_shape, w_shape, dtype=F32), options, dtype=F32)


@checks.hidden("convolution.conv2d.inputs_kept", points=0.25)
def _(t):
    x, weight, bias = conv_inputs(t, (2, 3, 7, 6), (2, 3, 3, 3))
    conv2d = t.student.convolution.conv2d
    t.expect_inputs_kept(lambda x, w, b: conv2d(x, w, b, stride=2, padding=1), x, weight, bias)


# Timed checks (model acceleration). One image with few channels and 256 x 256
# output pixels: a Python loop over the pixels costs far more than the
# vectorized work, and the work of a call far more than its fixed costs
# (calibrated in bench/hw2_timing.py). Each request of a race runs the whole
# measurement (set-up included) on REPETITIONS fresh input sets, several ms of
# the reference's work. A request that uses call_timeout seconds of CPU time is
# stopped and the race lost: vectorized code needs a small fraction of that,
# pixel loops many times it.
TIMED_X, TIMED_W, TIMED_OPTIONS = (1, 4, 256, 256), (4, 4, 3, 3), {"padding": 1}
TIMED_OUT = (1, 4, 256, 256)
REPETITIONS = 4
TIMED_LIMITS = {"timeout": 120, "call_timeout": 3}


def timed_inputs(t, upstream=False):
    """A fresh input set for each repetition of a race (float32, on the check's device)."""

    def draw():
        x, weight, bias = conv_inputs(t, TIMED_X, TIMED_W, dtype=F32)
        values = {"x": x, "weight": weight, "bias": bias}
        return {**values, "upstream": t.randn(*TIMED_OUT, dtype=F32)} if upstream else values

    return draw


# The set-up runs in the timed request too: constructing the layer and setting its parameters are
# on the clock, and so is the forward before a timed backward (the reference does the same work).
def new_layer(code, x, weight, bias):
    return {"layer": conv_layer(code, weight, bias, TIMED_OPTIONS, TIMED_W), "x": x}


def forwarded_layer(code, x, weight, bias, upstream):
    layer = conv_layer(code, weight, bias, TIMED_OPTIONS, TIMED_W)
    layer.forward(x)
    return {"layer": layer, "upstream": upstream}


@checks.hidden("convolution.conv2d.timed", points=0.25, cuda=0.25, **TIMED_LIMITS)
def _(t):
    t.expect_fast(
        lambda code, x, weight, bias: code.convolution.conv2d(x, weight, bias, **TIMED_OPTIONS),
        timed_inputs(t),
        what="conv2d",
        repetitions=REPETITIONS,
    )


# --- Conv2d ----------------------------------------------------------------


@checks.hidden("convolution.Conv2d.backward_grid", points=0.5)
def _(t):
    for number in range(3):
        layer_backward(t, *random_conv(t, everything=number == 0))


@checks.hidden("convolution.Conv2d.float32", points=0.25, cuda=0.25)
def _(t):
    layer_backward(t, *random_conv(t, everything=True), dtype=F32)


@checks.hidden("convolution.Conv2d.forward.timed", points=0.25, cuda=0.25, **TIMED_LIMITS)
def _(t):
    t.expect_fast(
        lambda layer, x: layer.forward(x), timed_inputs(t), new_layer, what="Conv2d.forward", repetitions=REPETITIONS
    )


@checks.hidden("convolution.Conv2d.backward.timed", points=0.25, cuda=0.25, **TIMED_LIMITS)
def _(t):
    # backward's parameter gradients are timed too: computing them lazily gains nothing.
    # Half the repetitions: each does a forward and a backward.
    t.expect_fast(
        lambda layer, upstream: (layer.backward(upstream), layer.dweight, layer.dbias),
        timed_inputs(t, upstream=True),
        forwarded_layer,
        what="Conv2d.backward",
        repetitions=REPETITIONS // 2,
    )


# --- MaxPool2d, AvgPool2d --------------------------------------------------


@checks.hidden("convolution.MaxPool2d.overlapping", points=0.25)
def _(t):
    # stride < kernel: windows overlap and a maximum shared by two windows gets both gradients
    pool_backward(t, "MaxPool2d", pool_input(t, 2, 2, 7, 8), 3, 2)
    pool_backward(t, "MaxPool2d", pool_input(t, 1, 3, 6, 9, dtype=F32), (2, 3), 1)


def pool_sizes(t):
    """n, c, kh, kw, sh, sw: windows of at least 2 along each axis (a window of 1 is every pooling at once)."""
    n, c, sh, sw = dims(t, 4, 1, 4)
    kh, kw = dims(t, 2, 2, 4)
    return n, c, kh, kw, sh, sw


@checks.hidden("convolution.MaxPool2d.shapes", points=0.25)
def _(t):
    n, c, kh, kw, sh, sw = pool_sizes(t)
    h, w = kh + dims(t, 1, 0, 7)[0], kw + dims(t, 1, 0, 7)[0]
    pool_backward(t, "MaxPool2d", pool_input(t, n, c, h, w), pair_or_int(kh, kw), pair_or_int(sh, sw))


@checks.hidden("convolution.AvgPool2d.shapes", points=0.25)
def _(t):
    n, c, kh, kw, sh, sw = pool_sizes(t)
    h, w = kh + dims(t, 1, 0, 7)[0], kw + dims(t, 1, 0, 7)[0]
    pool_backward(t, "AvgPool2d", t.randn(n, c, h, w), pair_or_int(kh, kw), pair_or_int(sh, sw))
    pool_backward(t, "AvgPool2d", t.randn(2, 2, 7, 8, dtype=F32), 3, 2)


# --- conv_transpose2d ------------------------------------------------------


@checks.hidden("convolution.conv_transpose2d.shapes", points=0.5)
def _(t):
    for number, dtype in enumerate((F64, F64, F32)):
        # the first draw pads both axes (at least 2 pixels and a kernel of 2 leave room for it)
        least = 2 if number == 0 else 1
        n, cin, cout, sh, sw = dims(t, 5, 1, 4)
        kh, kw = dims(t, 2, least, 4)
        h, w = dims(t, 2, least, 6)
        # the output is (h - 1) * stride - 2 * padding + kernel high: keep it at least 1
        ph = dims(t, 1, least - 1, ((h - 1) * sh + kh - 1) // 2 + 1)[0]
        pw = dims(t, 1, least - 1, ((w - 1) * sw + kw - 1) // 2 + 1)[0]
        options = {"stride": pair_or_int(sh, sw), "padding": pair_or_int(ph, pw)}
        transposed(t, (n, cin, h, w), (cin, cout, kh, kw), options, dtype=dtype)


# --- iou_per_class, dice_loss ----------------------------------------------


@checks.hidden("convolution.iou_per_class.shapes", points=0.25)
def _(t):
    n, h, w = dims(t, 3, 1, 8)
    used, extra = dims(t, 2, 2, 5)  # labels come from `used` classes; `extra` more classes occur nowhere
    iou(t, t.randint(0, used, n, h, w), t.randint(0, used, n, h, w), used + extra)


@checks.hidden("convolution.dice_loss.empty_classes", points=0.25)
def _(t):
    # at least 2 images: sums over the whole batch differ from per-image ones
    n, h, w = dims(t, 1, 2, 6) + dims(t, 2, 1, 6)
    dice(t, softmax_probs(t, n, 5, h, w), t.randint(1, 3, n, h, w))  # classes 0, 3, 4 are empty
    dice(t, softmax_probs(t, n, 3, h, w, dtype=F32), t.randint(0, 3, n, h, w))
