"""Notebooks: a notebook handed in instead of files (which cell is which file), and the
notebook each homework is released with, run for real in a Jupyter kernel."""

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from autograder.batch.folder import grade_folder
from autograder.cli import main
from autograder.batch.intake import discover, take
from autograder.engine.assignment import load_reference
from autograder.release.notebook import build_notebook
from autograder.sandboxes import get_sandbox
from autograder.submission.notebook import HOW_TO, NotebookError, extract
from hw1_variants import VARIANTS
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
HW1_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")


def notebook(*cells: str | tuple[str, str]) -> bytes:
    """A notebook's bytes: a str is a code cell, ("markdown", text) a Markdown cell."""
    made = [nbformat.v4.new_markdown_cell(c[1]) if isinstance(c, tuple) else nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nbformat.v4.new_notebook(cells=made)).encode()


def split_in_two(name: str, source: str) -> list[str]:
    """source as two cells marked for name, cut at a blank line in the middle: a file may span cells."""
    lines = source.splitlines()
    cut = next(i for i in range(len(lines) // 2, len(lines)) if not lines[i].strip())
    return [f"# file: {name}\n" + "\n".join(lines[:cut]), f"# file: {name}\n" + "\n".join(lines[cut:])]


def hw1_notebook(directory: Path) -> bytes:
    """The files of directory as a notebook a student might write: marked cells among others."""
    cells = [("markdown", "# My hw1"), "%matplotlib inline\nimport torch\n!pip list | head"]
    for name in HW1_FILES:
        cells += split_in_two(name, (directory / name).read_text())
        cells.append(f"import {name[:-3]}\nprint('scratch work')")
    return notebook(*cells)


def test_a_file_is_its_marked_cells_joined_in_order_and_other_cells_are_left_out():
    got = extract(notebook(("markdown", "# file: not_code.py"), "# file: units.py\ndef a():\n    return 1",
                           "x = 2  # scratch", "%%writefile units.py\ndef b():\n    return 2",
                           "#File:helpers.py\nK = 3"), "work.ipynb")
    assert set(got.files) == {"units.py", "helpers.py"} and got.cells == {"units.py": [2, 4], "helpers.py": [5]}
    namespace = {}
    exec(got.files["units.py"], namespace)
    assert namespace["a"]() == 1 and namespace["b"]() == 2 and got.notes == []
    assert got.files["units.py"].splitlines()[1] == "def a():"  # line 2 of the cell is line 2 of the file


def test_a_notebook_that_follows_the_rule_nowhere_is_told_what_to_change():
    with pytest.raises(NotebookError) as raised:
        extract(notebook("import torch\ndef conv2d(x, w):\n    pass"), "hw2.ipynb")
    assert "no cell of hw2.ipynb names its file" in str(raised.value) and HOW_TO in str(raised.value)
    with pytest.raises(NotebookError, match="not a Jupyter notebook .*save it from Jupyter"):
        extract(b"{not json", "hw2.ipynb")
    with pytest.raises(NotebookError, match="not a Jupyter notebook"):
        extract(json.dumps({"cells": "nope"}).encode(), "hw2.ipynb")


def test_mistakes_inside_marked_cells_are_located_by_cell_and_line():
    got = extract(notebook("# file: a.py\nimport torch\n!pip install numpy", "# file: my notes\nprint(1)"), "nb.ipynb")
    assert list(got.files) == ["a.py"]  # "# file: my notes" is a comment, not a marker
    assert got.notes[0] == ("nb.ipynb, cell 1 (a.py), line 3: `!pip install numpy` is IPython, not Python; "
                            "move it to a cell without a `# file:` line")
    got = extract(notebook("# file: a.py\nx = 1", "# file: a.py\ny = 2\ndef f(:\n    pass"), "nb.ipynb")
    assert got.notes == ["nb.ipynb, cell 2 (a.py), line 3: syntax error: invalid syntax"]


def test_a_marker_naming_something_other_than_a_python_file_is_noted():
    got = extract(notebook("# file: units.txt\nx = 1", "# file: units.py\ny = 2"), "nb.ipynb")
    assert list(got.files) == ["units.py"]
    assert got.notes == ["nb.ipynb, cell 1: `# file: units.txt` names 'units.txt', not a Python file like "
                         "`activations.py`; the cell is not graded"]


def test_a_cell_that_comes_close_to_naming_a_file_of_the_assignment_says_what_to_write_instead():
    got = extract(notebook("# file: Backprop.py\nx = 1", "# activations.py\ny = 2", "#Neurons.py:\nz = 3", "# plot.py\nw = 4",
                           "# file: optimizers.py\nv = 5"), "hw1.ipynb", HW1_FILES)
    assert list(got.files) == ["optimizers.py"]  # the near misses are not graded under a guessed name
    assert got.notes == [
        "hw1.ipynb, cell 1: `# file: Backprop.py` names Backprop.py, not backprop.py (file names are case-sensitive): "
        "make it `# file: backprop.py`; the cell is not graded",
        "hw1.ipynb, cell 2: its first line `# activations.py` does not follow the rule: make it `# file: activations.py`; "
        "the cell is not graded",
        "hw1.ipynb, cell 3: its first line `#Neurons.py:` does not follow the rule: make it `# file: neurons.py`; the cell is not graded",
    ]  # `# plot.py` names no file of the assignment: a comment like any other
    assert set(got.misnamed) == {"backprop.py", "activations.py", "neurons.py"}
    with pytest.raises(NotebookError, match=r"cell 1: its first line `# activations.py` .* make it `# file: activations.py`"):
        extract(notebook("# activations.py\ny = 2"), "hw1.ipynb", HW1_FILES)  # the one reason nothing was taken


def test_a_folder_with_the_released_notebook_and_a_misnamed_file_is_told_to_rename_it(tmp_path):
    shutil.copy(ROOT / "assignments" / "hw1" / "hw1.ipynb", tmp_path)  # no file cells: not worth a note
    for name in HW1_FILES:
        shutil.copy(ROOT / "reference" / "hw1" / name, tmp_path / name.replace("activations", "Activations"))
    taken = take(tmp_path, "s1", "hw1", [name[:-3] for name in HW1_FILES])
    assert taken.notes == ["missing: activations.py (the checks of its units score 0); Activations.py is here: rename it to "
                           "activations.py (file names are case-sensitive)"]


def test_intake_takes_the_files_a_notebook_defines_and_prefers_files_handed_in(tmp_path):
    reference = ROOT / "reference" / "hw1"
    only_notebook = tmp_path / "class" / "ana"
    only_notebook.mkdir(parents=True)
    (only_notebook / "hw1.ipynb").write_bytes(hw1_notebook(reference))
    both = tmp_path / "class" / "bo"
    both.mkdir()
    (both / "hw1.ipynb").write_bytes(hw1_notebook(reference))
    shutil.copy(reference / "neurons.py", both / "neurons.py")
    (tmp_path / "class" / "cy").mkdir()
    (tmp_path / "class" / "cy" / "hw1.ipynb").write_bytes(notebook("import torch"))
    (tmp_path / "class" / "di").mkdir()
    (tmp_path / "class" / "di" / "hw1.ipynb").write_bytes(notebook("# file: neurons.py\nimport torch"))
    submissions, _ = discover(tmp_path / "class", "hw1", [name[:-3] for name in HW1_FILES])
    ana, bo, cy, di = submissions
    assert "neurons.py: taken from hw1.ipynb, cell 1" in di.notes
    assert sorted(ana.files) == sorted(HW1_FILES) and not ana.broken
    assert "activations.py: taken from hw1.ipynb, cells 6, 7" in ana.notes  # cell 1 is Markdown, 2 the imports
    assert bo.files["neurons.py"] == (reference / "neurons.py").read_bytes()
    assert "neurons.py was handed in as a file and in hw1.ipynb (cells 3, 4): the file is graded" in bo.notes
    assert cy.broken.startswith("no cell of hw1.ipynb names its file") and cy.files == {}


def test_a_notebook_is_graded_like_the_same_code_as_files(tmp_path):
    """Same scores, check by check, hidden checks included (same student, so the same hidden inputs)."""
    files = tmp_path / "files" / "s1"
    shutil.copytree(ROOT / "reference" / "hw1", files, ignore=shutil.ignore_patterns("*checks.py", "notebook.py", "README.md"))
    apply(next(v for v in VARIANTS if v.name == "sigmoid_wrong_derivative"), files)
    as_notebook = tmp_path / "notebook" / "s1"
    as_notebook.mkdir(parents=True)
    (as_notebook / "my_hw1.ipynb").write_bytes(hw1_notebook(files))
    assignment, sandbox = load_reference("hw1", ROOT / "reference" / "hw1"), get_sandbox("process")
    as_files, from_notebook = (grade_folder(assignment, folder, sandbox, "s1") for folder in (files, as_notebook))
    assert [(c.id, c.status, c.score) for c in as_files.checks] == [(c.id, c.status, c.score) for c in from_notebook.checks]
    assert 0 < from_notebook.score < from_notebook.max_score  # the bug costs points, the same ones
    assert any("taken from my_hw1.ipynb" in note for note in from_notebook.notes) and as_files.notes == []


def test_check_says_what_to_change_when_a_notebook_follows_the_rule_nowhere(tmp_path):
    shutil.copytree(ROOT / "assignments" / "hw1" / "public_checks", tmp_path / "public_checks")
    (tmp_path / "hw1.ipynb").write_bytes(notebook("import torch\nclass Sigmoid:\n    pass"))
    run = subprocess.run([sys.executable, "-m", "autograder", "check", "hw1", "."], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "nothing to check in .: no cell of hw1.ipynb names its file: make `# file: <name>.py` the first line" in " ".join(run.stderr.split())


def test_a_notebook_is_handed_in_from_an_empty_folder(tmp_path, monkeypatch):
    """Only the notebook in the folder: check and submit find the public checks as they do for files (here through the
    course this package sits in; with --checks where none is reachable, as with an installed package)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "my_hw1.ipynb").write_bytes(hw1_notebook(ROOT / "reference" / "hw1"))
    monkeypatch.chdir(folder)
    checked = CliRunner().invoke(main, ["check", "hw1"])
    assert checked.exit_code == 0, checked.output
    assert "41 of 41 checks passed" in checked.output and "taken from my_hw1.ipynb, cells 3, 4" in " ".join(checked.output.split())
    submitted = CliRunner().invoke(main, ["submit", "hw1", "--student", "ana"])
    assert submitted.exit_code == 0, submitted.output
    assert "note: neurons.py: taken from my_hw1.ipynb, cells 3, 4" in submitted.output and "problem" not in submitted.output
    with zipfile.ZipFile(folder / "ana-hw1.zip") as archive:
        assert sorted(archive.namelist()) == sorted([*HW1_FILES, "manifest.json"])
        namespace = {}
        exec(archive.read("activations.py").decode(), namespace)  # the notebook's code, as files the grader takes
        assert "Sigmoid" in namespace
    elsewhere = tmp_path / "no-course"
    elsewhere.mkdir()
    unreachable = CliRunner().invoke(main, ["check", "hw1", "--root", str(elsewhere)])
    assert unreachable.exit_code == 1
    assert "cannot find the public checks of hw1 here or above" in unreachable.output
    assert "pass --checks <that folder>/public_checks" in " ".join(unreachable.output.split())
    given = CliRunner().invoke(main, ["submit", "hw1", "--student", "ana", "--checks", str(ROOT / "assignments" / "hw1"), "-o", "b.zip"])
    assert given.exit_code == 0 and (folder / "b.zip").is_file(), given.output


def test_submit_says_what_to_write_in_a_cell_that_came_close_to_naming_its_file(tmp_path):
    reference = ROOT / "reference" / "hw1"
    cells = [f"# file: {name}\n" + (reference / name).read_text() for name in HW1_FILES]
    cells[1] = cells[1].replace("# file: activations.py", "# activations.py", 1)
    (tmp_path / "hw1.ipynb").write_bytes(notebook(*cells))
    run = CliRunner().invoke(main, ["submit", "hw1", str(tmp_path), "--student", "bo", "--checks", str(ROOT / "assignments" / "hw1"),
                                    "-o", str(tmp_path / "bo.zip")])
    assert run.exit_code == 1 and not (tmp_path / "bo.zip").exists()
    hint = "hw1.ipynb, cell 2: its first line `# activations.py` does not follow the rule: make it `# file: activations.py`"
    assert f"problem: activations.py: missing, but {hint}" in run.output and run.output.count(hint) == 1


def test_release_writes_a_valid_notebook_with_numbered_cells():
    template = "# %% [markdown]\n# # Title\n#\n# Some text.\n\n# %%\n%load_ext autoreload\nx = 1\n\n# %%\nprint(x)\n"
    text = build_notebook(template)
    assert text == build_notebook(template)  # releasing twice writes the same file
    made = nbformat.reads(text, as_version=4)
    nbformat.validate(made)
    assert [(c.cell_type, c.id, c.source) for c in made.cells] == [
        ("markdown", "cell-1", "# Title\n\nSome text."), ("code", "cell-2", "%load_ext autoreload\nx = 1"), ("code", "cell-3", "print(x)")]


def run_notebook(path: Path) -> list[str]:
    """Execute the notebook in a real kernel, in its folder; the text of every output, errors included."""
    nbclient = pytest.importorskip("nbclient", reason="nbclient (installed with the nbgrader extra) runs notebooks")
    executed = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(executed, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = []
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + "".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")))
    return texts


@pytest.mark.slow  # 15 s alone, 35-58 s beside the rest of make test: the notebook trains its networks
def test_the_released_hw1_notebook_runs_on_a_solution_and_shows_every_public_check_passing(tmp_path):
    folder = shutil.copytree(ROOT / "assignments" / "hw1", tmp_path / "hw1")
    for name in HW1_FILES:
        shutil.copy(ROOT / "reference" / "hw1" / name, folder / name)
    outputs = "\n".join(run_notebook(folder / "hw1.ipynb"))
    assert "not written yet" not in outputs
    assert outputs.count("<Figure") >= 3  # activations, perceptron, training curves
    assert "8 / 8 points; 41 of 41 checks passed" in outputs


def test_the_released_hw2_notebook_runs_on_the_stubs_and_says_what_is_left(tmp_path):
    folder = shutil.copytree(ROOT / "assignments" / "hw2", tmp_path / "hw2")
    outputs = "\n".join(run_notebook(folder / "hw2.ipynb"))
    assert "conv2d: not written yet (conv2d: write your solution here)" in outputs
    assert "MaxPool2d(4): not written yet" in outputs
    # the check cell ran to its end and lists the stubs once, as `autograder check` does, not a traceback per check
    assert "not written yet, so" in outputs and "checks passed" in outputs and "Traceback" not in outputs
    assert re.search(r"convolution\.py: .*\bconv2d, Conv2d \(forward, backward\)", outputs)


@pytest.mark.quality  # its check cell runs the classifier's public check (a stub, but torch's training imports first)
def test_the_released_hw3_notebook_runs_on_the_stubs_and_says_what_is_left(tmp_path):
    folder = shutil.copytree(ROOT / "assignments" / "hw3", tmp_path / "hw3")
    outputs = "\n".join(run_notebook(folder / "hw3.ipynb"))
    for unit in ("train_text_classifier", "ScaledDotProductAttention", "beam_search", "CRF.decode"):
        assert f"{unit}: not written yet" in outputs, unit
    assert "positive" in outputs or "negative" in outputs  # the data cell needs nothing of the student's
    assert "not written yet, so" in outputs and "checks passed" in outputs and "Traceback" not in outputs


@pytest.mark.slow  # the learning curve trains four classifiers
def test_the_released_hw3_notebook_runs_on_a_solution(tmp_path):
    folder = shutil.copytree(ROOT / "assignments" / "hw3", tmp_path / "hw3")
    for name in ("recurrent.py", "seq2seq.py", "tagging.py"):
        shutil.copy(ROOT / "reference" / "hw3" / name, folder / name)
    outputs = "\n".join(run_notebook(folder / "hw3.ipynb"))
    assert "not written yet" not in outputs and outputs.count("<Figure") >= 2  # learning curve, attention map
    assert "Viterbi:         ['B-PER', 'I-PER', 'O', 'B-PER', 'I-PER', 'O', 'B-LOC']" in outputs
    assert "[['PER', 0, 2], ['PER', 3, 5], ['LOC', 6, 7]]" in outputs
    assert re.search(r"(\S+) / \1 points; (\d+) of \2 checks passed", outputs)
