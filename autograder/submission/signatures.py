"""The signatures students must keep, read statically from source.

At release time `signatures_of` reads them from the reference solution into the
public bundle (students overwrite the stubs, so the stubs cannot be the source
of truth). Before a submission is packed, `mismatches` compares the student's
file with them: every unit (public top-level function or class, and each
class's contract methods) must exist with the same parameter names, order and
defaults. Students may add helpers, methods, and parameters that have
defaults. Nothing is executed: only `ast`.

A signature, as stored in the bundle's manifest.json:
    {"kind": "function", "parameters": [PARAMETER, ...]}
    {"kind": "class", "methods": {"__init__": [PARAMETER, ...], "forward": [...]}}
    PARAMETER = {"name": "lr", "kind": "positional", "default": "1.0"}  (no "default" when it has none)
"""

from __future__ import annotations

import ast
from pathlib import Path

from autograder.checks.parsing import parse

# The methods the grader calls (ASSIGNMENTS.md); other methods are the student's own business.
CONTRACT_METHODS = ("__init__", "forward", "backward", "step", "parameters", "gradients", "train", "eval")
POSITIONAL = ("positional_only", "positional")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# A class without __init__ is built with no arguments: recording that catches a student's
# __init__ that requires one.
NO_ARGUMENTS = [{"name": "self", "kind": "positional"}]


def signatures_of(folder: Path, modules: list[str]) -> dict[str, dict]:
    """file stem -> unit -> signature, for each module's file in folder (the reference)."""
    return {module: unit_signatures((folder / f"{module}.py").read_text(), f"{module}.py") for module in modules}


def unit_signatures(source: str, filename: str) -> dict[str, dict]:
    """unit -> signature of every public top-level function and class of source."""
    signatures = {}
    tree = parse(source, filename)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    for node in tree.body:
        if not isinstance(node, _DEFINITIONS) or node.name.startswith("_"):
            continue
        if isinstance(node, ast.ClassDef):
            methods = {name: parameters(f.args) for name, f in _methods_of(node, classes)[0].items() if name in CONTRACT_METHODS}
            signatures[node.name] = {"kind": "class", "methods": {"__init__": NO_ARGUMENTS, **methods}}
        else:
            signatures[node.name] = {"kind": "function", "parameters": parameters(node.args)}
    return signatures


def parameters(arguments: ast.arguments) -> list[dict]:
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    found = [
        _parameter(arg.arg, "positional_only" if index < len(arguments.posonlyargs) else "positional", default)
        for index, (arg, default) in enumerate(zip(positional, defaults))
    ]
    if arguments.vararg:
        found.append(_parameter(arguments.vararg.arg, "var_positional"))
    found += [_parameter(arg.arg, "keyword_only", default) for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults)]
    if arguments.kwarg:
        found.append(_parameter(arguments.kwarg.arg, "var_keyword"))
    return found


def _parameter(name: str, kind: str, default: ast.expr | None = None) -> dict:
    return {"name": name, "kind": kind} | ({"default": ast.unparse(default)} if default is not None else {})


def render(name: str, params: list[dict]) -> str:
    """`def name(a, b=1.0, *rest, c=2, **options)`, as a student would write it."""
    parts = []
    for index, param in enumerate(params):
        if param["kind"] == "keyword_only" and not any(p["kind"] in ("var_positional", "keyword_only") for p in params[:index]):
            parts.append("*")
        prefix = {"var_positional": "*", "var_keyword": "**"}.get(param["kind"], "")
        parts.append(prefix + param["name"] + (f"={param['default']}" if "default" in param else ""))
        if param["kind"] == "positional_only" and (index + 1 == len(params) or params[index + 1]["kind"] != "positional_only"):
            parts.append("/")
    return f"def {name}({', '.join(parts)})"


