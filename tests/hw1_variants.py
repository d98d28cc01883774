"""Single-bug variants of the hw1 reference solution (data, no tests).

Each variant replaces one exact piece of text, occurring exactly once in
`reference/hw1/<file>`, by a buggy version. The result still imports. A
correct grader takes points from the units in `broken` and from no other unit;
`why` says what the grader must notice.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str  # short id, e.g. "sigmoid_wrong_derivative"
    file: str  # e.g. "activations.py"
    old: str  # exact text occurring exactly once in reference/hw1/<file>
    new: str  # replacement text (the bug)
    broken: frozenset[str]  # the units that may lose points, e.g. frozenset({"activations.Sigmoid"})
    why: str  # one line: what a correct grader must notice


def _v(name, file, old, new, unit, why):
    return Variant(name, file, old, new, frozenset({unit}), why)


VARIANTS: list[Variant] = [
    # ---- activations.py ----
    _v(
        "sigmoid_wrong_derivative",
        "activations.py",
        "return grad_out * self.y * (1 - self.y)",
        "return grad_out * (1 - self.y)",
        "activations.Sigmoid",
        "backward returns grad_out * (1 - y) instead of grad_out * y * (1 - y)",
    ),
    _v(
        "sigmoid_forbidden_torch_sigmoid",
        "activations.py",
        "self.y = torch.where(x >= 0, 1 / (1 + e), e / (1 + e))",
        "self.y = torch.sigmoid(x)",
        "activations.Sigmoid",
        "forward calls torch.sigmoid, the forbidden torch equivalent of the unit; its values are right",
    ),
    _v(
        "tanh_forbidden_tensor_method",
        "activations.py",
        "self.y = -x.sign() * t / (2 + t)",
        "self.y = x.tanh()",
        "activations.Tanh",
        "forward calls the Tensor method x.tanh(), the forbidden equivalent reached without naming torch.tanh",
    ),
    _v(
        "relu_derivative_at_zero_is_one",
        "activations.py",
        "self.mask = x > 0",
        "self.mask = x >= 0",
        "activations.ReLU",
        "backward passes the gradient at x == 0 exactly; the contract fixes ReLU'(0) = 0 (forward is unchanged)",
    ),
    _v(
        "relu_modifies_input_in_place",
        "activations.py",
        "return torch.where(self.mask, x, 0.0)",
        "x[~self.mask] = 0\n        return x",
        "activations.ReLU",
        "forward zeroes the negative entries of its input tensor in place; its values and gradients are right",
    ),
    _v(
        "leaky_relu_ignores_slope",
        "activations.py",
        "self.slope = slope",
        "self.slope = 0.1",
        "activations.LeakyReLU",
        "the slope argument is ignored (always 0.1): only a check with a non-default slope sees it",
    ),
    _v(
        "elu_backward_positive_branch_ignores_grad_out",
        "activations.py",
        "return torch.where(self.x > 0, grad_out, negative)",
        "return torch.where(self.x > 0, 1.0, negative)",
        "activations.ELU",
        "backward returns 1 instead of grad_out where x > 0: a check with grad_out = ones misses it",
    ),
    _v(
        "softplus_returns_float64",
        "activations.py",
        "torch.log1p(torch.exp(-x.abs()))",
        "torch.log1p(torch.exp(-x.abs().double()))",
        "activations.Softplus",
        "forward returns float64 for float32 input (values right): outputs must keep the input dtype",
    ),
    _v(
        "gelu_tanh_approximation",
        "activations.py",
        "self.cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))",
        "self.cdf = 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))",
        "activations.GELU",
        "forward uses the tanh approximation of Phi (max error about 2e-4, not the exact erf form)",
    ),
    _v(
        "softmax_no_max_shift",
        "activations.py",
        "e = torch.exp(x - x.amax(dim=-1, keepdim=True))",
        "e = torch.exp(x)",
        "activations.Softmax",
        "no max-shift: exp overflows to inf and the output is NaN for entries near 1e3 (fine for small x)",
    ),
    _v(
        "softmax_backward_diagonal_only",
        "activations.py",
        "return y * (grad_out - (grad_out * y).sum(dim=-1, keepdim=True))",
        "return grad_out * y * (1 - y)",
        "activations.Softmax",
        "backward keeps only the diagonal of the Jacobian (treats softmax as element-wise)",
    ),
    _v(
        "logsoftmax_log_of_softmax",
        "activations.py",
        "y = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))",
        "y = torch.log(torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True))",
        "activations.LogSoftmax",
        "log(softmax) even after the shift: an underflowed probability gives log(0) = -inf for x = [1000, -1000]",
    ),
    # ---- backprop.py ----
    _v(
        "linear_db_averaged_not_summed",
        "backprop.py",
        "self.db = grad_out.sum(dim=0)",
        "self.db = grad_out.mean(dim=0)",
        "backprop.Linear",
        "db is the batch mean of grad_out instead of its sum (dW and the input gradient are right)",
    ),
    _v(
        "mse_backward_missing_factor_2",
        "backprop.py",
        "return 2 * self.diff / self.diff.numel()",
        "return self.diff / self.diff.numel()",
        "backprop.MSELoss",
        "backward drops the factor 2 of d(pred - target)^2: half the true gradient",
    ),
    _v(
        "cross_entropy_no_shift",
        "backprop.py",
        "z = logits - logits.amax(dim=1, keepdim=True)",
        "z = logits",
        "backprop.CrossEntropyLoss",
        "no max-shift: exp(logits) overflows and the loss is inf/NaN for logits near 1e3",
    ),
    _v(
        "cross_entropy_backward_not_averaged",
        "backprop.py",
        "return grad / len(self.target)",
        "return grad",
        "backprop.CrossEntropyLoss",
        "backward forgets the 1/N of the mean: N times the true gradient (N = 1 hides it)",
    ),
    _v(
        "sequential_backward_not_reversed",
        "backprop.py",
        "for layer in reversed(self.layers):",
        "for layer in self.layers:",
        "backprop.Sequential",
        "backward visits the layers first to last: wrong gradients, or a shape error",
    ),
    _v(
        "dropout_no_rescale",
        "backprop.py",
        "keep.to(x.dtype) / (1 - self.p)",
        "keep.to(x.dtype)",
        "backprop.Dropout",
        "kept entries are not scaled by 1/(1-p): E[output] = (1-p) x instead of x",
    ),
    _v(
        "dropout_eval_not_identity",
        "backprop.py",
        "            self.mask = None\n            return x\n",
        "            self.mask = None\n            return x * (1 - self.p)\n",
        "backprop.Dropout",
        "eval scales by (1-p) as in non-inverted dropout; with inverted dropout eval must be the identity",
    ),
    _v(
        "dropout_backward_fresh_mask",
        "backprop.py",
        "return grad_out if self.mask is None else grad_out * self.mask",
        "return grad_out if self.mask is None else grad_out * (torch.rand_like(grad_out) >= self.p) / (1 - self.p)",
        "backprop.Dropout",
        "backward draws a new mask instead of reusing the one of the last forward",
    ),
    _v(
        "batchnorm_running_var_biased",
        "backprop.py",
        "m * var * n / (n - 1)",
        "m * var",
        "backprop.BatchNorm1d",
        "running_var is updated with the biased batch variance; torch uses the unbiased one (outputs in train mode are right)",
    ),
    _v(
        "batchnorm_eval_uses_batch_stats",
        "backprop.py",
        "        if self.training:\n            mean = x.mean(dim=0)",
        "        if True:\n            mean = x.mean(dim=0)",
        "backprop.BatchNorm1d",
        "eval mode still normalizes with the batch statistics (and keeps updating the running ones)",
    ),
    _v(
        "batchnorm_backward_ignores_batch_stats",
        "backprop.py",
        "return self.inv_std * (g - g.mean(dim=0) - self.x_hat * (g * self.x_hat).mean(dim=0))",
        "return self.inv_std * g",
        "backprop.BatchNorm1d",
        "train-mode backward treats mean and variance as constants (dgamma, dbeta and eval-mode backward are right)",
    ),
    # ---- neurons.py ----
    _v(
        "threshold_neuron_strict",
        "neurons.py",
        "return (x @ w >= theta).to(x.dtype)",
        "return (x @ w > theta).to(x.dtype)",
        "neurons.threshold_neuron",
        "fires only strictly above theta: a check needs inputs with x @ w == theta exactly",
    ),
    _v(
        "perceptron_fires_at_zero",
        "neurons.py",
        "pred = 1.0 if X[i] @ w + b > 0 else 0.0",
        "pred = 1.0 if X[i] @ w + b >= 0 else 0.0",
        "neurons.perceptron_fit",
        "predicts 1 on a zero score (>= 0); the contract's loop uses > 0, which matters from the very first sample",
    ),
    _v(
        "linear_regression_intercept_last",
        "neurons.py",
        "A = torch.cat([torch.ones_like(X[:, :1]), X], dim=1)",
        "A = torch.cat([X, torch.ones_like(X[:, :1])], dim=1)",
        "neurons.linear_regression_fit",
        "the ones column is appended last: the intercept ends up in w[-1] instead of w[0]",
    ),
    _v(
        "logistic_loss_log_of_sigmoid",
        "neurons.py",
        "loss = (z.clamp(min=0) + torch.log1p(e) - y * z).mean()",
        "s = 1 / (1 + torch.exp(-z))\n    loss = -(y * torch.log(s) + (1 - y) * torch.log(1 - s)).mean()",
        "neurons.logistic_regression_loss_grad",
        "loss as log(sigmoid): log(0) gives an inf or NaN loss for |X @ w + b| near 1e3 (gradients stay right)",
    ),
    # ---- optimizers.py ----
    _v(
        "sgd_nesterov_wrong",
        "optimizers.py",
        "g = g + self.momentum * v",
        "g = v + self.momentum * g",
        "optimizers.SGD",
        "Nesterov step uses v + momentum * g: equal to torch on step 1 (v = g), wrong from step 2",
    ),
    _v(
        "adagrad_state_not_accumulated",
        "optimizers.py",
        "s += g * g",
        "s = s + g * g",
        "optimizers.AdaGrad",
        "rebinding the loop variable leaves the stored accumulator at 0: right on step 1, wrong from step 2",
    ),
    _v(
        "rmsprop_eps_inside_sqrt",
        "optimizers.py",
        "p -= self.lr * g / (v.sqrt() + self.eps)",
        "p -= self.lr * g / (v + self.eps).sqrt()",
        "optimizers.RMSProp",
        "eps inside the square root: torch.optim.RMSprop adds it outside (visible with a large eps or small g)",
    ),
    _v(
        "adam_no_bias_correction",
        "optimizers.py",
        "        bias1 = 1 - self.beta1**self.t\n        bias2 = 1 - self.beta2**self.t\n"
        "        for p, g, m, v in zip(self.params, grads, self.m, self.v):\n"
        "            g = g + self.weight_decay * p",
        "        bias1 = bias2 = 1.0\n"
        "        for p, g, m, v in zip(self.params, grads, self.m, self.v):\n"
        "            g = g + self.weight_decay * p",
        "optimizers.Adam",
        "no bias correction of m and v: step 1 moves lr * (1-b1)/sqrt(1-b2), about 3.2 lr, instead of lr",
    ),
    _v(
        "adamw_l2_instead_of_decoupled",
        "optimizers.py",
        "p *= 1 - self.lr * self.weight_decay",
        "g = g + self.weight_decay * p",
        "optimizers.AdamW",
        "weight decay added to the gradient (Adam's L2) instead of decoupled: right only with weight_decay = 0",
    ),
]
