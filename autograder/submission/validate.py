"""Check a submission on the student's machine before it is packed for upload.

Each of the assignment's files must be present (as a file, or as the cells of a
notebook in the folder marked `# file: <name>.py`, submission/notebook.py), parse, import, keep the
signatures of the assignment (read statically, see signatures.py) and use no
forbidden API (a static scan, as the grader's). Importing is the only step
that runs student code, and it runs in a worker process, never in this one,
on a copy of exactly the files that will be packed (a helper module the zip
leaves out must fail here, not at grading).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.checks.forbidden import scan_source
from autograder.checks.parsing import TooLargeToParse, parse
from autograder.engine.assignment import Assignment
from autograder.engine.runner import SOURCE_CAP, import_failure
from autograder.protocol.client import CallTimeout, StudentError, Worker
from autograder.submission import signatures
from autograder.submission.names import cell_header, misnamed
from autograder.submission.notebook import NOTEBOOK_CAP, NoFileCells, NotebookError, cells_named, extract
from autograder.submission.stubs import stubs_in

WHERE = re.compile(r"(?P<file>[^:]+):(?P<line>\d+)")  # the worker's "file.py:12 in function"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class Validation:
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> the content checked (what gets packed)
    problems: list[Problem] = field(default_factory=list)
    unwritten: list[Problem] = field(default_factory=list)  # stubs left as released: said, packed anyway
    notes: list[str] = field(default_factory=list)  # how files were taken from a notebook, what to fix in its cells


def validate(assignment: Assignment, directory: Path, sandbox) -> Validation:
    """The assignment's files in directory, and every problem found in them, file by file."""
    checked = Validation()
    importable = []
    absent = [f"{module}.py" for module in assignment.modules if not (directory / f"{module}.py").is_file()]
    from_notebooks, near_misses = _notebook_files(directory, absent, checked.notes) if absent else ({}, {})
    for module in assignment.modules:
        name = f"{module}.py"
        path = directory / name
        if name in absent and name not in from_notebooks:
            checked.problems.append(_missing(directory, name, near_misses.get(name, "")))
            continue
        try:
            content = checked.files[name] = from_notebooks[name] if name in from_notebooks else _read(path)
            source, tree = _parse(content, name)
        except Unusable as exc:
            checked.problems.append(exc.problem)
            continue
        expected = assignment.signatures.get(module, {})
        checked.problems += [Problem(name, line, text) for line, text in signatures.mismatches(expected, tree, name)]
        checked.problems += _forbidden(assignment, module, source, expected)
        checked.unwritten += _unwritten(tree, name)
        importable.append(module)
    if importable:
        checked.problems += _import_problems(checked.files, importable, sandbox)
    order = {f"{module}.py": index for index, module in enumerate(assignment.modules)}
    checked.problems.sort(key=lambda p: (order.get(p.file, len(order)), p.file, p.line or 0))
    return checked


def _missing(directory: Path, name: str, near_miss: str) -> Problem:
    """near_miss: a notebook cell's note that came close to naming the file."""
    hint = near_miss or misnamed(name, (p.name for p in directory.iterdir()))
    if hint:
        return Problem(name, None, f"missing, but {hint}")
    return Problem(name, None, f"missing from {directory}: copy the file from the assignment's folder and write your solution in it, "
                               f"or hand in a notebook whose cells start with `{cell_header(name)}`")


def _notebook_files(directory: Path, wanted: list[str], notes: list[str]) -> tuple[dict[str, bytes], dict[str, str]]:
    """The wanted files the notebooks in directory define (the first notebook that defines one, by name, wins), and
    for each wanted file the note on a cell that came close to naming it; what to fix in them goes to notes."""
    found, near_misses = {}, {}
    for notebook in sorted(directory.glob("*.ipynb")):
        try:
            if notebook.stat().st_size > NOTEBOOK_CAP:
                raise NotebookError(f"{notebook.name} is over the {NOTEBOOK_CAP >> 20} MiB limit of a notebook; clear its "
                                    "outputs and save it again")
            extracted = extract(notebook.read_bytes(), notebook.name, wanted)
        except NoFileCells:  # a notebook of experiments (the released one, say): not a hand-in
            continue
        except (NotebookError, OSError) as exc:
            notes.append(str(exc) if isinstance(exc, NotebookError) else f"{notebook.name} cannot be read: {exc.strerror or exc}")
            continue
        notes.extend(note for note in extracted.notes if note not in extracted.misnamed.values())
        for name in wanted:
            if name in extracted.files and name not in found:
                found[name] = extracted.files[name].encode("utf-8")
                notes.append(f"{name}: taken from {notebook.name}, {cells_named(extracted.cells[name])}")
        for name, note in extracted.misnamed.items():  # a problem where it leaves the file missing, else a note
            if name in found:
                notes.append(note)
            else:
                near_misses.setdefault(name, note)
    return found, near_misses