def mismatches(expected: dict[str, dict], tree: ast.Module, filename: str) -> list[tuple[int | None, str]]:
    """(line, message) for each unit of expected that tree lacks or defines with other parameters."""
    top = {node.name: node for node in tree.body if isinstance(node, _DEFINITIONS)}  # the last definition wins, as in Python
    classes = {name: node for name, node in top.items() if isinstance(node, ast.ClassDef)}
    found = []
    for unit, signature in expected.items():
        node = top.get(unit)
        if signature["kind"] == "class":
            if not isinstance(node, ast.ClassDef):
                found.append(_not_defined(unit, node, f"class {unit}:", filename))
                continue
            methods, complete = _methods_of(node, classes)
            for method, params in signature["methods"].items():
                if method in methods:
                    found += _compare(f"{unit}.{method}", method, params, methods[method])
                elif complete and params != NO_ARGUMENTS:  # with a base from elsewhere it may be inherited
                    found.append((node.lineno, f"`{unit}` has no method `{method}`: expected `{render(method, params)}` in it"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += _compare(unit, unit, signature["parameters"], node)
        else:
            found.append(_not_defined(unit, node, render(unit, signature["parameters"]), filename))
    return found


def _not_defined(unit: str, node, expected: str, filename: str) -> tuple[int | None, str]:
    if node is None:
        return None, f"`{unit}` is missing: expected `{expected}` at the top level of {filename}"
    other = "a class" if isinstance(node, ast.ClassDef) else "a function"
    return node.lineno, f"`{unit}` is {other} here: expected `{expected}`"


def _methods_of(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> tuple[dict[str, ast.FunctionDef], bool]:
    """A class's methods, its own over those of its bases in this file, and whether every base is in this file."""
    methods, complete, seen = {}, True, set()
    pending = [node]
    while pending:
        current = pending.pop(0)
        if current.name in seen:
            continue
        seen.add(current.name)
        for function in current.body:
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.setdefault(function.name, function)
        for base in current.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                pending.append(classes[base.id])
            elif not (isinstance(base, ast.Name) and base.id == "object"):
                complete = False
    return methods, complete


def _compare(qualified: str, name: str, expected: list[dict], node: ast.FunctionDef) -> list[tuple[int, str]]:
    actual = parameters(node.args)
    reasons = _differences(expected, actual)
    if not reasons:
        return []
    return [(node.lineno, f"`{qualified}` has other parameters than the assignment's: {'; '.join(reasons)}. "
                          f"Expected `{render(name, expected)}`, found `{render(name, actual)}`: keep the names, order and "
                          f"defaults given (a parameter you add needs a default)")]


def _differences(expected: list[dict], actual: list[dict]) -> list[str]:
    reasons = []
    wanted = [p for p in expected if p["kind"] in POSITIONAL]
    have = [p for p in actual if p["kind"] in POSITIONAL]
    keyword_only = {p["name"]: p for p in actual if p["kind"] == "keyword_only"}
    for index, want in enumerate(wanted):
        if index >= len(have):
            where = "keyword-only (after `*`)" if want["name"] in keyword_only else "missing"
            reasons.append(f"`{want['name']}` is {where}")
        elif have[index]["name"] != want["name"]:
            reasons.append(f"parameter {index + 1} is `{have[index]['name']}`, expected `{want['name']}`")
        elif have[index]["kind"] == "positional_only" and want["kind"] == "positional":
            reasons.append(f"`{want['name']}` is positional-only (before `/`): it must be accepted by name too")
        else:
            reasons += _default_difference(want, have[index])
    reasons += [f"`{p['name']}` has no default" for p in have[len(wanted):] if "default" not in p]
    by_name = {p["name"]: p for p in actual if p["kind"] in POSITIONAL + ("keyword_only",)}
    for want in (p for p in expected if p["kind"] == "keyword_only"):
        if want["name"] in by_name:
            reasons += _default_difference(want, by_name[want["name"]])
        else:
            reasons.append(f"`{want['name']}` is missing")
    expected_names = {p["name"] for p in expected}
    reasons += [f"`{name}` has no default" for name, p in keyword_only.items() if name not in expected_names and "default" not in p]
    for kind, star in (("var_positional", "*"), ("var_keyword", "**")):
        want = next((p for p in expected if p["kind"] == kind), None)
        if want and not any(p["kind"] == kind for p in actual):
            reasons.append(f"`{star}{want['name']}` is missing")
    return reasons


def _default_difference(want: dict, have: dict) -> list[str]:
    if "default" not in want or ("default" in have and same_default(want["default"], have["default"])):
        return []  # a default where the assignment has none harms no caller
    found = f"defaults to {have['default']}" if "default" in have else "has no default"
    return [f"`{want['name']}` {found}, expected {want['default']}"]


def same_default(expected: str, actual: str) -> bool:
    """Whether two default expressions (source text) are the same value: 1e-3 is 0.001, 1 is 1.0, False is not 0."""
    try:
        return _comparable(ast.literal_eval(expected)) == _comparable(ast.literal_eval(actual))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return expected == actual  # not plain literals (e.g. torch.float64): the same text or nothing


def _comparable(value):
    if isinstance(value, bool) or value is None:
        return type(value).__name__, value
    if isinstance(value, (int, float)):
        return "number", float(value)
    if isinstance(value, (tuple, list)):
        return type(value).__name__, tuple(_comparable(item) for item in value)
    return type(value).__name__, value
