"""What the tests of reference solutions share: loading a file by path, comparing with torch, and
checking that the solution regions release into clean stubs."""

import ast
import contextlib
import importlib.util

import torch

from autograder.release.release import BEGIN, END


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def assert_matches(actual, expected):
    """Same type, dtype and shape as `expected`, and close to it for that dtype."""
    assert isinstance(actual, torch.Tensor), f"expected a tensor, got {type(actual).__name__}"
    expected = expected.detach()
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    if expected.dtype == torch.float64:
        rtol, atol = 1e-9, 1e-11 * scale
    else:
        rtol, atol = 1e-5, 1e-5 * scale
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


@contextlib.contextmanager
def untouched(*tensors):
    """Fails if the block modifies any of `tensors` in place."""
    before = [t.clone() for t in tensors]
    yield
    for i, (t, b) in enumerate(zip(tensors, before)):
        assert torch.equal(t, b), f"input {i} was modified in place"


def functions_of(tree):
    """{qualified name: def node} of the module-level functions and the methods."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{f.name}": f for f in node.body if isinstance(f, ast.FunctionDef)})
    return found


def assert_regions_well_placed(source) -> int:
    """Each solution region sits in one function body, at its indentation, after its docstring; returns how many."""
    lines = source.splitlines()
    assert all(line.strip() in (BEGIN, END) for line in lines if "SOLUTION" in line)
    functions = functions_of(ast.parse(source))
    regions = 0
    for number, line in enumerate(lines, start=1):
        if line.strip() != BEGIN:
            continue
        regions += 1
        owner = [f for f in functions.values() if f.lineno < number <= f.end_lineno]
        assert len(owner) == 1, f"line {number}: a region must sit inside one function"
        func = owner[0]
        assert len(line) - len(line.lstrip()) == func.body[0].col_offset, f"line {number}: wrong indentation"
        assert ast.get_docstring(func), f"{func.name}: a region's function needs a docstring"
        assert func.body[0].end_lineno < number, f"{func.name}: the docstring must stay outside the region"
        # A region may define things inside its function (a model class in a training function), never
        # reach past it: its END comes before the function's end.
        end = number + [l.strip() for l in lines[number:]].index(END)
        assert end < func.end_lineno + 1, f"line {number}: the region runs past the end of {func.name}"
    return regions


def tiny_assignment(folder, files: dict[str, str], checks: dict[str, str]):
    """A reference assignment "tiny" in folder/reference/tiny: its solution files and its check
    files (indented source, dedented here); the loaded assignment."""
    import textwrap

    from autograder.engine.assignment import load_reference

    reference = folder / "reference" / "tiny"
    reference.mkdir(parents=True)
    for name, text in {**files, **{name: textwrap.dedent(text) for name, text in checks.items()}}.items():
        (reference / name).write_text(text)
    return load_reference("tiny", reference)
