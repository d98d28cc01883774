"""The `autograder` command: new, release, check, submit, grade, batch,
import, export, report, demo, gradescope-package, build-image. Thin: it
parses, finds the course material, and hands over to the engine, the batch,
the gradebook and the reports.

It answers at once: the grading machinery (torch, seconds to import) is
imported only inside the commands that grade or load checks, so --version,
--help, argument errors, import, export and report never load it, and
`check` says what it checks before loading it (tests/test_cli_startup.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress

import autograder
from autograder.engine.course import CourseError, load_course
from autograder.engine.grades import unassigned
from autograder.gradebook.imports import PointsFileError, read_points
from autograder.gradebook.nbgrader_export import NbgraderExportError, export_to_nbgrader
from autograder.gradebook.store import DEFAULT_PATH as DEFAULT_GRADEBOOK
from autograder.gradebook.store import Gradebook, GradebookError
from autograder.release.workflow import JUNIT_FILE
from autograder.reports import batch_terminal, feedback, gradescope, terminal
from autograder.reports import ci as ci_report
from autograder.reports import junit as junit_report
from autograder.reports.batch_terminal import ALL_SCORES_UP_TO, SCORES_SHOWN, BatchProgress
from autograder.reports.export_csv import class_csv
from autograder.reports.safe_text import CleanFormatter, clean, clean_result

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


def _reference_root(assignment: str, explicit: Path | None) -> Path:
    """The course repository holding reference/<assignment>; else a message that lists the course's homeworks,
    or, where no course is found (a student's folder), says the command is for instructors."""
    from autograder.engine.assignment import reference_homeworks

    try:
        found = find_root(explicit, "reference", assignment)
        if found.joinpath("reference", assignment).is_dir():
            return found
    except click.UsageError:
        pass
    origins = [explicit] if explicit is not None else [Path.cwd(), PACKAGE_PARENT]
    course = next((folder for origin in origins for folder in (origin.resolve(), *origin.resolve().parents)
                   if reference_homeworks(folder)), None)
    if course is not None:
        raise click.ClickException(f"{assignment!r} is not a homework of {course}: the homeworks there are "
                                   f"{', '.join(reference_homeworks(course))} (each a reference/<name>/ folder)")
    command = click.get_current_context().info_name
    where = f"in {explicit.resolve()}" if explicit is not None else "here or above (pass --root where the course repository is)"
    raise click.ClickException(
        f"`autograder {command}` is for instructors: it works from the reference solutions (reference/{assignment}/ of the "
        f"course repository), which are not {where}. To run the public checks on your own files, use "
        f"`autograder check {assignment}` in your copy of the {assignment} folder")


root_option = click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="The course repository.")
checks_option = click.option("--checks", type=click.Path(exists=True, file_okay=False, path_type=Path),
                             help="The public_checks folder of the released homework (or the homework folder holding it), "
                                  "when DIRECTORY is not a copy of that folder.")
SANDBOX_HELP = "How student code is isolated: auto (the strongest available), docker, namespace or process."


def sandbox_option(default: str):
    return click.option("--sandbox", default=default, show_default=True, help=SANDBOX_HELP)


def _show_version(ctx: click.Context, _param, value: bool) -> None:
    """--version; and a warning when PyPI's unrelated `autograder` shares this environment."""
    if not value or ctx.resilient_parsing:
        return
    from autograder.release.install import clashing_distribution

    click.echo(f"autograder, version {autograder.__version__}")
    if warning := clashing_distribution():
        click.echo(warning, err=True)
    ctx.exit()


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version, help="Show the version and exit.")
def main() -> None:
    """Autograder of the deep-learning course."""
    log = logging.StreamHandler(sys.stderr)
    log.setFormatter(CleanFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[log])


def _load_torch() -> None:
    """Import torch (seconds): only the commands that grade or load checks call this, before any tensor op."""
    import torch

    torch.set_num_threads(1)  # reference values must not depend on the host's thread count


