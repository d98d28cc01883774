"""Batch throughput and export time.

    .venv/bin/python bench/batch.py [--students 40] [--workers 1 2] [--sandbox auto] [--export-students 3000]

1. Grades a class of --students hw1 submissions (the example class, the
   reference and the stubs, cycled under new student ids) with `autograder
   batch` into a fresh gradebook, once per --workers value, and prints
   submissions per minute (wall time of the whole command, torch import included)
   and CPU seconds per submission (every process of the command).
2. Fills a gradebook with --export-students synthetic students (an hw1 result
   of every check, an hw2 result, exam points) and times the CSV export of
   final grades and the Gradescope export.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.engine.assignment import load_reference  # noqa: E402
from autograder.engine.course import load_course  # noqa: E402
from autograder.engine.results import CheckResult, SubmissionResult  # noqa: E402
from autograder.gradebook.store import Gradebook  # noqa: E402


def make_class(folder: Path, students: int) -> Path:
    modules = ["neurons", "activations", "backprop", "optimizers"]
    sources = [ROOT / "reference" / "hw1", ROOT / "assignments" / "hw1"]
    sources += sorted(p / "hw1" for p in (ROOT / "examples" / "class").iterdir() if (p / "hw1").is_dir())
    for i in range(students):
        source = sources[i % len(sources)]
        target = folder / f"student{i:03d}"
        target.mkdir(parents=True)
        for module in modules:
            if (source / f"{module}.py").is_file():
                shutil.copy(source / f"{module}.py", target)
    return folder


def throughput(students: int, workers_list: list[int], sandbox: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        source = make_class(Path(tmp) / "class", students)
        for workers in workers_list:
            db = Path(tmp) / f"gradebook-{workers}.sqlite"
            started, cpu_before = time.monotonic(), children_cpu()
            run = subprocess.run(
                [sys.executable, "-m", "autograder", "batch", "hw1", str(source), "--db", str(db),
                 "--workers", str(workers), "--sandbox", sandbox],
                cwd=ROOT, capture_output=True, text=True,
            )
            wall, cpu = time.monotonic() - started, children_cpu() - cpu_before
            if run.returncode != 0:
                print(run.stderr[-3000:])
                raise SystemExit(f"batch failed with exit {run.returncode}")
            chosen = next((line for line in run.stderr.splitlines() if line.startswith("sandbox:")), f"sandbox: {sandbox}")
            print(f"batch hw1, {students} submissions, --workers {workers} ({chosen}): "
                  f"{wall:.1f} s wall, {students / wall * 60:.1f} submissions per minute, "
                  f"{cpu / students:.2f} CPU s per submission (every process, the command's start included)")


def children_cpu() -> float:
    """CPU seconds used by our ended children and all they waited for (the batch, its graders,
    the workers; a jail's processes too: each waits for its children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def export_time(students: int) -> None:
    hw1 = load_reference("hw1", ROOT / "reference" / "hw1")
    hw2 = load_reference("hw2", ROOT / "reference" / "hw2")
    course = load_course(ROOT)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        db = Path(tmp) / "gradebook.sqlite"
        started = time.monotonic()
        with Gradebook(db) as gradebook:
            for i in range(students):
                student = f"student{i:04d}"
                for assignment in (hw1, hw2):
                    checks = []
                    for spec in assignment.checks:
                        passed = rng.random() < 0.8
                        message = "" if passed else f"{spec.id}: wrong values in 3 of 12 elements (synthetic)"
                        checks.append(CheckResult(spec.id, spec.points if passed else 0.0, spec.points,
                                                  "passed" if passed else "failed", message, spec.visibility))
                    gradebook.record(SubmissionResult(assignment.name, student, checks, "bench"), f"h{i}", "v", 1.0)
            gradebook.import_points("exam", {f"student{i:04d}": Decimal(rng.randrange(0, 401)) / 10 for i in range(students)}, "bench")
        print(f"filled a gradebook with {students} students x (hw1 {len(hw1.checks)} checks + hw2 {len(hw2.checks)} checks) "
              f"+ exam in {time.monotonic() - started:.1f} s ({db.stat().st_size / 2**20:.1f} MiB)")
        for label, args in (("CSV of final grades", ["export", "--db", str(db), "-o", str(Path(tmp) / "grades.csv")]),
                            ("Gradescope results.json per submission", ["export", "--db", str(db), "--format", "gradescope", "-o", str(Path(tmp) / "gs")])):
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, check=True, capture_output=True)
            print(f"export {label}, {students} students: {time.monotonic() - started:.2f} s wall (the command, torch import included)")
        from autograder.reports.export_csv import class_csv

        started = time.monotonic()
        with Gradebook(db) as gradebook:
            text = class_csv(course, gradebook.class_grades(course))
        print(f"  of which reading the gradebook and writing the CSV in-process: {time.monotonic() - started:.2f} s "
              f"({len(text.splitlines()) - 1} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--export-students", type=int, default=3000)
    parser.add_argument("--skip-batch", action="store_true", help="only the export timing")
    options = parser.parse_args()
    if not options.skip_batch:
        throughput(options.students, options.workers, options.sandbox)
    export_time(options.export_students)


if __name__ == "__main__":
    main()
