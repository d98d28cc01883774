"""hw2, `convolution.py`: convolution, pooling and segmentation metrics by hand.

Images are NCHW tensors: x[n, c, h, w] is pixel (h, w) of channel c of image n.
A conv2d weight is (Cout, Cin, kH, kW): one kH x kW filter per pair of output
and input channel. `stride`, `padding`, `dilation` and `kernel_size` accept an
int or an (h, w) pair; `_pair` turns either into a pair.

Chen's notes: I loop over the kH*kW kernel taps only (9 iterations for a 3x3
kernel), never over pixels. Tap (i, j) sees the strided slice
xp[:, :, i*dh :: sh, j*dw :: sw] of the padded input (cut to Ho x Wo), so
stacking the slices of all taps gives every window at once.
"""

import math

import torch


def _pair(v):
    """An int n -> (n, n); an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad(x, ph, pw):
    """(N, C, H, W) -> (N, C, H + 2 ph, W + 2 pw); x framed by zeros (x itself when ph = pw = 0)."""
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    out = torch.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype, device=x.device)
    out[:, :, ph : H + ph, pw : W + pw] = x
    return out


def _tap_slices(H, W, k, s, d):
    """Output size (Ho, Wo) and, per tap (i, j), the (row slice, col slice) it reads."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    taps = []
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (Ho - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (Wo - 1) * sw + 1, sw)
            taps.append((rows, cols))
    return (Ho, Wo), taps


def _gather(x, k, s, d):
    """(N, C, H, W) -> (N, C, kH*kW, Ho, Wo): the windows, one tap per index of dim 2."""
    (Ho, Wo), taps = _tap_slices(x.shape[2], x.shape[3], k, s, d)
    return torch.stack([x[:, :, r, c] for r, c in taps], dim=2)


def _spread(g, shape, k, s, d):
    """Adjoint of _gather: (N, C, kH*kW, Ho, Wo) -> zeros of `shape` with every entry added back."""
    _, taps = _tap_slices(shape[2], shape[3], k, s, d)
    out = torch.zeros(shape, dtype=g.dtype, device=g.device)
    for t, (r, c) in enumerate(taps):
        out[:, :, r, c] += g[:, :, t]
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    ph, pw = _pair(padding)
    Cout, Cin, kh, kw = weight.shape
    cols = _gather(_pad(x, ph, pw), (kh, kw), _pair(stride), _pair(dilation))  # (N, Cin, K, Ho, Wo)
    N, _, K, Ho, Wo = cols.shape
    out = torch.matmul(weight.reshape(Cout, Cin * K), cols.reshape(N, Cin * K, Ho * Wo))
    out = out.reshape(N, Cout, Ho, Wo)
    if bias is not None:
        out = out + bias.reshape(1, Cout, 1, 1)
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
        ph, pw = self.padding
        xp = _pad(x, ph, pw)
        self.padded_shape = xp.shape
        Cout, Cin, kh, kw = self.weight.shape
        cols = _gather(xp, (kh, kw), self.stride, self.dilation)
        N, _, K, Ho, Wo = cols.shape
        self.cols = cols.reshape(N, Cin * K, Ho * Wo)
        out = torch.matmul(self.weight.reshape(Cout, -1), self.cols).reshape(N, Cout, Ho, Wo)
        return out + self.bias.reshape(1, Cout, 1, 1)

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        N, Cout, Ho, Wo = grad_out.shape
        _, Cin, kh, kw = self.weight.shape
        g = grad_out.reshape(N, Cout, Ho * Wo)
        self.dbias = g.sum(dim=(0, 2))
        # out = W @ cols for every image => dW = sum_n g_n @ cols_n^T
        self.dweight = torch.einsum("nol,nkl->ok", g, self.cols).reshape(self.weight.shape)
        dcols = torch.matmul(self.weight.reshape(Cout, -1).T, g)  # (N, Cin*K, L)
        dcols = dcols.reshape(N, Cin, kh * kw, Ho, Wo)
        dxp = _spread(dcols, self.padded_shape, (kh, kw), self.stride, self.dilation)
        ph, pw = self.padding
        H, W = self.padded_shape[2] - 2 * ph, self.padded_shape[3] - 2 * pw
        return dxp[:, :, ph : ph + H, pw : pw + W]

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
        self.in_shape = x.shape
        cols = _gather(x, self.kernel_size, self.stride, (1, 1))  # (N, C, K, Ho, Wo)
        return cols.max(dim=2).values

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        kh, kw = self.kernel_size
        # every element of the window contributed to the output, so it gets its share of the gradient
        share = (grad_out / (kh * kw)).unsqueeze(2).expand(-1, -1, kh * kw, -1, -1)
        return _spread(share, self.in_shape, self.kernel_size, self.stride, (1, 1))


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        self.in_shape = x.shape
        return _gather(x, self.kernel_size, self.stride, (1, 1)).mean(dim=2)

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        kh, kw = self.kernel_size
        share = (grad_out / (kh * kw)).unsqueeze(2).expand(-1, -1, kh * kw, -1, -1)
        return _spread(share, self.in_shape, self.kernel_size, self.stride, (1, 1))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, Cin, H, W = x.shape
    _, Cout, kh, kw = weight.shape
    # the backward of a conv2d (stride s, padding p) with respect to its input
    dcols = torch.matmul(weight.reshape(Cin, Cout * kh * kw).T, x.reshape(N, Cin, H * W))
    dcols = dcols.reshape(N, Cout, kh * kw, H, W)
    Hf, Wf = (H - 1) * sh + kh, (W - 1) * sw + kw
    full = _spread(dcols, (N, Cout, Hf, Wf), (kh, kw), (sh, sw), (1, 1))
    out = full[:, :, ph : Hf - ph, pw : Wf - pw]
    if bias is not None:
        out = out + bias.reshape(1, Cout, 1, 1)
    return out


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    ious = []
    for c in range(num_classes):
        p = pred == c
        t = target == c
        inter = (p & t).sum().item()
        union = (p | t).sum().item()
        ious.append(inter / union if union > 0 else float("nan"))
    return torch.tensor(ious, dtype=torch.float64, device=pred.device)


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    C = probs.shape[1]
    scores = []
    for c in range(C):
        p = probs[:, c]
        t = (target == c).to(probs.dtype)
        scores.append((2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps))
    return 1 - torch.stack(scores).mean()
