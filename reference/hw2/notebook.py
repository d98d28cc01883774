# %% [markdown]
# # hw2: convolution, pooling, segmentation metrics, model acceleration
#
# Write your solutions in `convolution.py` (the task is in `README.md`). This notebook
# imports it, shows what your filters and pools do to an image, times your `conv2d`
# against a loop, and runs the public checks. Cells that use a unit you have not written
# yet say so and go on.
#
# Rather write your code in a notebook? See the last section: a notebook can be handed in too.

# %%
# autoreload: an edit to convolution.py takes effect when you rerun a cell, no kernel restart needed.
%load_ext autoreload
%autoreload 2
import time

import matplotlib.pyplot as plt
import torch

import convolution
from autograder.jupyter import attempt, check  # attempt(): a unit not written yet is said, not raised

# %% [markdown]
# ## Edge filters
#
# A picture made of a disc and a square, filtered with the two Sobel kernels: one
# responds to vertical edges, the other to horizontal ones. With `padding=1` the output
# keeps the input's size.

# %%
rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
image = (((rows - 22) ** 2 + (cols - 22) ** 2) < 12**2).float()
image[36:56, 34:58] = 0.6
sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)  # (Cout=2, Cin=1, 3, 3)
edges = attempt("conv2d", lambda: convolution.conv2d(image[None, None], kernels, padding=1))
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, picture, title in zip(axes, [image] + ([] if edges is None else [edges[0, 0], edges[0, 1]]),
                              ["input", "Sobel x: vertical edges", "Sobel y: horizontal edges"]):
    ax.imshow(picture, cmap="gray")
    ax.set_title(title)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## Pooling
#
# Max pooling keeps each window's largest value, average pooling its mean: both shrink
# the image by the window size (stride defaults to the kernel size).

# %%
pools = {"MaxPool2d(4)": lambda: convolution.MaxPool2d(4).forward(image[None, None]),
         "AvgPool2d(4)": lambda: convolution.AvgPool2d(4).forward(image[None, None])}
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (title, pool) in zip(axes, pools.items()):
    pooled = attempt(title, pool)
    ax.set_title(title)
    ax.axis("off")
    if pooled is not None:
        ax.imshow(pooled[0, 0], cmap="gray")

# %% [markdown]
# ## Segmentation metrics
#
# A "prediction" that is the true mask shifted by a few pixels: IoU per class and the
# Dice loss of a soft version of it. Shift more and watch IoU fall and the loss rise.

# %%
target = (image > 0).long()[None]  # (1, 64, 64): class 1 where something is drawn
for shift in (0, 2, 6):
    pred = torch.roll(target, shifts=shift, dims=2)
    probs = torch.stack([1.0 - pred.double(), pred.double()], dim=1)  # (1, 2, 64, 64)
    iou = attempt("iou_per_class", lambda: convolution.iou_per_class(pred, target, 2))
    dice = attempt("dice_loss", lambda: convolution.dice_loss(probs, target))
    if iou is not None and dice is not None:
        print(f"shift {shift}: IoU per class {iou.tolist()}, Dice loss {float(dice):.4f}")

# %% [markdown]
# ## Is your conv2d vectorized?
#
# The timed checks compare your `conv2d` with the reference's, side by side; a solution
# with Python loops over output pixels is 10x slower or worse and fails them. Here it is
# against a loop over output pixels on the timed checks' size.

# %%
def loop_conv2d(x, weight):
    n, _, h, w = x.shape
    k = weight.shape[-1]
    out = torch.zeros(n, weight.shape[0], h - k + 1, w - k + 1)
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            out[:, :, i, j] = torch.einsum("ncij,ocij->no", x[:, :, i:i + k, j:j + k], weight)
    return out


def best_time(function, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


torch.set_num_threads(1)  # as in the timed checks
x, weight = torch.randn(2, 4, 64, 64), torch.randn(8, 4, 3, 3)
yours = attempt("conv2d", lambda: best_time(lambda: convolution.conv2d(x, weight)))
loops = best_time(lambda: loop_conv2d(x, weight), repeats=1)
if yours is not None:
    print(f"your conv2d: {yours * 1e3:.2f} ms; the pixel loop: {loops * 1e3:.1f} ms ({loops / yours:.0f}x slower)")

# %% [markdown]
# ## The public checks
#
# The same checks as `autograder check hw2` in a terminal. Save `convolution.py` first.
# The hidden checks, graded after the deadline, test the same units on other inputs and
# include the timed checks.

# %%
check("hw2")

# %% [markdown]
# ## Handing in a notebook instead of files
#
# You may write your code in a notebook and hand in the notebook. The rule: the first line
# of each cell that holds code of a file names that file, as in
#
# ```python
# # file: convolution.py
# import torch
#
# def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
#     ...
# ```
#
# A file may span several cells (each with the same first line); they are joined in
# notebook order. Cells without such a line (plots, experiments, `!pip install`) are not
# graded. `autograder check hw2 .` in a folder holding only the notebook checks it the
# same way, and says what to change if a cell does not follow the rule.
