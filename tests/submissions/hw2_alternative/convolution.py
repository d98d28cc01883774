"""hw2: convolution, pooling and segmentation metrics.

Convolution gathers every receptive field with precomputed index tensors and
contracts it with the kernel through einsum; the backward pass scatters the
window gradients back through the same indices.
"""

import math

import torch


def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _zero_pad(x, ph, pw):
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _window_index(size, k, stride, dilation, device):
    """(out, k) positions read by each output along one axis, and out."""
    out = (size - dilation * (k - 1) - 1) // stride + 1
    start = torch.arange(out, device=device) * stride
    offset = torch.arange(k, device=device) * dilation
    return start[:, None] + offset[None, :], out


def _field_index(hp, wp, kh, kw, stride, dilation, device):
    """Flat position in an (Hp, Wp) image of every (oh, ow, i, j): (OH*OW*kH*kW,)."""
    rows, oh = _window_index(hp, kh, stride[0], dilation[0], device)
    cols, ow = _window_index(wp, kw, stride[1], dilation[1], device)
    flat = rows[:, None, :, None] * wp + cols[None, :, None, :]
    return flat.reshape(-1), oh, ow


def _gather(xp, kh, kw, stride, dilation):
    """Receptive fields of a padded input, channels last: (N, OH, OW, kH, kW, C)."""
    n, c, hp, wp = xp.shape
    idx, oh, ow = _field_index(hp, wp, kh, kw, stride, dilation, xp.device)
    pixels = xp.permute(0, 2, 3, 1).reshape(n, hp * wp, c)
    return pixels[:, idx].view(n, oh, ow, kh, kw, c), idx


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D cross-correlation, NCHW, groups=1."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = weight.shape[-2:]
    fields, _ = _gather(_zero_pad(x, *padding), kh, kw, stride, dilation)
    out = torch.einsum("npqijc,oijc->nopq", fields, weight.permute(0, 2, 3, 1))
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1):
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(in_channels * kh * kw)
        self.weight = torch.empty(out_channels, in_channels, kh, kw).uniform_(-bound, bound)
        self.bias = torch.empty(out_channels).uniform_(-bound, bound)
        self.dweight = None
        self.dbias = None

    def forward(self, x):
        kh, kw = self.weight.shape[-2:]
        xp = _zero_pad(x, *self.padding)
        fields, idx = _gather(xp, kh, kw, self.stride, self.dilation)
        kernel = self.weight.permute(0, 2, 3, 1)  # (Cout, kH, kW, Cin)
        self.cache = (x.shape, xp.shape, fields, idx, kernel)
        out = torch.einsum("npqijc,oijc->nopq", fields, kernel)
        return out + self.bias[None, :, None, None]

    def backward(self, grad_out):
        x_shape, xp_shape, fields, idx, kernel = self.cache
        n, c, h, w = x_shape
        hp, wp = xp_shape[-2:]
        self.dweight = torch.einsum("nopq,npqijc->ocij", grad_out, fields).contiguous()
        self.dbias = grad_out.sum(dim=(0, 2, 3))
        # col2im: every window gradient goes back to the pixels it was read from
        dfields = torch.einsum("nopq,oijc->npqijc", grad_out, kernel)
        dpixels = grad_out.new_zeros(n, hp * wp, c)
        dpixels.index_add_(1, idx, dfields.reshape(n, -1, c))
        ph, pw = self.padding
        dxp = dpixels.view(n, hp, wp, c).permute(0, 3, 1, 2)
        return dxp[:, :, ph:ph + h, pw:pw + w].contiguous()

    def parameters(self):
        return [self.weight, self.bias]

    def gradients(self):
        return [self.dweight, self.dbias]


class _Pool:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def _windows(self, x):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, OH, OW, kH, kW)

    def _flat_index(self, oh, ow, device):
        """Flat input position of every (output pixel, window offset) pair."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        w = self.x_shape[-1]
        rows = (torch.arange(oh, device=device) * sh)[:, None] + torch.arange(kh, device=device)
        cols = (torch.arange(ow, device=device) * sw)[:, None] + torch.arange(kw, device=device)
        return rows[:, None, :, None] * w + cols[None, :, None, :]  # (OH, OW, kH, kW)


class MaxPool2d(_Pool):
    def forward(self, x):
        self.x_shape = x.shape
        win = self._windows(x)
        n, c, oh, ow = win.shape[:4]
        out, self.arg = win.reshape(n, c, oh, ow, -1).max(dim=-1)
        return out

    def backward(self, grad_out):
        n, c, h, w = self.x_shape
        oh, ow = grad_out.shape[-2:]
        flat = self._flat_index(oh, ow, grad_out.device).reshape(oh, ow, -1)
        # input position of each window's maximum
        src = flat.expand(n, c, oh, ow, flat.shape[-1]).gather(-1, self.arg[..., None])
        dx = grad_out.new_zeros(n, c, h * w)
        dx.scatter_add_(2, src.reshape(n, c, -1), grad_out.reshape(n, c, -1))
        return dx.view(n, c, h, w)


class AvgPool2d(_Pool):
    def forward(self, x):
        self.x_shape = x.shape
        return self._windows(x).mean(dim=(-2, -1))

    def backward(self, grad_out):
        n, c, h, w = self.x_shape
        oh, ow = grad_out.shape[-2:]
        kh, kw = self.kernel_size
        flat = self._flat_index(oh, ow, grad_out.device)
        share = (grad_out / (kh * kw))[..., None, None].expand(n, c, oh, ow, kh, kw)
        dx = grad_out.new_zeros(n, c, h * w)
        dx.index_add_(2, flat.reshape(-1), share.reshape(n, c, -1))
        return dx.view(n, c, h, w)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """Transposed convolution: spread the input out with zeros, then correlate
    with the flipped kernel whose in/out channels are swapped."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, cin, h, w = x.shape
    kh, kw = weight.shape[-2:]
    # zero-stuffed input, with a frame of k - 1 - p zeros (cropped if negative)
    eh, ew = kh - 1 - ph, kw - 1 - pw
    dh, dw = (h - 1) * sh + 1, (w - 1) * sw + 1
    big = x.new_zeros(n, cin, dh + 2 * max(eh, 0), dw + 2 * max(ew, 0))
    big[:, :, max(eh, 0):max(eh, 0) + dh:sh, max(ew, 0):max(ew, 0) + dw:sw] = x
    if eh < 0:
        big = big[:, :, -eh:big.shape[2] + eh]
    if ew < 0:
        big = big[:, :, :, -ew:big.shape[3] + ew]
    kernel = weight.flip(-2, -1).transpose(0, 1)
    return conv2d(big, kernel, bias)


def iou_per_class(pred, target, num_classes):
    """Intersection over union for each class; NaN where the class is in neither."""
    p, t = pred.reshape(-1), target.reshape(-1)
    ok_p = (p >= 0) & (p < num_classes)
    ok_t = (t >= 0) & (t < num_classes)
    area_p = torch.bincount(p[ok_p], minlength=num_classes)
    area_t = torch.bincount(t[ok_t], minlength=num_classes)
    inter = torch.bincount(p[ok_p & (p == t)], minlength=num_classes)
    union = area_p + area_t - inter
    return inter.to(torch.float64) / union.to(torch.float64)


def dice_loss(probs, target, eps=1.0):
    """Soft Dice loss averaged over classes."""
    classes = torch.arange(probs.shape[1], device=probs.device)
    onehot = (target[:, None, :, :] == classes[None, :, None, None]).to(probs.dtype)
    inter = torch.einsum("nchw,nchw->c", probs, onehot)
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()