@main.command()
@click.argument("assignment")
@root_option
def new(assignment: str, root: Path | None) -> None:
    """Start a homework: write reference/ASSIGNMENT with an example of each file and of the common kinds of check.

    `release ASSIGNMENT` and `grade ASSIGNMENT reference/ASSIGNMENT` accept it at once;
    docs/authoring.md says what to change."""
    from autograder.release.scaffold import ScaffoldError, course_hint, scaffold

    root = find_root(root, "course.toml")
    try:
        written = scaffold(assignment, root)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(path.relative_to(root), err=True)
    hint = course_hint(assignment, root)
    if hint:
        click.echo(hint, err=True)
    click.echo(f"next: replace the example units in reference/{assignment}/, then `autograder release {assignment}` "
               f"and `autograder grade {assignment} reference/{assignment}` (full points on the reference)", err=True)


@main.command()
@click.argument("assignment")
@root_option
@sandbox_option("process")  # runs the reference only
def release(assignment: str, root: Path | None, sandbox: str) -> None:
    """Write assignments/ASSIGNMENT from reference/ASSIGNMENT: stubs, README, public check bundle."""
    from autograder.engine.assignment import AssignmentError
    from autograder.release.release import ReleaseError
    from autograder.release.release import release as do_release

    root = _reference_root(assignment, root)
    _load_torch()
    try:
        written = do_release(assignment, root, _sandbox(sandbox))
    except (ReleaseError, AssignmentError, CourseError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(path.relative_to(root), err=True)


@main.command()
@click.argument("assignment")
@click.argument("directory", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ci", is_flag=True, help="For CI jobs: a Markdown table in $GITHUB_STEP_SUMMARY when set, "
              "failed checks as GitHub annotations, a JUnit file (see --junit).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write the results as JUnit XML here "
              f"(with --ci: {JUNIT_FILE} unless given).")
@checks_option
@root_option
@sandbox_option("process")  # the student's own code on the student's own machine
def check(assignment: str, directory: Path, ci: bool, junit: Path | None, checks: Path | None, root: Path | None, sandbox: str) -> None:
    """Run the public checks of ASSIGNMENT on your files in DIRECTORY (default: here).

    The exit code is 1 while a public check fails, so a CI job fails with it."""
    # Said at once: the sandboxes and the checks' machinery (torch) take seconds to load after it.
    click.echo(clean(f"checking {assignment} in {directory.resolve()} with its public checks (sandbox: {sandbox})",
                     multiline=False), err=True)
    material = _public_checks(assignment, directory, root, checks)
    # Here, not at the top: it imports torch, which waits until the line above is out.
    from autograder.batch.folder import NothingToGrade, not_written, taken

    # The student's text (the log lines of grading, the checks' messages) never runs as a workflow command.
    with ci_report.commands_stopped(os.environ if ci else {}):
        try:
            submission = taken(material, directory, "local")
            result = _run(material, directory, sandbox, "local", submission=submission, visibilities=("public",))
        except NothingToGrade as exc:
            raise click.ClickException(f"nothing to check in {directory}: {exc}") from None
        # The functions still raising NotImplementedError are listed once, as submit lists them.
        stubs = not_written(material, submission)
        terminal.render(result, Console(width=120) if ci else Console(), stubs)
    if ci or junit:
        (junit or Path(JUNIT_FILE)).write_text(junit_report.junit_xml(result), encoding="utf-8")
    if ci:
        ci_report.publish(result, os.environ, _relative(directory), stubs)
    sys.exit(0 if all(c.status == "passed" for c in result.checks) else 1)


def _public_checks(assignment: str, directory: Path, root: Path | None, checks: Path | None = None):
    """The released public checks (engine/assignment.py find_bundle): --checks, in directory (a copy of
    assignments/<hw>), above it, above here, or in the course repository (--root, or the package's own)."""
    from autograder.engine.assignment import AssignmentError, find_bundle, load_bundle

    _load_torch()
    try:
        return load_bundle(assignment, find_bundle(assignment, directory, [root] if root is not None else None, checks))
    except AssignmentError as exc:
        raise click.ClickException(str(exc)) from None


hidden_visibility_option = click.option(
    "--hidden-visibility", type=click.Choice(gradescope.VISIBILITIES), default=gradescope.DEFAULT_HIDDEN_VISIBILITY, show_default=True,
    help="gradescope: when students see the tests of hidden checks (their outcome only, never their inputs).")


def _relative(directory: Path) -> Path:
    """directory as seen from here (a CI job runs at the repository's root)."""
    try:
        return directory.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return directory


@main.command()
@click.argument("assignment")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--student", help="Student id: seeds the hidden checks' inputs. Default: DIRECTORY's name.")
@click.option("--format", "output_format", type=click.Choice(["table", "json", "gradescope", "junit"]), default="table", show_default=True,
              help="table for people; json (our result model); gradescope (its results.json); junit (XML for CI).")
@click.option("--reveal-hidden", is_flag=True, help="Show hidden checks' full messages (instructors only).")
@hidden_visibility_option
@root_option
@sandbox_option("auto")
def grade(assignment, directory, student, output_format, reveal_hidden, hidden_visibility, root, sandbox) -> None:
    """Grade DIRECTORY on every check of ASSIGNMENT, public and hidden."""
    from autograder.batch.folder import NothingToGrade
    from autograder.batch.run import broken_result

    material, course = _material(assignment, _reference_root(assignment, root))
    student = student or directory.resolve().name
    try:
        result = _run(material, directory, sandbox, student, reveal_hidden=reveal_hidden, course=course)
    except NothingToGrade as exc:
        result = broken_result(material, exc.submission, sandbox)
    if output_format == "json":
        click.echo(json.dumps(clean_result(result).to_dict(), indent=2))
    elif output_format == "gradescope":
        click.echo(json.dumps(gradescope.results_json(result, hidden_visibility), indent=2))
    elif output_format == "junit":
        click.echo(junit_report.junit_xml(result))
    else:
        terminal.render(result, Console())


def _run(material, directory: Path, sandbox: str, student: str, **options):
    """Grade, with a progress bar on stderr when a person is watching it."""
    from autograder.batch.folder import grade_folder
    from autograder.protocol.client import WorkerUnavailable

    visible = options.get("visibilities", ("public", "hidden"))
    total = sum(1 for spec in material.checks if spec.visibility in visible)
    with Progress(console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"grading {material.name}", total=total)
        try:
            return grade_folder(
                material, directory, _sandbox(sandbox), student, on_result=lambda _: progress.advance(task), **options
            )
        except WorkerUnavailable as exc:
            raise click.ClickException(str(exc)) from None


def _sandbox(name: str):
    from autograder.sandboxes import SandboxUnavailable, choose

    try:
        sandbox, notes = choose(name)
    except SandboxUnavailable as exc:
        raise click.BadParameter(str(exc), param_hint="--sandbox") from None
    for note in notes:
        click.echo(note, err=True)
    return sandbox


@main.command()
@click.argument("assignment")
@click.argument("directory", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--student", required=True, help="Your student id, as the course knows you.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="The zip to write. Default: STUDENT-ASSIGNMENT.zip here.")
@click.option("--force", is_flag=True, help="Write the zip despite problems; they are recorded in it for the instructor.")
@checks_option
@root_option
@sandbox_option("process")  # the student's own code on the student's own machine
def submit(assignment, directory, student, output, force, checks, root, sandbox) -> None:
    """Check your files in DIRECTORY (default: here) and pack them into a zip to upload.

    Every file of ASSIGNMENT must be there (or in a notebook there, in cells marked `# file: <name>.py`),
    parse, import, keep the signatures
    of the assignment and use no forbidden API; otherwise nothing is written."""
    from autograder.batch.intake import STUDENT_ID
    from autograder.protocol.client import WorkerUnavailable
    from autograder.submission.manifest import build, write_zip
    from autograder.submission.validate import validate

    if not STUDENT_ID.fullmatch(student):
        raise click.BadParameter(f"{student!r} cannot be a student id", param_hint="--student")
    material = _public_checks(assignment, directory, root, checks)
    try:
        checked = validate(material, directory, _sandbox(sandbox))
    except WorkerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    for note in checked.notes:
        click.echo(clean(f"note: {note}"))
    for problem in checked.problems:
        click.echo(clean(f"problem: {problem}"))
    for stub in checked.unwritten:
        click.echo(f"not written yet: {stub}")
    if checked.problems and not force:
        raise click.ClickException(f"{len(checked.problems)} problem(s), so nothing was written: fix them and run submit "
                                   f"again (--force hands the files in as they are, with the problems recorded)")
    output = output or Path(f"{safe_name(student)}-{assignment}.zip")
    manifest = build(student, assignment, checked.files, [str(p) for p in checked.problems])
    try:
        write_zip(output, manifest, checked.files)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    recorded = f", with {len(checked.problems)} problem(s) recorded in it" if checked.problems else ""
    click.echo(f"wrote {output} for {student}, {assignment}, at {manifest['submitted_at']}{recorded}:")
    for name, digest in manifest["files"].items():
        click.echo(f"  {name:<20} sha256 {digest[:12]}")
    click.echo(f"upload {output} as it is to the {assignment} submission form of the course")


# -- a class: batch, gradebook, exports, reports ---------------------------------------------------

db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_GRADEBOOK,
                         show_default=True, help="The SQLite gradebook.")


