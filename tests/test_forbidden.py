import textwrap

import pytest

from autograder.checks.forbidden import MAX_SOURCE_BYTES, Violation, scan_source

SIGMOID_RULES = [
    "torch.sigmoid",
    "torch.special.expit",
    "torch.nn.functional.sigmoid",
    "torch.nn.Sigmoid",
    "torch.Tensor.sigmoid",
    "torch.autograd",
    "torch.Tensor.backward",
    "torch.func",
]


def scan(source: str, *units: str, forbidden=SIGMOID_RULES) -> dict[str, list[tuple[str, int]]]:
    """{unit: [(name, line), ...]} for the units given (default: Sigmoid)."""
    rules = {unit: list(forbidden) for unit in units or ("Sigmoid",)}
    found = scan_source(textwrap.dedent(source), rules)
    return {unit: [(violation.name, violation.line) for violation in violations] for unit, violations in found.items()}


def test_violation_text():
    assert str(Violation("Sigmoid", "torch.sigmoid", 12)) == "line 12: Sigmoid uses torch.sigmoid"


def test_direct_use_in_a_class():
    source = """\
        import torch

        class Sigmoid:
            def forward(self, x):
                return torch.sigmoid(x)
        """
    assert scan(source) == {"Sigmoid": [("torch.sigmoid", 5)]}


def test_import_aliases_are_resolved():
    source = """\
        import torch as T
        import torch.nn.functional as F
        from torch.nn import functional as G
        from torch import nn
        from torch import special

        def a(x):
            return T.nn.functional.sigmoid(x)

        def b(x):
            return F.sigmoid(x)

        def c(x):
            return G.sigmoid(x)

        def d(x):
            return nn.functional.sigmoid(x)

        def e(x):
            return special.expit(x)

        def f(x):
            return T.Tensor.sigmoid(x)
        """
    assert scan(source, *"abcdef") == {
        "a": [("torch.nn.functional.sigmoid", 8)],
        "b": [("torch.nn.functional.sigmoid", 11)],
        "c": [("torch.nn.functional.sigmoid", 14)],
        "d": [("torch.nn.functional.sigmoid", 17)],
        "e": [("torch.special.expit", 20)],
        "f": [("torch.Tensor.sigmoid", 23)],
    }


def test_from_imports_count_where_imported_and_where_used():
    source = """\
        from torch import sigmoid as s
        from torch.autograd import grad

        def Sigmoid(x):
            return s(x) + grad(x, x)
        """
    assert scan(source) == {
        "Sigmoid": [("torch.sigmoid", 1), ("torch.autograd.grad", 2), ("torch.autograd.grad", 5), ("torch.sigmoid", 5)]
    }


def test_a_rule_forbids_everything_under_it():
    source = """\
        import torch

        def Sigmoid(x):
            torch.autograd.functional.jacobian(torch.exp, x)
            return torch.func.vmap(torch.exp)(x)
        """
    assert scan(source) == {
        "Sigmoid": [("torch.autograd.functional.jacobian", 4), ("torch.func.vmap", 5)]
    }


def test_imports_inside_functions():
    source = """\
        def Sigmoid(x):
            import torch.autograd.functional as AF
            return AF.jacobian(f, x)
        """
    assert scan(source) == {"Sigmoid": [("torch.autograd.functional", 2), ("torch.autograd.functional.jacobian", 3)]}


def test_helpers_used_by_a_unit_count_against_it_transitively():
    source = """\
        import torch

        def _sig(x):
            return torch.sigmoid(x)

        def _helper(x):
            return _sig(x)

        class Sigmoid:
            def forward(self, x):
                return _helper(x)

        class Tanh:
            def forward(self, x):
                return 2 * torch.exp(x)
        """
    assert scan(source, "Sigmoid", "Tanh") == {"Sigmoid": [("torch.sigmoid", 4)]}


def test_module_level_aliases_used_by_a_unit():
    source = """\
        import torch
        sig = torch.sigmoid
        fn = torch.nn.functional
        unused = torch.sigmoid

        class Sigmoid:
            def forward(self, x):
                return sig(x) + fn.sigmoid(x)
        """
    assert scan(source) == {
        "Sigmoid": [("torch.sigmoid", 2), ("torch.nn.functional.sigmoid", 8), ("torch.sigmoid", 8)]
    }


def test_a_unit_defined_as_an_alias():
    source = """\
        import torch
        from torch.nn import ReLU
        Sigmoid = torch.nn.Sigmoid
        """
    assert scan(source, "Sigmoid", "ReLU", forbidden=["torch.nn.Sigmoid", "torch.nn.ReLU"]) == {
        "Sigmoid": [("torch.nn.Sigmoid", 3)],
        "ReLU": [("torch.nn.ReLU", 2)],
    }


