# %% [markdown]
# # hw1: neurons, activations, backprop, optimizers
#
# Write your solutions in the four files of this folder: `neurons.py`, `activations.py`,
# `backprop.py` and `optimizers.py` (the task is in `README.md`). This notebook imports
# them, draws what they compute, and runs the public checks, so you can see your
# progress as you go. Cells that use a unit you have not written yet say so and go on.
#
# Rather write your code in a notebook? See the last section: a notebook can be handed in too.

# %%
# autoreload: an edit to a .py file takes effect when you rerun a cell, no kernel restart needed.
%load_ext autoreload
%autoreload 2
import matplotlib.pyplot as plt
import torch

import activations
import backprop
import neurons
import optimizers
from autograder.jupyter import attempt, check  # attempt(): a unit not written yet is said, not raised

# %% [markdown]
# ## Activations and their derivatives
#
# `forward(x)` draws the function; `backward(ones)` returns its derivative at each `x`
# (the gradient of `sum(f(x))`), which is what backprop multiplies by. A derivative that
# does not look like the slope of its curve is a bug in `backward`.

# %%
x = torch.linspace(-4, 4, 801, dtype=torch.float64)
names = ["Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Softplus", "GELU"]
fig, axes = plt.subplots(2, 4, figsize=(14, 6), sharex=True)
for ax, name in zip(axes.flat, names):
    def curves(name=name):
        unit = getattr(activations, name)()
        return unit.forward(x), unit.backward(torch.ones_like(x))

    got = attempt(name, curves)
    ax.set_title(name)
    ax.axhline(0, color="0.8", lw=0.8)
    if got is not None:
        ax.plot(x, got[0], label="f(x)")
        ax.plot(x, got[1], "--", label="f'(x)")
        ax.legend(loc="upper left")
axes.flat[-1].axis("off")
fig.tight_layout()

# %% [markdown]
# ## A perceptron on two clouds of points
#
# `perceptron_fit` learns a line `x @ w + b = 0` that separates the classes when they can be separated.

# %%
generator = torch.Generator().manual_seed(0)
X = torch.cat([torch.randn(50, 2, generator=generator) + 2.5, torch.randn(50, 2, generator=generator) - 2.5]).double()
y = torch.cat([torch.ones(50), torch.zeros(50)]).double()
fitted = attempt("perceptron_fit", lambda: neurons.perceptron_fit(X, y, lr=1.0, epochs=10))
plt.figure(figsize=(5, 5))
plt.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=12)
if fitted is not None:
    w, b = fitted
    line = torch.linspace(-5, 5, 2, dtype=torch.float64)
    plt.plot(line, -(w[0] * line + b) / w[1], "k-", label="x @ w + b = 0")
    plt.ylim(-6, 6)
    plt.legend()

# %% [markdown]
# ## Training a small network with your layers and optimizers
#
# Two interleaved spirals are not linearly separable: a hidden layer is needed. The same
# network is trained with each optimizer from the same start; all of them should bring the loss down.

# %%
def spirals(n=200):
    t = torch.linspace(0.25, 3 * torch.pi, n, dtype=torch.float64)
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 5
    return torch.cat([arm, -arm]), torch.cat([torch.zeros(n), torch.ones(n)]).long()


def train(make_optimizer, steps=300):
    torch.manual_seed(0)
    model = backprop.Sequential(backprop.Linear(2, 64), activations.Tanh(), backprop.Linear(64, 2))
    loss_fn, optimizer, losses = backprop.CrossEntropyLoss(), make_optimizer(model.parameters()), []
    for _ in range(steps):
        losses.append(float(loss_fn.forward(model.forward(points), labels)))
        model.backward(loss_fn.backward())
        optimizer.step(model.gradients())
    return losses


points, labels = spirals()
points = points.float()  # Linear's W and b are float32, as torch.nn.Linear's
choices = {
    "SGD + momentum": lambda p: optimizers.SGD(p, lr=0.1, momentum=0.9),
    "AdaGrad": lambda p: optimizers.AdaGrad(p, lr=0.1),
    "RMSProp": lambda p: optimizers.RMSProp(p, lr=0.01),
    "Adam": lambda p: optimizers.Adam(p, lr=0.01),
    "AdamW": lambda p: optimizers.AdamW(p, lr=0.01),
}
plt.figure(figsize=(7, 4))
for label, make in choices.items():
    losses = attempt(label, lambda: train(make))
    if losses is not None:
        plt.plot(losses, label=label)
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.legend()

# %% [markdown]
# ## The public checks
#
# The same checks as `autograder check hw1` in a terminal. Save your `.py` files first.
# The hidden checks, graded after the deadline, test the same units on other inputs.

# %%
check("hw1")

# %% [markdown]
# ## Handing in a notebook instead of files
#
# You may write your code in a notebook and hand in the notebook. The rule: the first line
# of each cell that holds code of a file names that file, as in
#
# ```python
# # file: activations.py
# import torch
#
# class Sigmoid:
#     ...
# ```
#
# A file may span several cells (each with the same first line); they are joined in
# notebook order. Cells without such a line (plots, experiments, `!pip install`) are not
# graded. `autograder check hw1 .` in a folder holding only the notebook checks it the
# same way, and says what to change if a cell does not follow the rule.