@main.command()
@click.argument("assignment")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@db_option
@click.option("--workers", type=click.IntRange(1, 256), default=os.cpu_count() or 1, show_default="the number of cores",
              help="Submissions graded at once.")
@click.option("--force", is_flag=True, help="Regrade submissions the gradebook already holds unchanged.")
@click.option("--all", "show_all", is_flag=True,
              help=f"List every student's score (a class over {ALL_SCORES_UP_TO}: the lowest and highest {SCORES_SHOWN} unless given).")
@click.option("--cluster", metavar="ADDRESS",
              help="Grade on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786), its workers started with "
                   "`autograder worker ADDRESS`; `local`: on this host. [default: $AUTOGRADER_CLUSTER, else course.toml's "
                   "[grading] cluster, else this host]")
@root_option
@sandbox_option("auto")
def batch(assignment, source, db, workers, force, show_all, cluster, root, sandbox) -> None:
    """Grade every submission in SOURCE into the gradebook.

    SOURCE is a folder with one folder (or zip) per student, named by student id;
    a zip of such folders (an LMS bulk download); or nbgrader's submitted/ layout.
    A rerun grades only what changed; it resumes an interrupted batch. A submission
    whose grader dies twice is recorded as not graded (a rerun skips it, --force
    tries again); the command then ends non-zero, naming who was not graded.
    With --cluster, each worker grades in its own host's SANDBOX (auto: its strongest)."""
    from autograder.batch.cluster import CLUSTER_ENVIRONMENT
    from autograder.batch.run import NOT_GRADED

    root = _reference_root(assignment, root)
    material, course = _material(assignment, root)
    address = cluster or os.environ.get(CLUSTER_ENVIRONMENT, "").strip() or course.cluster
    outcomes = _batch(material, course, source, db, workers, force, sandbox, Console(stderr=True), show_all,
                      "" if address == "local" else address)
    not_graded = [o.student for o in outcomes if o.action in NOT_GRADED]
    if not_graded:  # student ids come from upload names: cleaned
        raise click.ClickException(clean(f"not graded (see above): {', '.join(not_graded)}", multiline=False))


