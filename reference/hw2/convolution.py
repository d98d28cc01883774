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
    # BEGIN SOLUTION
    if ph == 0 and pw == 0:
        return x  # nothing to add; callers only read from it
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h + 2 * ph, w + 2 * pw, dtype=x.dtype, device=x.device)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out
    # END SOLUTION


def _windows(x, kernel_size, stride, dilation):
    """(N, C, H, W) -> view (N, C, kH, kW, Ho, Wo) with [n, c, i, j, y, z] = x[n, c, y*sh + i*dh, z*sw + j*dw]."""
    # BEGIN SOLUTION
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    # a window spans dh*(kh-1) + 1 rows; the last one must still fit inside x
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    sn, sc, sy, sz = x.stride()
    # No copy: the windows are x's own memory read with other steps. One kernel
    # row further is dh rows of x further; one output row further is sh rows.
    return x.as_strided((n, c, kh, kw, ho, wo), (sn, sc, dh * sy, dw * sz, sh * sy, sw * sz), x.storage_offset())
    # END SOLUTION


def _col2im(cols, shape, stride, dilation):
    """(N, C, kH, kW, Ho, Wo) -> shape (N, C, H, W); adds every window entry back onto the pixel it came from."""
    # BEGIN SOLUTION
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
    # END SOLUTION


def _im2col(x, kernel_size, stride, padding, dilation):
    """(N, Cin, H, W) -> (cols (N, Cin*kH*kW, Ho*Wo), (Ho, Wo)); column l holds output pixel l's window."""
    # BEGIN SOLUTION
    win = _windows(_pad(x, *padding), kernel_size, stride, dilation)  # (N, Cin, kH, kW, Ho, Wo)
    n, cin, kh, kw, ho, wo = win.shape
    # the reshape copies the overlapping windows into one matrix: the only real cost of im2col
    return win.reshape(n, cin * kh * kw, ho * wo), (ho, wo)
    # END SOLUTION


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """(N, Cin, H, W), (Cout, Cin, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv2d (groups 1)."""
    # BEGIN SOLUTION
    cols, (ho, wo) = _im2col(x, weight.shape[2:], _pair(stride), _pair(padding), _pair(dilation))
    # a cross-correlation (the kernel is not flipped): out[n, o, l] = sum_k weight[o, k] * cols[n, k, l],
    # every filter against every window in one (batched) matmul
    out = (weight.reshape(len(weight), -1) @ cols).view(len(x), -1, ho, wo)
    if bias is not None:
        out = out + bias.view(-1, 1, 1)  # one bias per output channel, at every pixel
    return out
    # END SOLUTION


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
        # BEGIN SOLUTION
        self.x_shape = x.shape
        # the same im2col as conv2d; the columns are kept, backward needs them for dweight
        self.cols, (ho, wo) = _im2col(x, self.weight.shape[2:], self.stride, self.padding, self.dilation)
        out = (self.weight.reshape(len(self.weight), -1) @ self.cols).view(len(x), -1, ho, wo)
        return out + self.bias.view(-1, 1, 1)
        # END SOLUTION

    def backward(self, grad_out):
        """(N, Cout, Ho, Wo) -> (N, Cin, H, W); sets dweight (Cout, Cin, kH, kW) and dbias (Cout,)."""
        # BEGIN SOLUTION
        n, cout, ho, wo = grad_out.shape
        g = grad_out.reshape(n, cout, ho * wo)
        w = self.weight.reshape(cout, -1)  # (Cout, Cin*kH*kW)
        # the bias is added at every pixel of every image: all those gradients add up
        self.dbias = grad_out.sum(dim=(0, 2, 3))
        # forward was out = w @ cols per image, so dw = g @ cols^T, summed over the images
        self.dweight = (g @ self.cols.transpose(1, 2)).sum(dim=0).view(self.weight.shape)
        # and d cols = w^T @ g: the gradient of every window entry ...
        dcols = (w.T @ g).view(n, -1, *self.weight.shape[2:], ho, wo)  # (N, Cin, kH, kW, Ho, Wo)
        # ... which col2im adds back onto the pixels of the padded input it was read from
        _, cin, h, wd = self.x_shape
        ph, pw = self.padding
        dx = _col2im(dcols, (n, cin, h + 2 * ph, wd + 2 * pw), self.stride, self.dilation)
        return dx[:, :, ph : ph + h, pw : pw + wd]  # the zero frame was not part of x: drop its gradient
        # END SOLUTION

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
        # BEGIN SOLUTION
        self.x_shape = x.shape
        kh, kw = self.kernel_size
        win = _windows(x, self.kernel_size, self.stride, (1, 1))  # (N, C, kH, kW, Ho, Wo)
        n, c, _, _, ho, wo = win.shape
        out, self.argmax = win.reshape(n, c, kh * kw, ho, wo).max(dim=2)
        return out
        # END SOLUTION

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each gradient goes to its window's maximum, the rest get 0."""
        # BEGIN SOLUTION
        n, c, ho, wo = grad_out.shape
        kh, kw = self.kernel_size
        # the max only depends on the entry that won it: put the gradient there, 0 elsewhere
        dwin = torch.zeros(n, c, kh * kw, ho, wo, dtype=grad_out.dtype, device=grad_out.device)
        dwin.scatter_(2, self.argmax.unsqueeze(2), grad_out.unsqueeze(2))
        # overlapping windows (stride < kernel) may share a maximum: _col2im adds their gradients
        return _col2im(dwin.view(n, c, kh, kw, ho, wo), self.x_shape, self.stride, (1, 1))
        # END SOLUTION


