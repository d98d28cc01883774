"""The `autograder` command: release, check, grade. Thin: it parses, finds the
course material, and hands over to the engine and the reports."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.progress import Progress

import autograder
from autograder.engine.assignment import BUNDLE_DIR, AssignmentError, load_bundle, load_reference
from autograder.engine.course import CourseError, load_course
from autograder.engine.runner import grade as grade_submission
from autograder.protocol.client import WorkerUnavailable
from autograder.reports import terminal
from autograder.sandboxes import SandboxUnavailable, choose

PACKAGE_PARENT = Path(autograder.__file__).resolve().parent.parent


def find_root(explicit: Path | None, *marker: str, start: Path | None = None) -> Path:
    """The course directory: explicit, or the first of start's, cwd's and the package's ancestors holding marker."""
    if explicit is not None:
        return explicit.resolve()
    candidates = []
    for origin in (start, Path.cwd(), PACKAGE_PARENT):
        if origin is not None:
            candidates += [origin.resolve(), *origin.resolve().parents]
    for candidate in candidates:
        if candidate.joinpath(*marker).exists():
            return candidate
    raise click.UsageError(f"cannot find {'/'.join(marker)} here or above; run inside the course repository or pass --root")


root_option = click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="The course repository.")
SANDBOX_HELP = "How student code is isolated: auto (the strongest available), docker, namespace or process."


def sandbox_option(default: str):
    return click.option("--sandbox", default=default, show_default=True, help=SANDBOX_HELP)


@click.group()
@click.version_option(autograder.__version__)
def main() -> None:
    """Autograder of the deep-learning course."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    torch.set_num_threads(1)  # reference values must not depend on the host's thread count


@main.command()
@click.argument("assignment")
@root_option
@sandbox_option("process")  # runs the reference only
def release(assignment: str, root: Path | None, sandbox: str) -> None:
    """Write assignments/ASSIGNMENT from reference/ASSIGNMENT: stubs, README, public check bundle."""
    from autograder.release.release import ReleaseError
    from autograder.release.release import release as do_release

    root = find_root(root, "reference", assignment)
    try:
        written = do_release(assignment, root, _sandbox(sandbox))
    except (ReleaseError, AssignmentError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(path.relative_to(root), err=True)


@main.command()
@click.argument("assignment")
@click.argument("directory", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@root_option
@sandbox_option("process")  # the student's own code on the student's own machine
def check(assignment: str, directory: Path, root: Path | None, sandbox: str) -> None:
    """Run the public checks of ASSIGNMENT on your files in DIRECTORY (default: here)."""
    bundle = directory / BUNDLE_DIR
    if not bundle.is_dir():
        bundle = find_root(root, "assignments", assignment, BUNDLE_DIR, start=directory) / "assignments" / assignment / BUNDLE_DIR
    try:
        material = load_bundle(assignment, bundle)
    except AssignmentError as exc:
        raise click.ClickException(str(exc)) from None
    result = _run(material, directory, sandbox, "local", visibilities=("public",))
    terminal.render(result, Console())
    sys.exit(0 if all(c.status == "passed" for c in result.checks) else 1)


@main.command()
@click.argument("assignment")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--student", help="Student id: seeds the hidden checks' inputs. Default: DIRECTORY's name.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--reveal-hidden", is_flag=True, help="Show hidden checks' full messages (instructors only).")
@root_option
@sandbox_option("auto")
def grade(assignment, directory, student, output_format, reveal_hidden, root, sandbox) -> None:
    """Grade DIRECTORY on every check of ASSIGNMENT, public and hidden."""
    root = find_root(root, "reference", assignment)
    try:
        material = load_reference(assignment, root / "reference" / assignment)
        course = load_course(root)
    except (AssignmentError, CourseError) as exc:
        raise click.ClickException(str(exc)) from None
    student = student or directory.resolve().name
    result = _run(material, directory, sandbox, student, reveal_hidden=reveal_hidden, course=course)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        terminal.render(result, Console())


def _run(material, directory: Path, sandbox: str, student: str, **options):
    """Grade, with a progress bar on stderr when a person is watching it."""
    visible = options.get("visibilities", ("public", "hidden"))
    total = sum(1 for spec in material.checks if spec.visibility in visible)
    with Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"grading {material.name}", total=total)
        try:
            return grade_submission(
                material, directory, _sandbox(sandbox), student, on_result=lambda _: progress.advance(task), **options
            )
        except WorkerUnavailable as exc:
            raise click.ClickException(str(exc)) from None


def _sandbox(name: str):
    try:
        sandbox, notes = choose(name)
    except SandboxUnavailable as exc:
        raise click.BadParameter(str(exc), param_hint="--sandbox") from None
    for note in notes:
        click.echo(note, err=True)
    return sandbox