def _batch(material, course, source: Path, db: Path, workers: int, force: bool, sandbox: str, console: Console,
           show_all: bool = False, cluster: str = ""):
    from autograder.batch.cluster import ClusterUnavailable, run_cluster_batch
    from autograder.batch.intake import IntakeError, discover
    from autograder.batch.run import run_batch

    try:
        others = tuple(c.source for c in course.components if not c.imported and c.source != material.name)
        submissions, warnings = discover(source, material.name, material.modules, others)
    except (IntakeError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        console.print(clean(f"note: {warning}"), markup=False, emoji=False)  # names of the uploads' entries
    if not submissions:
        raise click.ClickException(f"no submissions in {source}: expected one folder or zip per student, named by student id")
    if course.components and course.component_of(material.name) is None:
        console.print(f"note: no component of course.toml has source {material.name!r}: its scores count in no final grade", markup=False)
    chosen = None if cluster else _sandbox(sandbox)  # on a cluster, each worker chooses on its own host
    with _gradebook(db) as gradebook:
        with BatchProgress(console, material.name) as progress:
            callbacks = dict(force=force, on_start=progress.on_start, on_outcome=progress.on_outcome, on_busy=progress.on_busy)
            try:
                if cluster:
                    console.print(f"grading on the Dask cluster at {cluster}", markup=False)
                    outcomes = run_cluster_batch(material, submissions, gradebook, address=cluster, sandbox=sandbox,
                                                 course=course, on_note=progress.note, **callbacks)
                else:
                    outcomes = run_batch(material, submissions, gradebook, sandbox=chosen, course=course, workers=workers,
                                         **callbacks)
            except KeyboardInterrupt:
                raise click.ClickException("interrupted: every result shown so far is saved; run the same command again to go on") from None
            except ClusterUnavailable as exc:
                raise click.ClickException(str(exc)) from None
        scores = {stored.result.student: stored.result.score for stored in gradebook.submissions(material.name)}
        batch_terminal.summary(console, material.name, outcomes, scores, material.max_score,
                               gradebook.failures_by_check(material.name), show_all)
    console.print(f"gradebook: {db}", markup=False)
    return outcomes


@main.command()
@click.argument("scheduler", metavar="ADDRESS")
@click.option("--slots", type=click.IntRange(1, 1024), default=os.cpu_count() or 1, show_default="the number of cores",
              help="Submissions graded at once on this host, each by a Dask worker of one thread (one per core keeps timed checks fair).")
@click.option("--gpus", type=click.IntRange(0, 64), default=None, show_default="the CUDA devices torch sees",
              help="Slots that each get one CUDA device and the GPU resource that tasks with CUDA checks ask for.")
@click.option("--memory", "memory_gib", type=click.FloatRange(0.5, 4096), default=4.0, show_default=True,
              help="GiB a slot's grader may use before its nanny restarts it (student code has the sandbox's own limits).")
@click.option("--name", default=None, help="What the batch's summary calls this host's slots  [default: the host name]")
def worker(scheduler, slots, gpus, memory_gib, name) -> None:
    """Grade for the Dask scheduler at ADDRESS (`autograder batch --cluster ADDRESS`) until stopped.

    Each slot grades as a local batch's grader does, in this host's sandbox (the batch's --sandbox; auto: the
    strongest here), torch imported once per slot. The checks and reference come from the batch with each
    class. Stop with Ctrl-C or SIGTERM; the scheduler gives the submissions it held to other workers."""
    import socket

    from autograder.batch.cluster_worker import serve

    import torch

    devices = torch.cuda.device_count()
    gpus = devices if gpus is None else gpus
    if gpus > devices:
        click.echo(f"warning: torch sees {devices} CUDA device(s) here: the GPU slots beyond them refuse each task that "
                   f"needs a GPU, saying so (nothing is recorded for it)", err=True)
    if gpus > slots:
        raise click.BadParameter(f"{gpus} GPU slots but {slots} slots in all: give --slots at least {gpus}", param_hint="--gpus")
    click.echo(f"grading for {scheduler}: {slots} slots, {gpus} with a GPU", err=True)
    serve(scheduler, slots, gpus, int(memory_gib * (1 << 30)), name or socket.gethostname())


@main.command(name="import")
@click.argument("component")
@click.argument("csv_file", metavar="CSV", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@root_option
def import_points(component, csv_file, db, root) -> None:
    """Import COMPONENT's points (e.g. the exam) from a CSV with columns student,points."""
    course = _course(find_root(root, "course.toml"))
    try:
        points = read_points(csv_file, course.component(component))
    except (CourseError, PointsFileError) as exc:
        raise click.ClickException(str(exc)) from None
    with _gradebook(db) as gradebook:
        gradebook.import_points(component, points, csv_file.name)
    click.echo(f"imported {component} points of {len(points)} student(s) into {db}", err=True)


@main.command()
@db_option
@click.option("--format", "output_format", type=click.Choice(["csv", "gradescope", "junit", "nbgrader"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="csv: the file to write ('-' for standard output); gradescope and junit: a folder; "
                   "nbgrader: the course's gradebook.db (created when absent).")
@click.option("--assignment", help="gradescope, junit and nbgrader: only this assignment (default: all in the gradebook).")
@root_option
def export(db, output_format, output, assignment, root) -> None:
    """Export the gradebook: the class CSV (final grades), a result file per student, or the scores per check into nbgrader."""
    with _gradebook(db, must_exist=True) as gradebook:
        if output_format == "csv":
            course_root = find_root(root, "course.toml")
            course = _course(course_root)
            text = class_csv(course, gradebook.class_grades(course, unassigned(course, course_root)))
            if str(output) == "-":
                click.echo(text, nl=False)
            else:
                output.write_text(text, encoding="utf-8")
                click.echo(f"wrote {output}", err=True)
            return
        stored = gradebook.submissions(assignment)
    if output_format == "nbgrader":
        try:
            counts = export_to_nbgrader(stored, output)
        except NbgraderExportError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {counts.submissions} submission(s) of {counts.assignments} assignment(s) into {output}", err=True)
        if counts.manual:
            click.echo(f"note: {counts.manual} grade(s) keep the manual score a grader gave in the formgrader", err=True)
        return
    for entry in stored:
        result = entry.result
        folder = output / result.assignment
        folder.mkdir(parents=True, exist_ok=True)
        if output_format == "gradescope":
            (folder / safe_name(result.student)).mkdir(exist_ok=True)
            (folder / safe_name(result.student) / "results.json").write_text(json.dumps(gradescope.results_json(result), indent=2))
        else:
            (folder / f"{safe_name(result.student)}.xml").write_text(junit_report.junit_xml(result), encoding="utf-8")
    click.echo(f"wrote {len(stored)} result(s) under {output}", err=True)


@main.command()
@db_option
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True)
@root_option
def report(db, output, root) -> None:
    """Write the class report (class.html) and each student's feedback (feedback/STUDENT.md and .html)."""
    course_root = find_root(root, "course.toml")
    course = _course(course_root)
    with _gradebook(db, must_exist=True) as gradebook:
        written = _reports(course, gradebook, output, course_root)
    click.echo(f"wrote {written} (open it in a browser) and the feedback of each student in {output / 'feedback'}", err=True)


def _reports(course, gradebook, output: Path, root: Path) -> Path:
    from autograder.reports import class_report  # matplotlib: loaded only to draw

    grades = gradebook.class_grades(course, unassigned(course, root))
    by_component: dict[str, list] = {}
    by_student: dict[str, dict] = {}
    for component in course.components:
        if not component.imported:
            by_component[component.id] = [stored.result for stored in gradebook.submissions(component.source)]
            for result in by_component[component.id]:
                by_student.setdefault(result.student, {})[component.id] = result
    feedback_dir = output / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    links = {}
    for standing in grades:
        own = by_student.get(standing.student, {})
        name = safe_name(standing.student)
        (feedback_dir / f"{name}.md").write_text(feedback.markdown(course, standing, own), encoding="utf-8")
        (feedback_dir / f"{name}.html").write_text(feedback.html(course, standing, own), encoding="utf-8")
        links[standing.student] = f"{feedback_dir.name}/{name}.html"
    page = output / "class.html"
    page.write_text(class_report.class_html(course, grades, by_component, links), encoding="utf-8")
    return page


def safe_name(student: str) -> str:
    """A file name for a student id (ids come from folder names, but also from CSVs)."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in student).lstrip(".")
    return cleaned or "_"


def _material(assignment: str, root: Path):
    from autograder.engine.assignment import AssignmentError, load_reference

    _load_torch()
    try:
        return load_reference(assignment, root / "reference" / assignment), load_course(root)
    except (AssignmentError, CourseError) as exc:
        raise click.ClickException(str(exc)) from None


def _course(root: Path):
    try:
        course = load_course(root)
    except CourseError as exc:
        raise click.ClickException(str(exc)) from None
    if not course.components:
        raise click.ClickException(f"{root / 'course.toml'} lists no [[components]]; see autograder/engine/course.py")
    return course


def _gradebook(db: Path, must_exist: bool = False) -> Gradebook:
    if must_exist and not db.is_file():
        raise click.ClickException(f"no gradebook at {db}; grade with `autograder batch` first, or pass --db")
    try:
        return Gradebook(db)
    except GradebookError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Where to build the class and write everything (default: a new temporary folder).")
@click.option("--workers", type=click.IntRange(1, 256), default=os.cpu_count() or 1, show_default="the number of cores")
@sandbox_option("auto")
def demo(output, workers, sandbox) -> None:
    """Grade the example class end to end: every homework, the exam, the gradebook, the reports.

    The class is examples/class (a few students, each wrong in their own way)
    plus two more: `reference` hands in the reference solution, `stubs` the
    released stubs untouched. Exam points come from examples/exam.csv."""
    from autograder.batch.run import NOT_GRADED

    root = find_root(None, "examples", "class")
    course = _course(root)
    work = output or Path(tempfile.mkdtemp(prefix="autograder-demo-"))
    db = work / "gradebook.sqlite"
    console = Console(stderr=True)
    not_graded = []
    for component in course.components:
        if component.imported or not (root / "reference" / component.source).is_dir():
            continue
        material, _ = _material(component.source, root)
        console.rule(f"{component.id}: {component.title}")
        submissions = _demo_class(root, material, work / "submissions" / material.name)
        outcomes = _batch(material, course, submissions, db, workers, False, sandbox, console)
        not_graded += [f"{material.name}/{o.student}" for o in outcomes if o.action in NOT_GRADED]
    with _gradebook(db) as gradebook:
        for component in course.components:
            if component.imported and (root / "examples" / f"{component.id}.csv").is_file():
                gradebook.import_points(component.id, read_points(root / "examples" / f"{component.id}.csv", component), f"{component.id}.csv")
        grades = gradebook.class_grades(course, unassigned(course, root))
        (work / "grades.csv").write_text(class_csv(course, grades), encoding="utf-8")
        page = _reports(course, gradebook, work / "reports", root)
    terminal.render_gradebook(course, grades, Console())
    click.echo(f"\ngradebook: {db}\nfinal grades (CSV): {work / 'grades.csv'}\nclass report: {page}\n"
               f"feedback per student: {work / 'reports' / 'feedback'}")
    if not_graded:
        raise click.ClickException(f"not graded (see above): {', '.join(not_graded)}")


def _demo_class(root: Path, material, folder: Path) -> Path:
    """folder/<student>/ for each example student with this homework, plus the reference and the stubs."""
    shutil.rmtree(folder, ignore_errors=True)
    for student_dir in sorted((root / "examples" / "class").iterdir()):
        if (student_dir / material.name).is_dir():
            shutil.copytree(student_dir / material.name, folder / student_dir.name)
    for student, source in (("reference", root / "reference"), ("stubs", root / "assignments")):
        (folder / student).mkdir(parents=True)
        for module in material.modules:
            shutil.copy(source / material.name / f"{module}.py", folder / student)
    return folder


@main.command(name="gradescope")
@click.argument("assignment")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("autograder.zip"), show_default=True)
@hidden_visibility_option
@root_option
def gradescope_package(assignment, output, hidden_visibility, root) -> None:
    """Write the zip to upload as ASSIGNMENT's autograder on Gradescope.

    It holds the reference solutions and the hidden checks: give it to Gradescope, never to students.
    autograder/release/gradescope_package.py describes what is inside."""
    from autograder.release.gradescope_package import PackageError, build

    root = _reference_root(assignment, root)
    material, _ = _material(assignment, root)
    try:
        written = build(material, root, output, hidden_visibility)
    except PackageError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {written}: upload it on the assignment's Configure Autograder page", err=True)


@main.command(name="build-image")
@click.option("--image", help="The image's name  [default: $AUTOGRADER_IMAGE, else autograder-worker:latest]")
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE",
              help="Passed on to docker build: BASE and TORCH_INDEX for CUDA (docker/Dockerfile).")
@click.option("--force", is_flag=True, help="Build even when an image of that name is current.")
def build_image(image, build_args, force) -> None:
    """Build the docker sandbox's grading image from this checkout, labelled with a hash of its worker's
    modules: `--sandbox docker` and `auto` refuse an image whose label differs. An image already built
    from the same files, arguments and base is kept; where no registry answers, the base is made with
    debootstrap (docker/debian-base.sh)."""
    from autograder.sandboxes.docker import default_image
    from autograder.sandboxes.image import BuildError, build

    try:
        build(image or default_image(), build_args, force=force, say=lambda line: click.echo(line, err=True))
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
