"""hw2, `convolution.py`: convolution, pooling and segmentation metrics by hand.

Images are NCHW tensors: x[n, c, h, w] is pixel (h, w) of channel c of image n.
A conv2d weight is (Cout, Cin, kH, kW): one kH x kW filter per pair of output
and input channel. `stride`, `padding`, `dilation` and `kernel_size` accept an
int or an (h, w) pair; `_pair` turns either into a pair.

(Dana) conv2d and Conv2d follow the definition directly: for every output
pixel, take the window under the filter and contract it with the weights.
Easy to check against the formula in the lecture notes.
TODO: vectorize with im2col if there is time left.
"""

import math

import torch
import torch.nn.functional as F


def _pair(v):
    """An int n -> (n, n); an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad(x, ph, pw):
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw); x framed by zeros (x itself when ph = pw = 0)."""
    N, C, H, W = x.shape
    xp = x.new_zeros(N, C, H + 2 * ph, W + 2 * pw)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def _output_size(H, W, kh, kw, sh, sw, dh, dw):
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    return Ho, Wo


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    Cout, Cin, kh, kw = weight.shape
    xp = _pad(x, ph, pw)
    N, _, H, W = xp.shape
    Ho, Wo = _output_size(H, W, kh, kw, sh, sw, dh, dw)
    out = x.new_zeros(N, Cout, Ho, Wo)
    for i in range(Ho):
        for j in range(Wo):
            r, c = i * sh, j * sw
            window = xp[:, :, r : r + dh * (kh - 1) + 1 : dh, c : c + dw * (kw - 1) + 1 : dw]  # (N, Cin, kh, kw)
            out[:, :, i, j] = torch.tensordot(window, weight, dims=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out = out + bias.view(1, Cout, 1, 1)
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
        self.x = x
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        sh, sw = self.stride
        ph, pw = self.padding
        dh, dw = self.dilation
        kh, kw = self.weight.shape[2:]
        xp = _pad(self.x, ph, pw)
        dxp = torch.zeros_like(xp)
        dW = torch.zeros_like(self.weight)
        N, Cout, Ho, Wo = grad_out.shape
        for i in range(Ho):
            for j in range(Wo):
                r, c = i * sh, j * sw
                rows = slice(r, r + dh * (kh - 1) + 1, dh)
                cols = slice(c, c + dw * (kw - 1) + 1, dw)
                g = grad_out[:, :, i, j]  # (N, Cout)
                dW += torch.tensordot(g, xp[:, :, rows, cols], dims=([0], [0]))
                dxp[:, :, rows, cols] += torch.tensordot(g, self.weight, dims=([1], [0]))
        self.dweight = dW
        self.dbias = grad_out.sum(dim=(0, 2, 3))
        H, W = self.x.shape[2:]
        return dxp[:, :, ph : ph + H, pw : pw + W]

    def parameters(self):
        """[weight, bias]."""
        return [self.weight, self.bias]

    def gradients(self):
        """[dweight, dbias], aligned with parameters()."""
        return [self.dweight, self.dbias]


def _unfold_windows(x, kernel_size, stride):
    """(N, C, H, W) -> (N, C, Ho, Wo, kH, kW) view of the pooling windows (Tensor.unfold, no copy)."""
    (kh, kw), (sh, sw) = kernel_size, stride
    return x.unfold(2, kh, sh).unfold(3, kw, sw)


def _add_windows_back(g, shape, kernel_size, stride):
    """(N, C, Ho, Wo, kH, kW) -> zeros of `shape` with each window entry added onto its pixel."""
    (kh, kw), (sh, sw) = kernel_size, stride
    _, _, Ho, Wo, _, _ = g.shape
    dx = g.new_zeros(shape)
    for a in range(kh):
        for b in range(kw):
            dx[:, :, a : a + sh * (Ho - 1) + 1 : sh, b : b + sw * (Wo - 1) + 1 : sw] += g[..., a, b]
    return dx


class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        # by default the windows tile the image without overlapping
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the max of each window, caches where in the window it is."""
        self.shape = x.shape
        win = _unfold_windows(x, self.kernel_size, self.stride)
        flat = win.reshape(*win.shape[:4], -1)
        out, self.idx = flat.max(dim=-1)
        return out

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        kh, kw = self.kernel_size
        onehot = torch.zeros(*grad_out.shape, kh * kw, dtype=grad_out.dtype, device=grad_out.device)
        onehot.scatter_(-1, self.idx.unsqueeze(-1), 1.0)
        g = (onehot * grad_out.unsqueeze(-1)).view(*grad_out.shape, kh, kw)
        return _add_windows_back(g, self.shape, self.kernel_size, self.stride)


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        self.shape = x.shape
        return _unfold_windows(x, self.kernel_size, self.stride).mean(dim=(-1, -2))

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        kh, kw = self.kernel_size
        g = (grad_out / (kh * kw))[..., None, None].expand(*grad_out.shape, kh, kw)
        return _add_windows_back(g, self.shape, self.kernel_size, self.stride)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, Cin, H, W = x.shape
    _, Cout, kh, kw = weight.shape
    full = x.new_zeros(N, Cout, (H - 1) * sh + kh, (W - 1) * sw + kw)
    # one kernel tap at a time: tap (a, b) of every input pixel lands on a strided grid
    for a in range(kh):
        for b in range(kw):
            contrib = torch.einsum("nchw,co->nohw", x, weight[:, :, a, b])
            full[:, :, a : a + sh * (H - 1) + 1 : sh, b : b + sw * (W - 1) + 1 : sw] += contrib
    out = full[:, :, ph : full.shape[2] - ph, pw : full.shape[3] - pw]
    if bias is not None:
        out = out + bias.view(1, Cout, 1, 1)
    return out


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    P = F.one_hot(pred.flatten(), num_classes).bool()  # (pixels, classes)
    T = F.one_hot(target.flatten(), num_classes).bool()
    inter = (P & T).sum(0).double()
    union = (P | T).sum(0).double()
    iou = inter / union
    iou[union == 0] = float("nan")
    return iou


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    C = probs.shape[1]
    t = F.one_hot(target, C).permute(0, 3, 1, 2).to(probs.dtype)
    num = 2 * (probs * t).sum(dim=(0, 2, 3)) + eps
    den = probs.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3)) + eps
    return 1 - (num / den).mean()
