"""A notebook handed in instead of files: which cell is which file.

The rule (README of every homework): the first line of a code cell names the
file the cell belongs to,

    # file: activations.py

(`%%writefile activations.py`, Jupyter's own way to write a cell to a file, is
read the same way). A file is the concatenation of its cells in notebook order,
so a long file may span several cells with plots in between. Cells without such
a first line (experiments, plots, `!pip install`) are not graded.

Only the notebook's JSON is read here, nothing in it is run. Lines of a file
stay where they were in their cell, so a message about line k of a cell's code
points at line k of that cell.

A notebook comes from a student, so reading it is bounded: its bytes
(NOTEBOOK_CAP), its JSON values (NOTEBOOK_VALUES_CAP, counted before it is
loaded: a 14 MiB notebook of empty objects costs 320 MiB as JSON, and 2.4 GiB
and 15 s through nbformat's validating reader, which is why plain JSON is read),
the code of a cell (CELL_CAP) and of a file made of cells (SOURCE_CAP). The
syntax check parses only within checks/parsing.py's caps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from autograder.checks.parsing import TooLargeToParse, parse
from autograder.engine.runner import SOURCE_CAP
from autograder.submission.names import CASE_SENSITIVE, cell_header

NOTEBOOK_CAP = 16 << 20  # notebooks carry their outputs (plots): larger than a source file
# `{`, `[` and `,` bytes, an upper bound on the JSON values (each costs up to ~120 bytes loaded): about 60 MiB at most.
# A homework notebook has a few hundred; one with long printed outputs tens of thousands.
NOTEBOOK_VALUES_CAP = 500_000
CELL_CAP = SOURCE_CAP  # code in one cell: a cell is part of a file, and no file may be larger
MARKER = re.compile(r"\s*(?:#\s*file\s*:|%%writefile(?:\s+-a)?)\s*(?P<name>\S+)\s*$", re.IGNORECASE)
# A first line that comes close to a marker: a comment ending with a file name (`# activations.py`, `#File activations.py:`).
NEAR_MARKER = re.compile(r"\s*#.*?(?P<name>[A-Za-z_][A-Za-z0-9_]*\.py)\W*")
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py")
IPYTHON_LINE = re.compile(r"\s*[%!]")
HOW_TO = ("make `# file: <name>.py` the first line of each cell that holds a file's code "
          "(e.g. `# file: activations.py`), then save the notebook")
CLEAR_OUTPUTS = "clear its outputs (Kernel > Restart Kernel and Clear All Outputs) and save it again"
QUOTED_CAP = 80  # characters of the student's text (a line, a name, an error) quoted in a message


class NotebookError(Exception):
    """The notebook cannot be read, or follows the rule nowhere: the message says what to change."""


class NoFileCells(NotebookError):
    """No cell of the notebook names a file, nor comes close to: a notebook of experiments, or one not used to hand in."""


@dataclass
class Extracted:
    files: dict[str, str] = field(default_factory=dict)  # file name -> its code
    cells: dict[str, list[int]] = field(default_factory=dict)  # file name -> its cells, numbered from 1
    notes: list[str] = field(default_factory=list)  # what the student should fix, graded anyway
    misnamed: dict[str, str] = field(default_factory=dict)  # an expected file name -> the note on the cell that came close to it


def extract(content: bytes, notebook_name: str, expected: Iterable[str] = ()) -> Extracted:
    """The files a notebook defines by the rule above, or NotebookError saying what to change.

    expected: the assignment's file names; a cell whose first line comes close to naming one of them
    (`# file: Backprop.py`, `# activations.py`) is not graded, and a note says what to write instead."""
    cells = _code_cells(content, notebook_name)
    extracted, parts = Extracted(), {}
    by_lower = {name.lower(): name for name in expected}
    for number, source in cells:
        first, _, body = source.partition("\n")
        marker = MARKER.match(first)
        if marker is None:
            near = NEAR_MARKER.fullmatch(first)
            if near and near["name"].lower() in by_lower:
                meant = by_lower[near["name"].lower()]
                _note_misnamed(extracted, meant, f"{notebook_name}, cell {number}: its first line `{first.strip()[:QUOTED_CAP]}` "
                                                 f"does not follow the rule: make it `{cell_header(meant)}`; the cell is not graded")
            continue
        name = marker["name"].strip("'\"")
        meant = by_lower.get(name.lower(), name)
        if meant != name:
            _note_misnamed(extracted, meant, f"{notebook_name}, cell {number}: `{first.strip()[:QUOTED_CAP]}` names {name[:QUOTED_CAP]}, "
                                             f"not {meant} ({CASE_SENSITIVE}): make it `{cell_header(meant)}`; the cell is not graded")
            continue
        if not MODULE_NAME.fullmatch(name):
            extracted.notes.append(f"{notebook_name}, cell {number}: `{first.strip()[:QUOTED_CAP]}` names {name[:QUOTED_CAP]!r}, not a "
                                   "Python file like `activations.py`; the cell is not graded")
            continue
        unusable = _unusable_cell(body, name)
        if unusable:
            extracted.notes.append(f"notebook {notebook_name}: cell {number} ({name}) {unusable}; the cell is not graded")
            continue
        ipython = [(offset, line) for offset, line in enumerate(body.splitlines(), start=2) if IPYTHON_LINE.match(line)]
        if ipython:
            offset, line = ipython[0]
            more = f" (and {len(ipython) - 1} more such lines in the cell)" if len(ipython) > 1 else ""
            extracted.notes.append(f"{notebook_name}, cell {number} ({name}), line {offset}: `{line.strip()[:QUOTED_CAP]}` is IPython, "
                                   f"not Python; move it to a cell without a `# file:` line{more}")
        # The marker line becomes a comment, so the cell's lines keep their numbers in the file.
        parts.setdefault(name, []).append(f"# {notebook_name}, cell {number}\n{body}")
        extracted.cells.setdefault(name, []).append(number)
    if not parts and extracted.notes:
        raise NotebookError(extracted.notes[0])  # the one reason nothing could be taken, e.g. a cell too large
    if not parts:
        raise NoFileCells(f"no cell of {notebook_name} names its file: {HOW_TO}")
    for name, texts in parts.items():
        code = "\n\n".join(text.rstrip("\n") for text in texts) + "\n"
        size = len(code.encode("utf-8"))
        if size > SOURCE_CAP:
            listed = cells_named(extracted.cells.pop(name))
            extracted.notes.append(f"notebook {notebook_name}: {name} ({listed}) is {_mib(size)} of code, over the "
                                   f"{SOURCE_CAP >> 20} MiB a file may hold: hand in the code, not data; it is not graded")
            continue
        extracted.files[name] = code
        _note_syntax_error(extracted, name, notebook_name)
    if not extracted.files:
        raise NotebookError(extracted.notes[-1])
    return extracted


def _note_misnamed(extracted: Extracted, meant: str, note: str) -> None:
    extracted.notes.append(note)
    extracted.misnamed.setdefault(meant, note)


def _code_cells(content: bytes, notebook_name: str) -> list[tuple[int, str]]:
    """(number from 1, source) of each code cell, read within the caps, or NotebookError."""
    if len(content) > NOTEBOOK_CAP:
        raise NotebookError(f"{notebook_name} is {_mib(len(content))}, over the {NOTEBOOK_CAP >> 20} MiB limit of a "
                            f"notebook: {CLEAR_OUTPUTS}")
    values = content.count(b"{") + content.count(b"[") + content.count(b",")
    if values > NOTEBOOK_VALUES_CAP:
        raise NotebookError(f"{notebook_name} holds about {values:,} JSON values (cells, lines, outputs), over the "
                            f"{NOTEBOOK_VALUES_CAP:,} the grader reads: {CLEAR_OUTPUTS}")
    try:
        notebook = json.loads(content.decode("utf-8"))
    except Exception as exc:  # not UTF-8, not JSON, nested too deep: none of it is ours to let through
        raise NotebookError(f"{notebook_name} is not a Jupyter notebook ({type(exc).__name__}: {str(exc)[:QUOTED_CAP]}); "
                            "save it from Jupyter as .ipynb") from None
    version = notebook.get("nbformat") if isinstance(notebook, dict) else None
    if isinstance(version, int) and version < 4 and "cells" not in notebook:
        raise NotebookError(f"{notebook_name} was saved by a Jupyter older than 2015 (notebook format {version}): "
                            "open it in a current Jupyter and save it again")
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise NotebookError(f"{notebook_name} is not a Jupyter notebook (it has no list of cells); save it from Jupyter as .ipynb")
    found = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise NotebookError(f"{notebook_name} is not a Jupyter notebook (the source of cell {number} is not text); "
                                "save it from Jupyter as .ipynb")
        found.append((number, source))
    return found


def _unusable_cell(body: str, name: str) -> str:
    """Why a marked cell's code cannot be part of a file, or ""."""
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError as exc:  # JSON can hold a lone surrogate; no file can
        line = body.count("\n", 0, exc.start) + 2
        return f"holds text that is not valid Unicode at line {line} (a lone surrogate): retype that line"
    if size > CELL_CAP:
        return f"is {_mib(size)} of code, over the {CELL_CAP >> 20} MiB a cell may hold: hand in the code, not data"
    return ""


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _note_syntax_error(extracted: Extracted, name: str, notebook_name: str) -> None:
    """Say which cell holds a syntax error: the grader would only see a line of the joined file."""
    try:
        parse(extracted.files[name], name)
    except SyntaxError as exc:
        lines = extracted.files[name].splitlines()[: exc.lineno or 0]
        headers = [i for i, line in enumerate(lines) if line.startswith(f"# {notebook_name}, cell ")]
        if headers:
            cell = lines[headers[-1]].rsplit(" ", 1)[-1]
            extracted.notes.append(f"{notebook_name}, cell {cell} ({name}), line {exc.lineno - headers[-1]}: "
                                   f"syntax error: {exc.msg}")
    except TooLargeToParse as exc:
        extracted.notes.append(f"{notebook_name}: not checked for syntax errors: {exc}")
    except (ValueError, RecursionError, MemoryError) as exc:  # a null byte, nesting too deep: importing it will say
        extracted.notes.append(f"{notebook_name}: {name} cannot be parsed ({type(exc).__name__}: {str(exc)[:QUOTED_CAP]}); "
                               "importing it will fail")


def cells_named(numbers: list[int]) -> str:
    """"cell 3", "cells 3, 4": where in a notebook a file's code was found."""
    return f"cell {numbers[0]}" if len(numbers) == 1 else f"cells {', '.join(map(str, numbers))}"