class Unusable(Exception):
    """A file that cannot be checked any further."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > SOURCE_CAP:
            raise Unusable(Problem(path.name, None, f"{size} bytes, over the {SOURCE_CAP >> 20} MiB limit of a "
                                                    f"source file: the grader would leave it out"))
        return path.read_bytes()
    except OSError as exc:
        raise Unusable(Problem(path.name, None, f"cannot be read: {exc.strerror or exc}")) from None


def _parse(content: bytes, name: str) -> tuple[str, ast.Module]:
    """The file's text and syntax tree."""
    try:
        source = importlib.util.decode_source(content)  # honours a coding cookie, as Python's import does
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise Unusable(Problem(name, line, f"not valid UTF-8 text (byte 0x{content[exc.start]:02x}): save the file as UTF-8")) from None
    except SyntaxError as exc:  # an unknown encoding in a coding cookie
        raise Unusable(Problem(name, exc.lineno, f"cannot be decoded: {exc.msg}")) from None
    try:
        return source, parse(source, name)
    except SyntaxError as exc:
        shown = f"\n    {exc.text.rstrip()}" if exc.text and exc.text.strip() else ""
        raise Unusable(Problem(name, exc.lineno, f"syntax error: {exc.msg}{shown}")) from None
    except TooLargeToParse as exc:  # parsing it would cost the grader too much: say why, not how
        raise Unusable(Problem(name, None, str(exc))) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise Unusable(Problem(name, None, f"cannot be parsed: {type(exc).__name__}: {exc}")) from None


def _unwritten(tree: ast.Module, name: str) -> list[Problem]:
    return [Problem(stub.file, stub.line, f"`{stub.function}` still raises NotImplementedError: its checks will score 0")
            for stub in stubs_in(tree, name)]


def _forbidden(assignment: Assignment, module: str, source: str, expected: dict) -> list[Problem]:
    """The grader's static scan: each graded unit of module against its forbidden APIs (autograd for all)."""
    units = {u for u in assignment.forbidden if u.startswith(f"{module}.")} | {s.unit for s in assignment.checks if s.module == module}
    units |= {f"{module}.{unit}" for unit in expected}
    rules = {unit.split(".", 1)[1]: assignment.forbidden_in_source(unit) for unit in units}
    return [
        Problem(f"{module}.py", v.line, f"`{v.unit}` uses {v.name}, which is forbidden in it: "
                                        f"implement {v.unit} with plain tensor operations (the checks of a unit that uses it fail)")
        for violations in scan_source(source, rules).values()
        for v in violations
    ]


def _import_problems(files: dict[str, bytes], modules: list[str], sandbox) -> list[Problem]:
    """Import each module alone in a fresh worker process, beside the other files packed, as the grader does."""
    with tempfile.TemporaryDirectory(prefix="autograder-submit-") as copy:
        for name, content in files.items():
            (Path(copy) / name).write_bytes(content)
        with Worker(sandbox, Path(copy)) as worker:
            return [_import_problem(module, failed[0]) for module in modules if (failed := import_failure(worker, module))]


def _import_problem(module: str, failure) -> Problem:
    name = f"{module}.py"
    if isinstance(failure, StudentError):
        where = WHERE.match(failure.where)
        file, line = (where["file"], int(where["line"])) if where else (name, None)
        return Problem(file, line, f"importing {name} raises {failure.type}: {failure.text} "
                                   f"(the grader imports each file on its own, with only the assignment's files beside it)")
    hint = (": does it train, download or wait for input at the top level? Put that under `if __name__ == \"__main__\":`"
            if isinstance(failure, CallTimeout) else "")
    return Problem(name, None, f"importing it fails: {failure}{hint}")
