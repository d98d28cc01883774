"""What a homework's notebook uses: the public checks drawn in its output,

    from autograder.jupyter import attempt, check
    check("hw1")

the same checks as `autograder check hw1 .` in a terminal, on the files in the
notebook's folder (or its cells marked `# file: <name>.py`, as saved last); and
attempt(), so that a cell using a unit not written yet says so and goes on."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from autograder.batch.folder import NothingToGrade, grade_folder, not_written, taken
from autograder.engine.assignment import AssignmentError, find_bundle, load_bundle
from autograder.reports import terminal
from autograder.sandboxes import choose


def attempt(what: str, compute):
    """compute(), or None and a line saying what is still to write."""
    try:
        return compute()
    except NotImplementedError as exc:
        print(f"{what}: not written yet ({exc})")


def check(assignment: str, directory: str | Path = ".") -> None:
    directory = Path(directory)
    console = Console()  # rich draws HTML in Jupyter, text in a terminal
    try:
        # Looked for as `autograder check` looks (cli.py): here, above, the package's course.
        material = load_bundle(assignment, find_bundle(assignment, directory))
        submission = taken(material, directory, "local")
        result = grade_folder(material, directory, choose("process")[0], "local", submission, visibilities=("public",))
    except (AssignmentError, NothingToGrade) as exc:
        console.print(f"cannot check {assignment} in {directory.resolve()}: {exc}", markup=False, style="red")
        return
    # As `autograder check` prints it: the functions not written yet listed once, not a traceback per check.
    terminal.render(result, console, not_written(material, submission))
