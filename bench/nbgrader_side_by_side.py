"""Side by side: our `autograder batch` and nbgrader's `autograde` on the same hw1 class.

    .venv/bin/python bench/nbgrader_side_by_side.py [--students 24] [--rounds 3] [--workers 2] [--sandbox namespace]
                                                    [--keep FOLDER]

1. Builds the hw1 grading job in nbgrader, with its real package (the `nbgrader`
   extra): a course folder (nbgrader_config.py, source/, release/, submitted/,
   autograded/, gradebook.db) whose hw1.ipynb holds one solution cell per file
   (`# file: neurons.py` first, the reference's code with its BEGIN/END SOLUTION
   regions) and one test cell per check of ours, worth the same points (15 in
   all), hidden checks inside BEGIN/END HIDDEN TESTS. Each test cell runs
   our check of that id in the kernel (bench/nbgrader/hw1_tests.py says how):
   the same inputs, comparisons against torch and the reference, finite
   differences and optimizer steps. `nbgrader generate_assignment` releases it.
2. Generates a class of --students submissions: the reference, then single-bug
   variants (tests/hw1_variants.py), one per student, cycled, with the correct
   solution again every len(variants)+1 students; the same code as files (for
   our batch) and as notebooks (the released notebook with the student's code in
   its solution cells, nbgrader's submitted/<student>/hw1/).
3. Runs both --rounds times, interleaved (ours first in odd rounds, nbgrader
   first in even ones), each into a fresh gradebook: `autograder batch hw1
   --workers W --sandbox S` and `nbgrader autograde hw1` (serial: nbgrader has
   no parallel autograde). Wall time of each whole command (start, imports,
   gradebook writes included) and its CPU time, children included (the
   RUSAGE_CHILDREN delta around it: every grader, worker, kernel it waited for).
4. Checks that both take the points each bug should cost, in every round: the
   correct solution full marks in both, each variant points lost in both, on the
   same checks (only checks of its broken unit, at least the ones it must lose).
   A mismatch is printed loudly and the script ends non-zero.
5. Prints per round and over the rounds: submissions, wall and CPU seconds,
   submissions per minute, CPU seconds per submission, and the nbgrader/ours
   ratios of wall and CPU time (median, min-max over rounds).

Both graders get the same course secret ($AUTOGRADER_SECRET), so each hidden
check draws the same inputs for a student in both.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hw1_variants import VARIANTS  # noqa: E402
from variants import Variant, apply, unit_of  # noqa: E402

from autograder.engine.assignment import load_reference  # noqa: E402
from autograder.gradebook.store import Gradebook  # noqa: E402

REFERENCE = ROOT / "reference" / "hw1"
HELPER = Path(__file__).resolve().parent / "nbgrader" / "hw1_tests.py"
BIN = Path(sys.executable).parent  # the venv's autograder and nbgrader commands
SECRET = "side-by-side-bench-secret"  # both graders draw hidden inputs from it
NOTEBOOK = "hw1"
POINTS_TOLERANCE = 1e-9  # two totals of the same checks' points agree within float rounding
OUTPUT_SHOWN = 3000  # characters of a failed command's output printed
CPU_ACCOUNTING = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1's CPU accounting hierarchy, where there is one


@dataclass
class Run:
    wall: float
    cpu: float  # seconds, the command and everything it started
    waited: float  # seconds, the command and the children it waited for (RUSAGE_CHILDREN)
    cpu_source: str  # how cpu was measured


@dataclass
class Student:
    id: str
    variant: Variant | None  # None: the correct solution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=24, help="submissions in the class (the issue's figure: >= 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="our batch's --workers")
    parser.add_argument("--sandbox", default="namespace", help="our batch's --sandbox")
    parser.add_argument("--keep", type=Path, help="build the course and class here and keep them (default: a temporary folder)")
    options = parser.parse_args()
    if not (BIN / "nbgrader").is_file():
        raise SystemExit(f"nbgrader is not installed in {BIN.parent}: {BIN / 'pip'} install -e '.[nbgrader]'")

    assignment = load_reference("hw1", REFERENCE)
    with tempfile.TemporaryDirectory(prefix="bench-nbgrader-") as temporary:
        work = options.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        students = make_class(options.students)
        course = build_course(work / "course", assignment)
        files = work / "files"
        for student in students:
            sources = write_files(student, files / student.id, assignment.modules)
            write_notebook(student.id, sources, course)
        print(f"class: {len(students)} hw1 submissions ({sum(s.variant is None for s in students)} correct, the others a "
              f"single bug each), {len(assignment.checks)} checks, {assignment.max_score:g} points; built in "
              f"{time.monotonic() - started:.0f} s in {work}")
        print(f"ours: autograder batch --workers {options.workers} --sandbox {options.sandbox}; "
              f"nbgrader {nbgrader_version()}: nbgrader autograde (serial), {len(assignment.checks)} test cells")

        ours_runs, nbgrader_runs, mismatches = [], [], 0
        for number in range(1, options.rounds + 1):
            load = os.getloadavg()[0]
            order = ("ours", "nbgrader") if number % 2 else ("nbgrader", "ours")
            runs, verdicts = {}, {}
            for grader in order:
                if grader == "ours":
                    runs[grader], verdicts[grader] = run_ours(files, work / f"ours-round{number}.sqlite", options)
                else:
                    runs[grader], verdicts[grader] = run_nbgrader(course)
            ours_runs.append(runs["ours"])
            nbgrader_runs.append(runs["nbgrader"])
            print(f"\nround {number} (load average {load:.1f} before it; {order[0]} first)")
            for grader in ("ours", "nbgrader"):
                print(f"  {grader:9s}{describe(runs[grader], len(students))}")
            print(f"  nbgrader/ours: wall {runs['nbgrader'].wall / runs['ours'].wall:.2f}x, "
                  f"CPU {runs['nbgrader'].cpu / runs['ours'].cpu:.2f}x")
            mismatches += compare(students, assignment, verdicts["ours"], verdicts["nbgrader"], show_table=number == 1)

        summarize(ours_runs, nbgrader_runs, len(students))
        if mismatches:
            raise SystemExit(f"\n!!! {mismatches} MISMATCHES between the graders or against the bugs' expected costs (above) !!!")


# --- the class --------------------------------------------------------------


def make_class(count: int) -> list[Student]:
    """The correct solution, then the variants one per student, taken from each file in turn so that a
    small class has bugs of every file; the correct solution again after every pass over them."""
    by_file: dict[str, list[Variant]] = {}
    for variant in VARIANTS:
        by_file.setdefault(variant.file, []).append(variant)
    interleaved = []
    while any(by_file.values()):
        for queue in by_file.values():
            if queue:
                interleaved.append(queue.pop(0))
    cycle = [None, *interleaved]
    return [Student(f"s{i:03d}", cycle[i % len(cycle)]) for i in range(count)]


def write_files(student: Student, folder: Path, modules: list[str]) -> dict[str, str]:
    """The student's files (the reference's, with the student's bug if any) in folder; file name -> code."""
    folder.mkdir(parents=True)
    for module in modules:
        shutil.copyfile(REFERENCE / f"{module}.py", folder / f"{module}.py")
    if student.variant is not None:
        apply(student.variant, folder)
    return {f"{module}.py": (folder / f"{module}.py").read_text() for module in modules}


