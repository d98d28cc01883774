"""hw2: convolution, pooling and segmentation metrics.

The convolution is written in numpy: the tensors go to numpy arrays and back
(same dtype and device). The windows are a sliding_window_view of the padded
input, contracted with the kernel by np.einsum; backward gets the window
gradients by einsum too and adds them back onto the pixels one kernel tap at
a time (a strided slice covers all output pixels at once).
"""

import math

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _numpy(t):
    return t.detach().cpu().numpy()


def _tensor(a, like):
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype=like.dtype, device=like.device)


def _windows(xp, kh, kw, stride, dilation):
    """(N, C, Hp, Wp) -> view (N, C, Ho, Wo, kH, kW)."""
    (sh, sw), (dh, dw) = stride, dilation
    spans = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return spans[:, :, ::sh, ::sw, ::dh, ::dw]


def _padded(a, ph, pw):
    return np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d."""
    w = _numpy(weight)
    windows = _windows(_padded(_numpy(x), *_pair(padding)), *w.shape[2:], _pair(stride), _pair(dilation))
    out = np.einsum("nchwij,ocij->nohw", windows, w, optimize=True)
    if bias is not None:
        out = out + _numpy(bias).reshape(-1, 1, 1)
    return _tensor(out, x)


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1):
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        kh, kw = self.kernel_size
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.weight = (2 * torch.rand(out_channels, in_channels, kh, kw) - 1) * bound
        self.bias = (2 * torch.rand(out_channels) - 1) * bound
        self.dweight = None
        self.dbias = None

    def forward(self, x):
        w = _numpy(self.weight)
        self.xp = _padded(_numpy(x), *self.padding)
        self.x_shape = x.shape
        self.windows = _windows(self.xp, *w.shape[2:], self.stride, self.dilation)
        out = np.einsum("nchwij,ocij->nohw", self.windows, w, optimize=True)
        return _tensor(out + _numpy(self.bias).reshape(-1, 1, 1), x)

    def backward(self, grad_out):
        g = _numpy(grad_out)
        w = _numpy(self.weight)
        _, _, kh, kw = w.shape
        ho, wo = g.shape[2:]
        self.dbias = _tensor(g.sum(axis=(0, 2, 3)), grad_out)
        self.dweight = _tensor(np.einsum("nohw,nchwij->ocij", g, self.windows, optimize=True), grad_out)
        dwindows = np.einsum("nohw,ocij->nchwij", g, w, optimize=True)
        dxp = np.zeros_like(self.xp)
        (sh, sw), (dh, dw) = self.stride, self.dilation
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)  # the output rows' pixels under tap i
                cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                dxp[:, :, rows, cols] += dwindows[..., i, j]
        ph, pw = self.padding
        h, wd = self.x_shape[2:]
        return _tensor(dxp[:, :, ph : ph + h, pw : pw + wd], grad_out)

    def parameters(self):
        return [self.weight, self.bias]

    def gradients(self):
        return [self.dweight, self.dbias]


# --- the untimed units: the reference solution's, on torch tensors --------------


def _pool_windows(x, kernel_size, stride, dilation):
    """(N, C, H, W) -> view (N, C, kH, kW, Ho, Wo) with [n, c, i, j, y, z] = x[n, c, y*sh + i*dh, z*sw + j*dw]."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    # a window spans dh*(kh-1) + 1 rows; the last one must still fit inside x
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    sn, sc, sy, sz = x.stride()
    # No copy: the windows are x's own memory read with other steps. One kernel
    # row further is dh rows of x further; one output row further is sh rows.
    return x.as_strided((n, c, kh, kw, ho, wo), (sn, sc, dh * sy, dw * sz, sh * sy, sw * sz), x.storage_offset())


