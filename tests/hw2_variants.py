"""Single-bug variants of the hw2 reference solution (data, no tests).

Each variant replaces one exact piece of text, occurring exactly once in
`reference/hw2/<file>`, by a buggy version. The result still imports. A
correct grader takes points from the units in `broken` and from no other unit;
`why` says what the grader must notice. The replaced text is never in a helper
shared by several units (`_pad`, `_windows`, `_col2im`, `_im2col`), so each bug
breaks exactly the unit it names.
"""

from variants import Variant, variant as _v

VARIANTS: list[Variant] = [
    # ---- conv2d ----
    _v(
        "conv2d_flipped_kernel",
        "convolution.py",
        "out = (weight.reshape(len(weight), -1) @ cols)",
        "out = (weight.flip(2, 3).reshape(len(weight), -1) @ cols)",
        "convolution.conv2d",
        "a true convolution (kernel flipped) instead of torch's cross-correlation: right only for symmetric kernels",
        loses={"convolution.conv2d.shapes", "convolution.conv2d.float32"},
    ),
    _v(
        "conv2d_ignores_bias",
        "convolution.py",
        "out = out + bias.view(-1, 1, 1)  # one bias per output channel, at every pixel",
        "out = out  # the bias is forgotten",
        "convolution.conv2d",
        "the bias is never added: right only when bias is None or zero",
    ),
    _v(
        "conv2d_pads_height_only",
        "convolution.py",
        "_pair(padding), _pair(dilation))",
        "(_pair(padding)[0], 0), _pair(dilation))",
        "convolution.conv2d",
        "only the height is padded: wrong output width (and values) whenever the width padding is not 0",
        loses={"convolution.conv2d.shapes", "convolution.conv2d.float32"},
    ),
    _v(
        "conv2d_forbidden_F_conv2d",
        "convolution.py",
        "    cols, (ho, wo) = _im2col(x, weight.shape[2:], _pair(stride), _pair(padding), _pair(dilation))\n",
        "    return torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation)\n"
        "    cols, (ho, wo) = _im2col(x, weight.shape[2:], _pair(stride), _pair(padding), _pair(dilation))\n",
        "convolution.conv2d",
        "conv2d calls torch.nn.functional.conv2d, the forbidden equivalent of the unit; its values are right",
    ),
    # ---- Conv2d ----
    _v(
        "conv_layer_backward_ignores_dilation",
        "convolution.py",
        "self.stride, self.dilation)",
        "self.stride, (1, 1))",
        "convolution.Conv2d",
        "backward adds the window gradients back as if dilation were 1: grad wrt x wrong only for dilation > 1 "
        "(forward, dweight and dbias are right)",
        loses={"convolution.Conv2d.gradcheck", "convolution.Conv2d.backward_grid", "convolution.Conv2d.float32"},
    ),
    _v(
        "conv_layer_dbias_wrong_axes",
        "convolution.py",
        "self.dbias = grad_out.sum(dim=(0, 2, 3))",
        "self.dbias = grad_out.sum(dim=(0, 1, 2))",
        "convolution.Conv2d",
        "dbias summed as if the layout were NHWC (over N, C, H, leaving W): wrong values, and shape (Wo,) not (Cout,)",
    ),
    # ---- MaxPool2d / AvgPool2d ----
    _v(
        "maxpool_backward_spread_evenly",
        "convolution.py",
        "dwin.scatter_(2, self.argmax.unsqueeze(2), grad_out.unsqueeze(2))",
        "dwin += (grad_out / (kh * kw)).unsqueeze(2)",
        "convolution.MaxPool2d",
        "backward spreads each gradient evenly over its window (avg-pool's gradient) instead of routing it to the max",
        loses={"convolution.MaxPool2d.shapes"},
    ),
    _v(
        "avgpool_backward_not_divided",
        "convolution.py",
        "dwin = (grad_out / (kh * kw))[:, :, None, None]",
        "dwin = grad_out[:, :, None, None]",
        "convolution.AvgPool2d",
        "backward gives every window entry the whole gradient, not 1/(kH*kW) of it (forward is right)",
        loses={"convolution.AvgPool2d.shapes"},
    ),
    # ---- conv_transpose2d ----
    _v(
        "conv_transpose_crop_one_side",
        "convolution.py",
        "out = full[:, :, ph : hf - ph, pw : wf - pw]",
        "out = full[:, :, 2 * ph :, 2 * pw :]",
        "convolution.conv_transpose2d",
        "the padding is cropped twice from the top and left, none from the bottom and right: "
        "right shape, shifted values whenever padding > 0",
        loses={"convolution.conv_transpose2d.shapes"},
    ),
    # ---- iou_per_class ----
    _v(
        "iou_absent_class_zero",
        "convolution.py",
        "torch.where(union > 0, intersection / union, torch.nan)",
        "torch.where(union > 0, intersection / union, 0.0)",
        "convolution.iou_per_class",
        "a class in neither pred nor target gets IoU 0 instead of NaN",
    ),
    _v(
        "iou_returns_float32",
        "convolution.py",
        "intersection = (p & t).sum(dim=0).to(torch.float64)\n    union = (p | t).sum(dim=0).to(torch.float64)",
        "intersection = (p & t).sum(dim=0).float()\n    union = (p | t).sum(dim=0).float()",
        "convolution.iou_per_class",
        "returns float32 instead of the float64 the contract fixes (values right to float32 precision)",
    ),
    # ---- dice_loss ----
    _v(
        "dice_ignores_eps",
        "convolution.py",
        "dice = (2 * intersection + eps) / (total + eps)",
        "dice = 2 * intersection / total",
        "convolution.dice_loss",
        "eps is left out of numerator and denominator: off by O(eps / total) per class, large for an absent class",
    ),
    _v(
        "dice_per_image_then_mean",
        "convolution.py",
        "intersection = (probs * t).sum(dim=(0, 2, 3))\n    total = probs.sum(dim=(0, 2, 3)) + t.sum(dim=(0, 2, 3))",
        "intersection = (probs * t).sum(dim=(2, 3))\n    total = probs.sum(dim=(2, 3)) + t.sum(dim=(2, 3))",
        "convolution.dice_loss",
        "one Dice per image and class, averaged over both, instead of sums over the whole batch: right only for N = 1",
        loses={"convolution.dice_loss.empty_classes"},
    ),
]
