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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nbformat

from autograder.checks.parsing import parse

NOTEBOOK_CAP = 16 << 20  # notebooks carry their outputs (plots): larger than a source file
MARKER = re.compile(r"\s*(?:#\s*file\s*:|%%writefile(?:\s+-a)?)\s*(?P<name>\S+)\s*$", re.IGNORECASE)
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.py")
IPYTHON_LINE = re.compile(r"\s*[%!]")
HOW_TO = ("make `# file: <name>.py` the first line of each cell that holds a file's code "
          "(e.g. `# file: activations.py`), then save the notebook")


class NotebookError(Exception):
    """The notebook cannot be read, or follows the rule nowhere: the message says what to change."""


@dataclass
class Extracted:
    files: dict[str, str] = field(default_factory=dict)  # file name -> its code
    cells: dict[str, list[int]] = field(default_factory=dict)  # file name -> its cells, numbered from 1
    notes: list[str] = field(default_factory=list)  # what the student should fix, graded anyway


def extract(content: bytes, notebook_name: str) -> Extracted:
    """The files a notebook defines by the rule above, or NotebookError saying what to change."""
    if len(content) > NOTEBOOK_CAP:
        raise NotebookError(f"{notebook_name} is over the {NOTEBOOK_CAP >> 20} MiB limit of a notebook; clear its outputs and save it again")
    try:
        notebook = nbformat.reads(content.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises many kinds; none of them is ours to let through
        raise NotebookError(f"{notebook_name} is not a Jupyter notebook ({type(exc).__name__}: {exc}); "
                            "save it from Jupyter as .ipynb") from None
    extracted, parts = Extracted(), {}
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        first, _, body = str(cell.get("source", "")).partition("\n")
        marker = MARKER.match(first)
        if marker is None:
            continue
        name = marker["name"].strip("'\"")
        if not MODULE_NAME.fullmatch(name):
            extracted.notes.append(f"{notebook_name}, cell {number}: `{first.strip()}` names {name!r}, not a Python file "
                                   "like `activations.py`; the cell is not graded")
            continue
        for offset, line in enumerate(body.splitlines(), start=2):
            if IPYTHON_LINE.match(line):
                extracted.notes.append(f"{notebook_name}, cell {number} ({name}), line {offset}: `{line.strip()}` is IPython, "
                                       "not Python; move it to a cell without a `# file:` line")
        # The marker line becomes a comment, so the cell's lines keep their numbers in the file.
        parts.setdefault(name, []).append(f"# {notebook_name}, cell {number}\n{body}")
        extracted.cells.setdefault(name, []).append(number)
    if not parts:
        raise NotebookError(f"no cell of {notebook_name} names its file: {HOW_TO}")
    for name, texts in parts.items():
        extracted.files[name] = "\n\n".join(text.rstrip("\n") for text in texts) + "\n"
        _note_syntax_error(extracted, name, notebook_name)
    return extracted


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