# --- the nbgrader course ------------------------------------------------------


def grade_id(check_id: str) -> str:
    return check_id.replace(".", "-")  # nbgrader's grade ids: letters, digits, - and _


def build_course(course: Path, assignment) -> Path:
    """An nbgrader course with hw1 generated (released) and a pristine gradebook kept aside."""
    grading = course / "grading"
    (grading / "reference").mkdir(parents=True)
    shutil.copytree(REFERENCE, grading / "reference" / "hw1", ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    shutil.copyfile(HELPER, grading / HELPER.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'side-by-side'\n"
    )
    source = course / "source" / "hw1"
    source.mkdir(parents=True)
    nbformat.write(source_notebook(assignment), source / f"{NOTEBOOK}.ipynb")
    nbgrader(course, "generate_assignment", "hw1", "--force")
    shutil.copyfile(course / "gradebook.db", course / "gradebook.pristine.db")
    return course


def source_notebook(assignment) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell(
        "# hw1: neurons, activations, backprop, optimizers\n\n"
        "Write each file's code in its cell (the `# file:` line first); the test cells grade it.")]
    for module in assignment.modules:
        code = f"# file: {module}.py\n{(REFERENCE / f'{module}.py').read_text()}"
        cell = nbformat.v4.new_code_cell(code)
        cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "task": False,
                                     "grade_id": f"file-{module}", "schema_version": 3}
        cells.append(cell)
    for spec in assignment.checks:
        call = f"from hw1_tests import run_check\nrun_check({spec.id!r}, globals())"
        if spec.visibility == "hidden":
            call = f"### BEGIN HIDDEN TESTS\n{call}\n### END HIDDEN TESTS"
        cell = nbformat.v4.new_code_cell(f"# {spec.id} ({spec.visibility}, {spec.points:g} points)\n{call}")
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "task": False,
                                     "grade_id": grade_id(spec.id), "points": spec.points, "schema_version": 3}
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})


