"""Functions not written yet: those whose body still raises NotImplementedError, as the released stubs do.

`submit` lists them before packing (a student may hand in part of the work on purpose, but
should not do so by mistake); `check` lists them once instead of a traceback per check that
ran into one. Found statically (`ast`): nothing of the student's code runs here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

from autograder.checks.parsing import TooLargeToParse, parse
from autograder.engine.results import CheckResult

# How the worker reports an exception (protocol/client.py StudentError): "<call> raised <type> at <file>:<line> in <function>".
RAISED_AT = re.compile(r" raised NotImplementedError at (?P<file>[^\s:]+):(?P<line>\d+) in ")


@dataclass(frozen=True)
class Stub:
    file: str  # "optimizers.py"
    line: int  # of the `raise NotImplementedError`
    function: str  # "SGD.step"


def stubs_in(tree: ast.Module, file: str) -> list[Stub]:
    """The functions and methods of a parsed file whose body raises NotImplementedError, in file order."""
    found = []

    def visit(node, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for statement in child.body:
                    raised = statement.exc if isinstance(statement, ast.Raise) else None
                    called = raised.func if isinstance(raised, ast.Call) else raised
                    if isinstance(called, ast.Name) and called.id == "NotImplementedError":
                        found.append(Stub(file, statement.lineno, f"{prefix}{child.name}"))
                        break

    visit(tree, "")
    return found


def stubs_of(files: dict[str, bytes | str], names: Iterable[str] | None = None) -> list[Stub]:
    """The stubs of each file (of those named, in that order; default: all) that parses (a file that does not
    is reported by the checks themselves)."""
    found = []
    for name in files if names is None else [name for name in names if name in files]:
        try:
            content = files[name]
            text = content.decode("utf-8") if isinstance(content, bytes) else content
            found += stubs_in(parse(text, name), name)
        except (UnicodeDecodeError, SyntaxError, TooLargeToParse, ValueError, RecursionError, MemoryError):
            continue
    return found


def waiting_on(message: str, stubs: Iterable[Stub]) -> Stub | None:
    """The stub a check's message says the check ran into (its NotImplementedError was raised at the
    stub's line), or None: any other failure, a NotImplementedError the student wrote elsewhere
    included, is a real one."""
    raised = RAISED_AT.search(message.partition("\n")[0])
    if raised is None:
        return None
    return next((s for s in stubs if (s.file, s.line) == (raised["file"], int(raised["line"]))), None)


def held_by_stubs(checks: Iterable[CheckResult], stubs: Iterable[Stub]) -> dict[Stub, list[CheckResult]]:
    """stub -> the checks whose only failure was running into it (an error raised at its line), in check order."""
    stubs, held = list(stubs), {}
    for check in checks:
        stub = waiting_on(check.message, stubs) if check.status == "error" else None
        if stub is not None:
            held.setdefault(stub, []).append(check)
    return held


def grouped(stubs: Iterable[Stub]) -> dict[str, list[str]]:
    """file -> its stubs in a few words: "threshold_neuron", "Sigmoid (forward, backward)"."""
    by_file: dict[str, dict[str, list[str]]] = {}
    for stub in stubs:
        owner, _, method = stub.function.rpartition(".")
        by_file.setdefault(stub.file, {}).setdefault(owner or stub.function, []).append(method if owner else "")
    return {file: [name if methods == [""] else f"{name} ({', '.join(m for m in methods if m)})" for name, methods in units.items()]
            for file, units in by_file.items()}
