"""hw2, `convolution.py`: convolution, pooling and segmentation metrics by hand.

Images are NCHW tensors: x[n, c, h, w] is pixel (h, w) of channel c of image n.
A conv2d weight is (Cout, Cin, kH, kW): one kH x kW filter per pair of output
and input channel. `stride`, `padding`, `dilation` and `kernel_size` accept an
int or an (h, w) pair; `_pair` turns either into a pair.
"""

import math

import torch
import torch.nn.functional as F


def _pair(v):
    """An int n -> (n, n); an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad(x, ph, pw):
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw); x framed by zeros (x itself when ph = pw = 0)."""
    if not (ph or pw):
        return x
    out = x.new_zeros(x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw)
    out[..., ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
    return out


def _windows(x, kernel_size, stride, dilation):
    """(N, C, H, W) -> view (N, C, kH, kW, Ho, Wo) with [n, c, i, j, y, z] = x[n, c, y*sh + i*dh, z*sw + j*dw]."""
    N, C, H, W = x.shape
    kh, kw = kernel_size
    sh, sw = stride
    dh, dw = dilation
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    s = x.stride()
    return x.as_strided((N, C, kh, kw, Ho, Wo), (s[0], s[1], dh * s[2], dw * s[3], sh * s[2], sw * s[3]), x.storage_offset())


def _col2im(cols, shape, stride, dilation):
    """(N, C, kH, kW, Ho, Wo) -> shape (N, C, H, W); adds every window entry back onto the pixel it came from."""
    _, _, kh, kw, Ho, Wo = cols.shape
    sh, sw = stride
    dh, dw = dilation
    out = cols.new_zeros(shape)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh : i * dh + sh * (Ho - 1) + 1 : sh, j * dw : j * dw + sw * (Wo - 1) + 1 : sw] += cols[:, :, i, j]
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    # same semantics as F.conv2d, so why not use it (it is the fastest one anyway)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


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
        self.x = x
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        ph, pw = self.padding
        xp = _pad(self.x, ph, pw)
        win = _windows(xp, self.kernel_size, self.stride, self.dilation)  # (N, Cin, kh, kw, Ho, Wo)
        self.dbias = grad_out.sum((0, 2, 3))
        self.dweight = torch.einsum("nohw,ncijhw->ocij", grad_out, win)
        dwin = torch.einsum("nohw,ocij->ncijhw", grad_out, self.weight)
        dxp = _col2im(dwin, xp.shape, self.stride, self.dilation)
        return dxp[:, :, ph : ph + self.x.shape[2], pw : pw + self.x.shape[3]]

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
        self.shape = x.shape
        w = _windows(x, self.kernel_size, self.stride, (1, 1))
        N, C, kh, kw, Ho, Wo = w.shape
        vals, self.arg = w.reshape(N, C, kh * kw, Ho, Wo).max(2)
        return vals

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        N, C, Ho, Wo = grad_out.shape
        kh, kw = self.kernel_size
        taps = torch.arange(kh * kw, device=grad_out.device).view(1, 1, -1, 1, 1)
        routed = (taps == self.arg.unsqueeze(2)).to(grad_out.dtype) * grad_out.unsqueeze(2)
        return _col2im(routed.view(N, C, kh, kw, Ho, Wo), self.shape, self.stride, (1, 1))


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        self.shape = x.shape
        return _windows(x, self.kernel_size, self.stride, (1, 1)).mean((2, 3))

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        N, C, Ho, Wo = grad_out.shape
        kh, kw = self.kernel_size
        g = (grad_out / (kh * kw)).view(N, C, 1, 1, Ho, Wo).expand(N, C, kh, kw, Ho, Wo)
        return _col2im(g, self.shape, self.stride, (1, 1))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, Cin, H, W = x.shape
    Cout, kh, kw = weight.shape[1:]
    cols = torch.einsum("nchw,coij->noijhw", x, weight)
    full = _col2im(cols, (N, Cout, (H - 1) * sh + kh, (W - 1) * sw + kw), (sh, sw), (1, 1))
    out = full[:, :, ph : full.shape[2] - ph, pw : full.shape[3] - pw]
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    c = torch.arange(num_classes, device=pred.device).view(-1, 1)
    p = pred.reshape(1, -1) == c
    t = target.reshape(1, -1) == c
    inter = (p & t).sum(1).double()
    union = (p | t).sum(1).double()
    return torch.where(union == 0, torch.full_like(union, float("nan")), inter / union)


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    C = probs.shape[1]
    onehot = (target[:, None] == torch.arange(C, device=target.device)[None, :, None, None]).to(probs.dtype)
    inter = torch.einsum("nchw,nchw->c", probs, onehot)
    dice = (2 * inter + eps) / (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + eps)
    return 1 - dice.mean()
