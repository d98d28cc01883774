"""The homework's notebook, written from a template in the percent format that
Jupytext, VS Code and Spyder read (`reference/<hw>/notebook.py`):

    # %% [markdown]
    # # A title
    # Text, each line behind "# ".

    # %%
    import torch  # a code cell, up to the next "# %%"

IPython lines (`%autoreload`, `!cmd`) may stand in code cells as they are. Cell
ids are numbered, not random, so releasing twice writes the same notebook.
"""

from __future__ import annotations

import re

import nbformat

CELL_START = re.compile(r"# %%(?P<markdown>\s*\[markdown\])?\s*$")
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def build_notebook(template: str) -> str:
    """The .ipynb text of a percent-format template."""
    cells, kind, lines = [], None, []

    def close():
        text = "\n".join(lines).strip("\n")
        if kind is None or not text:
            return
        ident = f"cell-{len(cells) + 1}"
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text, id=ident))
        else:
            cells.append(nbformat.v4.new_code_cell(text, id=ident))

    for line in template.splitlines():
        start = CELL_START.match(line)
        if start:
            close()
            kind, lines = ("markdown" if start["markdown"] else "code"), []
        else:
            lines.append(line)
    close()
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"