def write_notebook(student: str, sources: dict[str, str], course: Path) -> None:
    """The released notebook with the student's code in its solution cells, as nbgrader's submitted/ holds it."""
    notebook = nbformat.read(course / "release" / "hw1" / f"{NOTEBOOK}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            name = cell.metadata["nbgrader"]["grade_id"].removeprefix("file-") + ".py"
            cell.source = f"# file: {name}\n{sources[name]}"
    folder = course / "submitted" / student / "hw1"
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{NOTEBOOK}.ipynb")


def failed(command: list[str], run: subprocess.CompletedProcess) -> SystemExit:
    return SystemExit(f"{' '.join(command)} failed with exit {run.returncode}:\n"
                      f"{run.stdout[-OUTPUT_SHOWN:]}\n{run.stderr[-OUTPUT_SHOWN:]}")


def nbgrader_version() -> str:
    import nbgrader as package

    return package.__version__


def nbgrader_environment(course: Path) -> dict[str, str]:
    # nbgrader runs `alembic` from PATH on every gradebook it opens: the venv's
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "PYTHONPATH": str(course / "grading"), "AUTOGRADER_SECRET": SECRET}


def nbgrader(course: Path, *arguments: str) -> None:
    command = [str(BIN / "nbgrader"), *arguments]
    run = subprocess.run(command, cwd=course, env=nbgrader_environment(course), capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise failed(command, run)


# --- the runs -----------------------------------------------------------------


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run command to its end: its wall time and the CPU time of it and all it started.

    The CPU time is read from a cgroup v1 CPU-accounting group made for the command
    (every process it starts stays in it or in groups below it, wherever it is
    reparented). Where none can be made, from the children the command waited for
    (RUSAGE_CHILDREN), which misses processes nobody waits for: once two thirds of
    a batch's CPU time under our namespace sandbox (13 s of 41 s), before its graders
    stopped their templates. Both are printed.
    """
    group = CPU_ACCOUNTING / f"bench-side-by-side-{os.getpid()}"
    try:
        group.mkdir()
    except OSError:
        group = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        enter = (lambda: (group / "cgroup.procs").write_text("0")) if group else None
        run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=enter, check=False)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9 if group else None
    finally:
        if group:
            remove_group(group)
    if run.returncode != 0:
        raise failed(command, run)
    return Run(wall, cpu if cpu is not None else waited, waited, "cgroup" if cpu is not None else "waited-for children")


def remove_group(group: Path) -> None:
    """Remove a cgroup and the empty groups left below it (the command's processes are all gone)."""
    try:
        for child in sorted((path for path in group.rglob("*") if path.is_dir()), key=lambda path: len(path.parts), reverse=True):
            child.rmdir()
        group.rmdir()
    except OSError as exc:  # a process of the command still runs in it
        print(f"warning: could not remove the accounting cgroup {group}: {exc}", file=sys.stderr)


def run_ours(files: Path, db: Path, options) -> tuple[Run, dict[str, dict[str, float]]]:
    """One batch into a fresh gradebook; student -> check id -> score."""
    db.unlink(missing_ok=True)
    command = [str(BIN / "autograder"), "batch", "hw1", str(files), "--db", str(db),
               "--workers", str(options.workers), "--sandbox", options.sandbox, "--root", str(ROOT)]
    run = timed(command, ROOT, {**os.environ, "AUTOGRADER_SECRET": SECRET})
    with Gradebook(db) as gradebook:
        verdicts = {stored.result.student: {check.id: check.score for check in stored.result.checks}
                    for stored in gradebook.submissions("hw1")}
    return run, verdicts


def run_nbgrader(course: Path) -> tuple[Run, dict[str, dict[str, float]]]:
    """One `nbgrader autograde hw1` of every submission into a fresh gradebook; student -> check id -> score."""
    shutil.rmtree(course / "autograded", ignore_errors=True)
    shutil.copyfile(course / "gradebook.pristine.db", course / "gradebook.db")
    run = timed([str(BIN / "nbgrader"), "autograde", "hw1"], course, nbgrader_environment(course))
    from nbgrader.api import Gradebook as NbgraderGradebook

    os.environ["PATH"] = nbgrader_environment(course)["PATH"]  # opening it here runs alembic too
    verdicts = {}
    with NbgraderGradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions("hw1"):
            verdicts[submission.student.id] = {grade.name.replace("-", "."): grade.score
                                               for notebook in submission.notebooks for grade in notebook.grades}
    return run, verdicts


def describe(run: Run, submissions: int) -> str:
    return (f"{submissions} submissions  wall {run.wall:7.1f} s  CPU {run.cpu:7.1f} s  "
            f"{submissions / run.wall * 60:6.1f} submissions/min  {run.cpu / submissions:5.2f} CPU s/submission  "
            f"(CPU from the {run.cpu_source}; waited-for children alone {run.waited:.1f} s)")


# --- do both take the points each bug should cost? ----------------------------


def compare(students: list[Student], assignment, ours: dict, theirs: dict, show_table: bool) -> int:
    """Print each submission's verdicts (show_table) and every mismatch; the number of mismatches."""
    points = {spec.id: spec.points for spec in assignment.checks}
    mismatches = 0
    if show_table:
        print(f"  {'student':8s} {'bug':46s} {'ours':>6s} {'nbgr.':>6s}  checks losing points")
    for student in students:
        name = student.variant.name if student.variant else "(correct)"
        problems = []
        lost = {}
        for grader, verdicts in (("ours", ours), ("nbgrader", theirs)):
            scores = verdicts.get(student.id)
            if scores is None:
                problems.append(f"{grader} has no result")
                continue
            if set(scores) != set(points):
                problems.append(f"{grader} graded other checks: missing {sorted(set(points) - set(scores))[:3]}, "
                                f"extra {sorted(set(scores) - set(points))[:3]}")
            lost[grader] = {check for check, score in scores.items() if score < points.get(check, 0) - POINTS_TOLERANCE}
            problems += expected_cost_problems(student, grader, lost[grader])
        if len(lost) == 2 and lost["ours"] != lost["nbgrader"]:
            problems.append(f"different checks lose points: only ours {sorted(lost['ours'] - lost['nbgrader'])}, "
                            f"only nbgrader {sorted(lost['nbgrader'] - lost['ours'])}")
        totals = {grader: sum(verdicts.get(student.id, {}).values()) for grader, verdicts in (("ours", ours), ("nbgrader", theirs))}
        if show_table:
            shown = sorted(lost.get("ours", set()) | lost.get("nbgrader", set()))
            print(f"  {student.id:8s} {name:46s} {totals['ours']:6.3f} {totals['nbgrader']:6.3f}  "
                  f"{', '.join(shown[:4])}{f' (+{len(shown) - 4} more)' if len(shown) > 4 else ''}")
        for problem in problems:
            mismatches += 1
            print(f"  !!! MISMATCH {student.id} {name}: {problem}")
    if not mismatches:
        print(f"  verdicts agree: all {len(students)} submissions lose points on the same checks in both, as their bugs should")
    return mismatches


def expected_cost_problems(student: Student, grader: str, lost: set[str]) -> list[str]:
    variant = student.variant
    if variant is None:
        return [f"{grader} took points from the correct solution: {sorted(lost)}"] if lost else []
    problems = []
    if not lost:
        problems.append(f"{grader} took no points for the bug ({variant.why})")
    outside = sorted(check for check in lost if unit_of(check) not in variant.broken)
    if outside:
        problems.append(f"{grader} took points outside the broken unit {sorted(variant.broken)}: {outside}")
    kept = sorted(variant.loses - lost)
    if kept:
        problems.append(f"{grader} left points the bug must cost: {kept}")
    return problems


# --- the figures ----------------------------------------------------------------


def summarize(ours: list[Run], nbgrader_runs: list[Run], submissions: int) -> None:
    print(f"\nover {len(ours)} rounds, median (min-max):")
    for grader, runs in (("ours", ours), ("nbgrader", nbgrader_runs)):
        print(f"  {grader:9s}{submissions} submissions  wall {spread([run.wall for run in runs], ' s')}  "
              f"CPU {spread([run.cpu for run in runs], ' s')}  "
              f"{spread([submissions / run.wall * 60 for run in runs], ' submissions/min')}  "
              f"{spread([run.cpu / submissions for run in runs], ' CPU s/submission', 2)}")
    print(f"  nbgrader/ours: wall {spread([n.wall / o.wall for o, n in zip(ours, nbgrader_runs)], 'x', 2)}, "
          f"CPU {spread([n.cpu / o.cpu for o, n in zip(ours, nbgrader_runs)], 'x', 2)}")
    per_submission = statistics.median((o.wall + n.wall) / submissions for o, n in zip(ours, nbgrader_runs))
    print(f"  a round of both took {per_submission:.1f} s of wall time per submission here: "
          f"--students 100 would take about {per_submission * 100 / 60:.0f} min per round, plus the set-up")


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


if __name__ == "__main__":
    main()
