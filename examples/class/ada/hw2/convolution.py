"""hw2, `convolution.py`: convolution, pooling and segmentation metrics by hand.

Images are NCHW tensors: x[n, c, h, w] is pixel (h, w) of channel c of image n.
A conv2d weight is (Cout, Cin, kH, kW): one kH x kW filter per pair of output
and input channel. `stride`, `padding`, `dilation` and `kernel_size` accept an
int or an (h, w) pair; `_pair` turns either into a pair.

My approach (Ada): I do not use the suggested _windows/_col2im helpers.
  * `_patches` gives a strided *view* (N, C, Ho, Wo, kH, kW) of all the
    sliding windows, so a convolution is one tensordot over (C, kH, kW);
  * the gradient with respect to the input is itself a convolution: spread
    grad_out apart by the stride (zeros in between), pad it by the dilated
    kernel size - 1, and correlate it with the flipped kernel (Cin and Cout
    swapped). conv_transpose2d is exactly that operation, so it reuses it;
  * pooling backward adds window entries back with index_add_ / scatter_add_
    over flat pixel indices (no Python loop at all).
"""

import math

import torch


def _pair(v):
    """An int n -> (n, n); an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def _zero_pad(x, ph, pw):
    """x framed by ph rows and pw columns of zeros (a new tensor; x itself when there is no padding)."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    framed = x.new_zeros((n, c, h + 2 * ph, w + 2 * pw))
    framed[:, :, ph : ph + h, pw : pw + w] = x
    return framed


def _out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def _patches(x, kh, kw, sh, sw, dh, dw):
    """View (N, C, Ho, Wo, kH, kW): [n, c, y, z, i, j] = x[n, c, y*sh + i*dh, z*sw + j*dw]."""
    n, c, h, w = x.shape
    ho, wo = _out_size(h, kh, sh, dh), _out_size(w, kw, sw, dw)
    s_n, s_c, s_h, s_w = x.stride()
    return x.as_strided(
        size=(n, c, ho, wo, kh, kw),
        stride=(s_n, s_c, sh * s_h, sw * s_w, dh * s_h, dw * s_w),
        storage_offset=x.storage_offset(),
    )


def _pixel_index(h, w, ho, wo, kh, kw, sh, sw, dh, dw, device):
    """(Ho*Wo*kH*kW,) int64: the flat index row*w + col of the pixel behind each patch entry."""
    rows = (torch.arange(ho, device=device) * sh).view(ho, 1, 1, 1) + (torch.arange(kh, device=device) * dh).view(1, 1, kh, 1)
    cols = (torch.arange(wo, device=device) * sw).view(1, wo, 1, 1) + (torch.arange(kw, device=device) * dw).view(1, 1, 1, kw)
    return (rows * w + cols).reshape(-1)


def _scatter_back(patch_grads, h, w, sh, sw, dh, dw):
    """(N, C, Ho, Wo, kH, kW) -> (N, C, h, w): every entry added onto its source pixel (overlaps add up)."""
    n, c, ho, wo, kh, kw = patch_grads.shape
    index = _pixel_index(h, w, ho, wo, kh, kw, sh, sw, dh, dw, patch_grads.device)
    flat = patch_grads.new_zeros((n, c, h * w))
    flat.index_add_(2, index, patch_grads.reshape(n, c, -1))
    return flat.view(n, c, h, w)


def _spread(x, sh, sw, top, bottom, left, right):
    """Zeros with x's pixels placed sh rows / sw columns apart, framed by the given margins of zeros."""
    n, c, h, w = x.shape
    h_in, w_in = (h - 1) * sh + 1, (w - 1) * sw + 1
    out = x.new_zeros((n, c, top + h_in + bottom, left + w_in + right))
    out[:, :, top : top + h_in : sh, left : left + w_in : sw] = x
    return out


def _correlate(x, weight, sh=1, sw=1, dh=1, dw=1):
    """Cross-correlation of an already padded x with weight (Cout, Cin, kH, kW); no bias."""
    kh, kw = weight.shape[-2:]
    p = _patches(x, kh, kw, sh, sw, dh, dw)  # (N, Cin, Ho, Wo, kH, kW)
    # contract (Cin, kH, kW): tensordot gives (Cout, N, Ho, Wo)
    return torch.tensordot(weight, p, dims=([1, 2, 3], [1, 4, 5])).transpose(0, 1).contiguous()