class AvgPool2d:
    def __init__(self, kernel_size, stride=None):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x):
        """(N, C, H, W) -> (N, C, Ho, Wo); the mean of each window."""
        # BEGIN SOLUTION
        self.x_shape = x.shape
        return _windows(x, self.kernel_size, self.stride, (1, 1)).mean(dim=(2, 3))
        # END SOLUTION

    def backward(self, grad_out):
        """(N, C, Ho, Wo) -> (N, C, H, W); each window entry gets 1/(kH*kW) of its window's gradient."""
        # BEGIN SOLUTION
        n, c, ho, wo = grad_out.shape
        kh, kw = self.kernel_size
        # every entry weighs 1/(kH*kW) in its window's mean; expand is a view, not a copy
        dwin = (grad_out / (kh * kw))[:, :, None, None].expand(n, c, kh, kw, ho, wo)
        return _col2im(dwin, self.x_shape, self.stride, (1, 1))  # overlapping windows add up
        # END SOLUTION


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
    """(N, Cin, H, W), (Cin, Cout, kH, kW), (Cout,) or None -> (N, Cout, Ho, Wo); as F.conv_transpose2d."""
    # BEGIN SOLUTION
    # conv2d maps windows to pixels; its transpose maps each input pixel to a window:
    # pixel x[n, c, y, z] adds x[n, c, y, z] * weight[c] onto the kH x kW patch at (y*sh, z*sw).
    # That is Conv2d.backward's grad wrt x, with x in the role of grad_out.
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, cin, h, w = x.shape
    _, cout, kh, kw = weight.shape
    # every pixel's patch at once: (Cout*kH*kW, Cin) @ (Cin, H*W) per image
    cols = (weight.reshape(cin, -1).T @ x.reshape(n, cin, h * w)).view(n, cout, kh, kw, h, w)
    full = _col2im(cols, (n, cout, (h - 1) * sh + kh, (w - 1) * sw + kw), (sh, sw), (1, 1))
    # padding p of the conv it transposes: that conv's input had p extra rows on each side,
    # which are no part of the output here; crop them
    hf, wf = full.shape[2:]
    out = full[:, :, ph : hf - ph, pw : wf - pw]
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    return out
    # END SOLUTION


def iou_per_class(pred, target, num_classes):
    """(N, H, W) int64, (N, H, W) int64, int -> (num_classes,) float64; NaN for a class in neither."""
    # BEGIN SOLUTION
    classes = torch.arange(num_classes, device=pred.device)
    # one column per class: is each pixel predicted / labelled as that class?
    p = pred.reshape(-1, 1) == classes  # (N*H*W, num_classes) bool
    t = target.reshape(-1, 1) == classes
    intersection = (p & t).sum(dim=0).to(torch.float64)
    union = (p | t).sum(dim=0).to(torch.float64)
    # a class in neither pred nor target has no IoU at all (0/0): NaN, so that a mean
    # over classes can skip it (nanmean) instead of counting it as a perfect 1 or a failed 0
    return torch.where(union > 0, intersection / union, torch.nan)
    # END SOLUTION


def dice_loss(probs, target, eps=1.0):
    """(N, C, H, W) probabilities, (N, H, W) int64 -> 0-dim; 1 - mean over classes of the soft Dice."""
    # BEGIN SOLUTION
    classes = torch.arange(probs.shape[1], device=target.device).view(1, -1, 1, 1)
    t = (target.unsqueeze(1) == classes).to(probs.dtype)  # one-hot, (N, C, H, W)
    # the sums run over N, H and W: one Dice score per class, for the whole batch
    intersection = (probs * t).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))
    # eps keeps 0/0 away for a class absent from the target and barely predicted (it then scores ~1)
    dice = (2 * intersection + eps) / (total + eps)
    return 1 - dice.mean()
    # END SOLUTION
