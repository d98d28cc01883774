"""hw2: convolution, pooling and segmentation metrics.

The convolution loops over the kH*kW kernel offsets; for each offset the whole
image is handled at once as one strided slice of the padded input.
"""

import math

import torch


def _pair(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _pad(x, ph, pw):
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h + 2 * ph, w + 2 * pw)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def _offset_slices(i, j, oh, ow, stride, dilation):
    """Slices of the padded input seen by kernel offset (i, j)."""
    (sh, sw), (dh, dw) = stride, dilation
    r0, c0 = i * dh, j * dw
    return (slice(None), slice(None),
            slice(r0, r0 + (oh - 1) * sh + 1, sh),
            slice(c0, c0 + (ow - 1) * sw + 1, sw))


def _correlate(xp, weight, stride, dilation):
    n = xp.shape[0]
    cout, _, kh, kw = weight.shape
    oh = _out_size(xp.shape[2], kh, stride[0], dilation[0])
    ow = _out_size(xp.shape[3], kw, stride[1], dilation[1])
    out = xp.new_zeros(n, cout, oh, ow)
    for i in range(kh):
        for j in range(kw):
            patch = xp[_offset_slices(i, j, oh, ow, stride, dilation)]
            out += torch.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Cross-correlation of x (N,Cin,H,W) with weight (Cout,Cin,kH,kW)."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out = _correlate(_pad(x, *padding), weight, stride, dilation)
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


class Conv2d:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1):
        kh, kw = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        k = 1.0 / math.sqrt(in_channels * kh * kw)
        self.weight = (torch.rand(out_channels, in_channels, kh, kw) * 2 - 1) * k
        self.bias = (torch.rand(out_channels) * 2 - 1) * k
        self.dweight = self.dbias = None

    def forward(self, x):
        self.x_shape = x.shape
        self.xp = _pad(x, *self.padding)
        self.w = self.weight
        out = _correlate(self.xp, self.w, self.stride, self.dilation)
        out += self.bias.view(1, -1, 1, 1)
        return out

    def backward(self, grad_out):
        xp, w = self.xp, self.w
        _, _, kh, kw = w.shape
        oh, ow = grad_out.shape[-2:]
        dxp = torch.zeros_like(xp)
        dweight = torch.zeros_like(w)
        for i in range(kh):
            for j in range(kw):
                sl = _offset_slices(i, j, oh, ow, self.stride, self.dilation)
                dxp[sl] += torch.einsum("nohw,oc->nchw", grad_out, w[:, :, i, j])
                dweight[:, :, i, j] = torch.einsum("nohw,nchw->oc", grad_out, xp[sl])
        self.dweight = dweight
        self.dbias = grad_out.sum(dim=(0, 2, 3))
        h, w_ = self.x_shape[-2:]
        ph, pw = self.padding
        return dxp[:, :, ph:ph + h, pw:pw + w_]

    def parameters(self):
        return [self.weight, self.bias]

    def gradients(self):
        return [self.dweight, self.dbias]


class MaxPool2d:
    def __init__(self, kernel_size, stride=None):
        self.k = _pair(kernel_size)
        self.s = self.k if stride is None else _pair(stride)

    def forward(self, x):
        (kh, kw), s = self.k, self.s
        self.x_shape = x.shape
        oh, ow = _out_size(x.shape[2], kh, s[0], 1), _out_size(x.shape[3], kw, s[1], 1)
        self.oh, self.ow = oh, ow
        cand = torch.stack(
            [x[_offset_slices(i, j, oh, ow, s, (1, 1))] for i in range(kh) for j in range(kw)],
            dim=-1,
        )
        out, self.arg = cand.max(dim=-1)
        return out

    def backward(self, grad_out):
        (kh, kw), s = self.k, self.s
        dx = grad_out.new_zeros(self.x_shape)
        for i in range(kh):
            for j in range(kw):
                hit = self.arg == i * kw + j
                dx[_offset_slices(i, j, self.oh, self.ow, s, (1, 1))] += torch.where(
                    hit, grad_out, torch.zeros_like(grad_out)
                )
        return dx


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.k = _pair(kernel_size)
        self.s = self.k if stride is None else _pair(stride)

    def forward(self, x):
        (kh, kw), s = self.k, self.s
        self.x_shape = x.shape
        oh, ow = _out_size(x.shape[2], kh, s[0], 1), _out_size(x.shape[3], kw, s[1], 1)
        out = x.new_zeros(x.shape[0], x.shape[1], oh, ow)
        for i in range(kh):
            for j in range(kw):
                out += x[_offset_slices(i, j, oh, ow, s, (1, 1))]
        return out / (kh * kw)

    def backward(self, grad_out):
        (kh, kw), s = self.k, self.s
        oh, ow = grad_out.shape[-2:]
        dx = grad_out.new_zeros(self.x_shape)
        g = grad_out / (kh * kw)
        for i in range(kh):
            for j in range(kw):
                dx[_offset_slices(i, j, oh, ow, s, (1, 1))] += g
        return dx


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """Each input pixel stamps weight[c] scaled by its value onto the output."""
    stride, (ph, pw) = _pair(stride), _pair(padding)
    n, _, h, w = x.shape
    _, cout, kh, kw = weight.shape
    full_h, full_w = (h - 1) * stride[0] + kh, (w - 1) * stride[1] + kw
    out = x.new_zeros(n, cout, full_h, full_w)
    for i in range(kh):
        for j in range(kw):
            out[_offset_slices(i, j, h, w, stride, (1, 1))] += torch.einsum(
                "nchw,co->nohw", x, weight[:, :, i, j]
            )
    out = out[:, :, ph:full_h - ph, pw:full_w - pw]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def iou_per_class(pred, target, num_classes):
    """IoU of every class; NaN for a class found in neither pred nor target."""
    iou = torch.empty(num_classes, dtype=torch.float64, device=pred.device)
    for c in range(num_classes):
        p, t = pred == c, target == c
        inter = (p & t).sum().to(torch.float64)
        union = (p | t).sum().to(torch.float64)
        iou[c] = inter / union if union > 0 else float("nan")
    return iou


def dice_loss(probs, target, eps=1.0):
    """1 - mean over classes of the soft Dice coefficient."""
    num_classes = probs.shape[1]
    scores = []
    for c in range(num_classes):
        p = probs[:, c]
        t = (target == c).to(probs.dtype)
        scores.append((2 * (p * t).sum() + eps) / (p.sum() + t.sum() + eps))
    return 1 - torch.stack(scores).mean()
