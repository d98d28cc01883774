"""hw2, `convolution.py`: convolution, pooling and segmentation metrics by hand.

Images are NCHW tensors: x[n, c, h, w] is pixel (h, w) of channel c of image n.
A conv2d weight is (Cout, Cin, kH, kW): one kH x kW filter per pair of output
and input channel. `stride`, `padding`, `dilation` and `kernel_size` accept an
int or an (h, w) pair; `_pair` turns either into a pair.

What is here:
  * `conv2d` and the layer `Conv2d` (forward and backward), as im2col: every
    output pixel is the dot product of one window of the input with a filter,
    so gather all windows as the columns of a matrix (a strided view, then one
    copy) and do every dot product in a single matmul;
  * `MaxPool2d` and `AvgPool2d`, forward and backward, on the same windows;
  * `conv_transpose2d`, the transpose (gradient with respect to the input) of
    conv2d: each input pixel scatters a weighted filter into the output;
  * `iou_per_class` and `dice_loss`, the metric and the loss of segmentation.

The private helpers `_pad`, `_windows`, `_col2im` and `_im2col` are shared by
the units; you may implement and use them, or ignore them. Outputs keep the
dtype and device of the inputs: new tensors are made with
`dtype=x.dtype, device=x.device`. Inputs are never modified in place.
"""

import math

import torch


def _pair(v):
    """An int n -> (n, n); an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad(x, ph, pw):
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw); x framed by zeros (x itself when ph = pw = 0)."""
    n, c, h, w = x.shape
    top_bottom = x.new_zeros(n, c, ph, w)
    x = torch.cat([top_bottom, x, top_bottom], dim=2)
    left_right = x.new_zeros(n, c, h + 2 * ph, pw)
    return torch.cat([left_right, x, left_right], dim=3)


def _windows(x, kernel_size, stride, dilation):
    """(N, C, H, W) -> view (N, C, kH, kW, Ho, Wo) with [n, c, i, j, y, z] = x[n, c, y*sh + i*dh, z*sw + j*dw]."""
    raise NotImplementedError("_windows: write your solution here")


def _col2im(cols, shape, stride, dilation):
    """(N, C, kH, kW, Ho, Wo) -> shape (N, C, H, W); adds every window entry back onto the pixel it came from."""
    raise NotImplementedError("_col2im: write your solution here")


def _im2col(x, kernel_size, stride, padding, dilation):
    """(N, Cin, H, W) -> (cols (N, Cin*kH*kW, Ho*Wo), (Ho, Wo)); column l holds output pixel l's window."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    xp = _pad(x, ph, pw)
    n, cin, h, w = xp.shape
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    # row index of kernel row i for output row y is y*sh + i*dh (same for columns)
    dev = x.device
    rows = (torch.arange(kh, device=dev) * dh)[:, None] + (torch.arange(ho, device=dev) * sh)[None, :]  # (kh, ho)
    cols = (torch.arange(kw, device=dev) * dw)[:, None] + (torch.arange(wo, device=dev) * sw)[None, :]  # (kw, wo)
    # fancy indexing copies all windows at once: (n, cin, kh, ho, kw, wo)
    patches = xp[:, :, rows[:, :, None, None], cols[None, None, :, :]]
    patches = patches.permute(0, 1, 2, 4, 3, 5)  # (n, cin, kh, kw, ho, wo)
    return patches.reshape(n, cin * kh * kw, ho * wo), (ho, wo)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    cout, cin, kh, kw = weight.shape
    cols, (ho, wo) = _im2col(x, (kh, kw), _pair(stride), _pair(padding), _pair(dilation))
    out = weight.reshape(cout, cin * kh * kw) @ cols  # (N, Cout, Ho*Wo)
    out = out.reshape(x.shape[0], cout, ho, wo)
    if bias is not None:
        out = out + bias.reshape(1, cout, 1, 1)
    return out


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1):
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        kh, kw = self.kernel_size
        # uniform in +-1/sqrt(fan_in), fan_in = Cin*kH*kW: the range torch.nn.Conv2d uses
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.weight = (2 * torch.rand(out_channels, in_channels, kh, kw) - 1) * bound
        self.bias = (2 * torch.rand(out_channels) - 1) * bound
        self.dweight = None
        self.dbias = None

    def forward(self, x):
        """(N, Cin, H, W) -> (N, Cout, Ho, Wo); conv2d with the layer's settings, caches what backward needs."""
        raise NotImplementedError("Conv2d.forward: write your solution here")

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        raise NotImplementedError("Conv2d.backward: write your solution here")

    def parameters(self):
        """[weight, bias]."""
        return [self.weight, self.bias]

    def gradients(self):
        """[dweight, dbias], aligned with parameters()."""
        return [self.dweight, self.dbias]


class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        # by default the windows tile the image without overlapping
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the max of each window, caches where in the window it is."""
        raise NotImplementedError("MaxPool2d.forward: write your solution here")

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        raise NotImplementedError("MaxPool2d.backward: write your solution here")


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        raise NotImplementedError("AvgPool2d.forward: write your solution here")

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        raise NotImplementedError("AvgPool2d.backward: write your solution here")


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    raise NotImplementedError("conv_transpose2d: write your solution here")


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    raise NotImplementedError("iou_per_class: write your solution here")


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    raise NotImplementedError("dice_loss: write your solution here")