def test_subclassing_and_class_attributes_count():
    source = """\
        import torch

        class Sigmoid(torch.nn.Sigmoid):
            activation = torch.sigmoid
        """
    assert scan(source) == {"Sigmoid": [("torch.nn.Sigmoid", 3), ("torch.sigmoid", 4)]}


def test_patching_a_unit_at_module_level_counts():
    source = """\
        import torch

        class Sigmoid:
            pass

        Sigmoid.forward = lambda self, x: torch.sigmoid(x)
        """
    assert scan(source) == {"Sigmoid": [("torch.sigmoid", 6)]}


def test_no_false_positives():
    source = """\
        import torch
        import torch.nn.functional as F

        def sigmoid(x):
            return 1 / (1 + torch.exp(-x))

        class Sigmoid:
            def forward(self, x):
                self.out = sigmoid(x)
                return self.out

            def backward(self, grad_out):
                return grad_out * self.out * (1 - self.out)

        class Sequential:
            def forward(self, x):
                for layer in self.layers:
                    x = layer.forward(x)
                return self.forward(x)

            def backward(self, g):
                for layer in reversed(self.layers):
                    g = layer.backward(g)
                return g

        def shadowing(F, torch):
            return F.sigmoid(x) + torch.sigmoid(x)

        def unused_module_level_stuff():
            return F.relu
        """
    assert scan(source, "Sigmoid", "Sequential", "shadowing", "sigmoid", "missing") == {}


def test_method_calls_on_values_are_left_to_the_runtime_guard():
    source = """\
        class Sigmoid:
            def forward(self, x):
                return x.sigmoid()

            def backward(self, g):
                self.out.backward(g)
        """
    assert scan(source) == {}


def test_class_scopes_do_not_leak_into_methods():
    source = """\
        import torch
        import mylib as F

        class Sigmoid:
            F = torch.nn.functional

            def forward(self, x):
                return F.sigmoid(x)
        """
    # Inside forward, F is the module's mylib, not the class attribute; the
    # class attribute itself references only torch.nn.functional, which is allowed.
    assert scan(source) == {}


def test_global_declarations_bind_module_names():
    source = """\
        import torch

        def setup():
            global act
            act = torch.nn.functional

        def Sigmoid(x):
            return act.sigmoid(x)
        """
    assert scan(source) == {"Sigmoid": [("torch.nn.functional.sigmoid", 8)]}


def test_star_imports():
    source = """\
        from torch.nn.functional import *
        from torch.autograd import *

        def Sigmoid(x):
            return sigmoid(x)

        def relu(x):
            return x.clamp(min=0)
        """
    assert scan(source, "Sigmoid", "relu") == {
        "Sigmoid": [("torch.autograd.*", 2), ("torch.nn.functional.sigmoid", 5)],
        "relu": [("torch.autograd.*", 2)],
    }


def test_each_violation_is_reported_once_and_sorted_by_line():
    source = """\
        import torch

        def _sig(x):
            return torch.sigmoid(x) + torch.sigmoid(x)

        def Sigmoid(x):
            y = torch.autograd.grad(x, x)
            return _sig(x) + _sig(y) + Sigmoid(x)
        """
    assert scan(source) == {"Sigmoid": [("torch.sigmoid", 4), ("torch.autograd.grad", 7)]}


def test_relative_imports_are_not_resolved():
    source = """\
        from .torch import sigmoid

        def Sigmoid(x):
            return sigmoid(x)
        """
    assert scan(source) == {}


@pytest.mark.parametrize(
    "source",
    [
        "def Sigmoid(x:\n    return torch.sigmoid(x)\n",
        "import torch\ndef Sigmoid(x): return torch.sigmoid(x)\n\0",
        "import torch\ndef Sigmoid(x): return torch.sigmoid(x)\n" + "#" * MAX_SOURCE_BYTES,
        "import torch\ndef Sigmoid(x): return " + "(" * 1000 + "torch.sigmoid(x)" + ")" * 1000,
    ],
)
def test_unscannable_source_gives_no_violations(source):
    assert scan_source(source, {"Sigmoid": SIGMOID_RULES}) == {}


def test_invalid_escape_sequences_do_not_warn(recwarn):
    source = 'import torch\ndef Sigmoid(x):\n    "\\d"\n    return torch.sigmoid(x)\n'
    assert scan(source) == {"Sigmoid": [("torch.sigmoid", 4)]}
    assert len(recwarn) == 0
