"""Small trusted layers the grader can build inside the worker, so that a unit
that combines other units (Sequential) is graded on its own logic, not on the
student's other layers."""

import torch


class Scale:
    """y = x * factor; factor is a trainable 0-dim parameter."""

    def __init__(self, factor: float):
        self.factor = torch.tensor(float(factor), dtype=torch.float64)
        self.dfactor = torch.zeros((), dtype=torch.float64)

    def forward(self, x):
        self.x = x
        return x * self.factor

    def backward(self, grad_out):
        self.dfactor = (grad_out * self.x).sum()
        return grad_out * self.factor

    def parameters(self):
        return [self.factor]

    def gradients(self):
        return [self.dfactor]


class Square:
    """y = x ** 2, no parameters: makes the order of layers matter."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad_out):
        return 2 * self.x * grad_out

    def parameters(self):
        return []

    def gradients(self):
        return []


def ready_to_train() -> None:
    """Import what torch imports the first time a model trains (its first optimizer pulls in
    torch._dynamo, sympy and ~800 more modules: 2-7 s of CPU), before a model-quality unit's
    training starts its clock (checks/quality.py). The worker's template does not: every other
    check's process would carry them."""
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([parameter])
    parameter.sum().backward()
    optimizer.step()
