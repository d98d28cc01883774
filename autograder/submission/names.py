"""What a student is told when one of the assignment's files is not where the grader looks for it:
the same words from `check`, `submit`, the batch and a notebook's cells."""

from __future__ import annotations

from collections.abc import Iterable

CASE_SENSITIVE = "file names are case-sensitive"


def misnamed(name: str, present: Iterable[str]) -> str:
    """"Activations.py is here: rename it to activations.py (...)" when a file named like name but for
    its case is present; "" otherwise."""
    near = sorted(other for other in present if other != name and other.lower() == name.lower())
    return f"{near[0]} is here: rename it to {name} ({CASE_SENSITIVE})" if near else ""


def cell_header(name: str) -> str:
    """The first line that makes a notebook cell the file name (submission/notebook.py)."""
    return f"# file: {name}"