def _input_grad(grad_out, weight, in_h, in_w, sh, sw, dh, dw):
    """Gradient of a (padded) input of size in_h x in_w of _correlate, given grad_out (N, Cout, Ho, Wo)."""
    kh, kw = weight.shape[-2:]
    ho, wo = grad_out.shape[-2:]
    mh, mw = dh * (kh - 1), dw * (kw - 1)
    # rows/cols at the bottom/right that no window reached (stride did not divide evenly)
    extra_h = in_h - ((ho - 1) * sh + 1 + mh)
    extra_w = in_w - ((wo - 1) * sw + 1 + mw)
    g = _spread(grad_out, sh, sw, mh, mh + extra_h, mw, mw + extra_w)
    flipped = weight.flip(2, 3).transpose(0, 1)  # (Cin, Cout, kH, kW), rotated by 180 degrees
    return _correlate(g, flipped, 1, 1, dh, dw)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    # cross-correlation (no kernel flip): sum over input channel and kernel position
    y = _correlate(_zero_pad(x, ph, pw), weight, sh, sw, dh, dw)
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y


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
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        kh, kw = self.weight.shape[-2:]
        self.in_hw = x.shape[-2:]
        # keep the window view of the padded input: backward needs it for dweight
        self.patches = _patches(_zero_pad(x, ph, pw), kh, kw, sh, sw, dh, dw)
        y = torch.tensordot(self.weight, self.patches, dims=([1, 2, 3], [1, 4, 5])).transpose(0, 1)
        return y + self.bias[None, :, None, None]

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        h, w = self.in_hw
        self.dbias = grad_out.sum(dim=(0, 2, 3))
        # y[n,o,y,z] = sum_{c,i,j} P[n,c,y,z,i,j] W[o,c,i,j]  =>  dW[o,c,i,j] = sum_{n,y,z} P * g
        self.dweight = torch.tensordot(self.patches, grad_out, dims=([0, 2, 3], [0, 2, 3])).permute(3, 0, 1, 2)
        # dx: full correlation of the spread-out gradient with the flipped kernel, on the padded grid
        dx_padded = _input_grad(grad_out, self.weight, h + 2 * ph, w + 2 * pw, sh, sw, dh, dw)
        return dx_padded[:, :, ph : ph + h, pw : pw + w]

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
        kh, kw = self.kernel_size
        sh, sw = self.stride
        n, c, h, w = x.shape
        win = _patches(x, kh, kw, sh, sw, 1, 1)
        ho, wo = win.shape[2], win.shape[3]
        best, where = win.reshape(n, c, ho, wo, kh * kw).max(dim=-1)
        # remember the flat position (row * W + col) in x of every window's winner
        wi, wj = where // kw, where % kw
        rows = torch.arange(ho, device=x.device).view(ho, 1) * sh + wi
        cols = torch.arange(wo, device=x.device).view(1, wo) * sw + wj
        self.winner = (rows * w + cols).reshape(n, c, ho * wo)
        self.in_shape = x.shape
        return best

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        n, c, h, w = self.in_shape
        dx = grad_out.new_zeros((n, c, h * w))
        # scatter_add: a pixel that wins several (overlapping) windows collects all their gradients
        dx.scatter_add_(2, self.winner, grad_out.reshape(n, c, -1))
        return dx.view(n, c, h, w)


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        kh, kw = self.kernel_size
        sh, sw = self.stride
        self.in_hw = x.shape[-2:]
        return _patches(x, kh, kw, sh, sw, 1, 1).mean(dim=(-2, -1))

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        kh, kw = self.kernel_size
        sh, sw = self.stride
        share = (grad_out / (kh * kw))[..., None, None].expand(*grad_out.shape, kh, kw)
        return _scatter_back(share, *self.in_hw, sh, sw, 1, 1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    _, _, h, w = x.shape
    kh, kw = weight.shape[-2:]
    # the transpose of a conv2d (stride s, padding p) is its input gradient: x plays grad_out,
    # weight (Cin, Cout, kH, kW) is already the (Cout, Cin) weight of that conv2d seen from the other side
    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
    full = _input_grad(x, weight, full_h, full_w, sh, sw, 1, 1)
    out = full[:, :, ph : full_h - ph, pw : full_w - pw]
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    k = num_classes
    # confusion matrix in one bincount: entry (t, p) counts pixels labelled t, predicted p
    confusion = torch.bincount((target.reshape(-1) * k + pred.reshape(-1)), minlength=k * k).reshape(k, k)
    confusion = confusion.to(torch.float64)
    tp = torch.diagonal(confusion)
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - tp
    iou = tp / union  # 0 / 0 gives NaN exactly for the classes that never occur
    return iou


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    onehot = torch.zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0)
    dims = (0, 2, 3)
    overlap = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    per_class = (2.0 * overlap + eps) / (denom + eps)
    return 1.0 - per_class.mean()