def _scatter_windows(cols, shape, stride, dilation):
    """(N, C, kH, kW, Ho, Wo) -> shape (N, C, H, W); adds every window entry back onto the pixel it came from."""
    # The adjoint of _windows: _windows reads pixel (y*sh + i*dh, z*sw + j*dw)
    # into entry [i, j, y, z], so its gradient flows back along the same path.
    _, _, kh, kw, ho, wo = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    out = torch.zeros(shape, dtype=cols.dtype, device=cols.device)
    # One kernel tap (i, j) at a time: its Ho x Wo entries came from a strided grid
    # of pixels, so a strided slice adds them all at once. Windows overlap, so
    # several taps can hit one pixel: accumulate with +=.
    for i in range(kh):
        for j in range(kw):
            ys = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)  # the Ho rows that tap i read
            zs = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)  # the Wo columns that tap j read
            out[:, :, ys, zs] += cols[:, :, i, j]
    return out


class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        # by default the windows tile the image without overlapping
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the max of each window, caches where in the window it is."""
        self.x_shape = x.shape
        kh, kw = self.kernel_size
        win = _pool_windows(x, self.kernel_size, self.stride, (1, 1))  # (N, C, kH, kW, Ho, Wo)
        n, c, _, _, ho, wo = win.shape
        out, self.argmax = win.reshape(n, c, kh * kw, ho, wo).max(dim=2)
        return out

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        n, c, ho, wo = grad_out.shape
        kh, kw = self.kernel_size
        # the max only depends on the entry that won it: put the gradient there, 0 elsewhere
        dwin = torch.zeros(n, c, kh * kw, ho, wo, dtype=grad_out.dtype, device=grad_out.device)
        dwin.scatter_(2, self.argmax.unsqueeze(2), grad_out.unsqueeze(2))
        # overlapping windows (stride < kernel) may share a maximum: _col2im adds their gradients
        return _scatter_windows(dwin.view(n, c, kh, kw, ho, wo), self.x_shape, self.stride, (1, 1))


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        self.x_shape = x.shape
        return _pool_windows(x, self.kernel_size, self.stride, (1, 1)).mean(dim=(2, 3))

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        n, c, ho, wo = grad_out.shape
        kh, kw = self.kernel_size
        # every entry weighs 1/(kH*kW) in its window's mean; expand is a view, not a copy
        dwin = (grad_out / (kh * kw))[:, :, None, None].expand(n, c, kh, kw, ho, wo)
        return _scatter_windows(dwin, self.x_shape, self.stride, (1, 1))  # overlapping windows add up


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    # conv2d maps windows to pixels; its transpose maps each input pixel to a window:
    # pixel x[n, c, y, z] adds x[n, c, y, z] * weight[c] onto the kH x kW patch at (y*sh, z*sw).
    # That is Conv2d.backward's grad wrt x, with x in the role of grad_out.
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    # every pixel's patch at once: (Cout*kH*kW, Cin) @ (Cin, H*W) per image
    cols = (weight.reshape(cin, -1).T @ x.reshape(n, cin, h * w)).view(n, cout, kh, kw, h, w)
    full = _scatter_windows(cols, (n, cout, (h - 1) * sh + kh, (w - 1) * sw + kw), (sh, sw), (1, 1))
    # padding p of the conv it transposes: that conv's input had p extra rows on each side,
    # which are no part of the output here; crop them
    hf, wf = full.shape[2:]
    out = full[:, :, ph : hf - ph, pw : wf - pw]
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    return out


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    classes = torch.arange(num_classes, device=pred.device)
    # one column per class: is each pixel predicted / labelled as that class?
    p = pred.reshape(-1, 1) == classes  # (N*H*W, num_classes) bool
    t = target.reshape(-1, 1) == classes
    intersection = (p & t).sum(dim=0).to(torch.float64)
    union = (p | t).sum(dim=0).to(torch.float64)
    # a class in neither pred nor target has no IoU at all (0/0): NaN, so that a mean
    # over classes can skip it (nanmean) instead of counting it as a perfect 1 or a failed 0
    return torch.where(union > 0, intersection / union, torch.nan)


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    classes = torch.arange(probs.shape[1], device=target.device).view(1, -1, 1, 1)
    t = (target.unsqueeze(1) == classes).to(probs.dtype)  # one-hot, (N, C, H, W)
    # the sums run over N, H and W: one Dice score per class, for the whole batch
    intersection = (probs * t).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    # eps keeps 0/0 away for a class absent from the target and barely predicted (it then scores ~1)
    dice = (2 * intersection + eps) / (total + eps)
    return 1 - dice.mean()
