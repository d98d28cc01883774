"""Benchmark: how soon does the `autograder` command answer?

Runs each command --runs times as a user does (the console script, a fresh
process each time) and prints the median wall time and the spread:
`--version`, `--help`, an argument error (exit 2), `export` of a small
gradebook to standard output, and, for `check` on a copy of the released hw1
stubs, the time until its first line (on either stream) and until it ends.

Run: .venv/bin/python bench/cli_startup.py [--runs 5] [--check-runs 3]
"""

from __future__ import annotations

import argparse
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
COMMAND = [str(Path(sys.executable).parent / "autograder")]


def small_gradebook(db: Path) -> Path:
    """Three students of the tiny course, recorded directly (no grading)."""
    from autograder.engine.results import CheckResult, SubmissionResult
    from autograder.gradebook.store import Gradebook

    with Gradebook(db) as gradebook:
        for student, score in (("ann", 3.0), ("bob", 1.0), ("cat", 0.0)):
            checks = [CheckResult("scale.double.values", score, 3.0, "passed" if score == 3.0 else "failed", "", "public")]
            gradebook.record(SubmissionResult("tiny", student, checks), f"hash-{student}", "v1", 1.0)
    return db


def wall(args: list[str], expected_exit: int) -> float:
    started = time.perf_counter()
    run = subprocess.run(COMMAND + args, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if run.returncode != expected_exit:
        sys.exit(f"{' '.join(args)}: exit {run.returncode}, expected {expected_exit}\n{run.stdout}\n{run.stderr}")
    return elapsed


def first_line_and_end(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """Seconds until the first line on stdout or stderr, seconds until the process ends, and that line."""
    started = time.perf_counter()
    process = subprocess.Popen(COMMAND + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    selector = selectors.DefaultSelector()
    for stream in (process.stdout, process.stderr):
        selector.register(stream, selectors.EVENT_READ)
    first_at, first_line, pending = None, "", {process.stdout: b"", process.stderr: b""}
    while selector.get_map():
        for key, _ in selector.select():
            chunk = key.fileobj.read1(65536)
            if not chunk:
                selector.unregister(key.fileobj)
                continue
            pending[key.fileobj] += chunk
            if first_at is None and b"\n" in pending[key.fileobj]:
                first_at = time.perf_counter() - started
                first_line = pending[key.fileobj].split(b"\n", 1)[0].decode(errors="replace")
    process.wait()
    return first_at if first_at is not None else float("nan"), time.perf_counter() - started, first_line


def describe(times: list[float]) -> str:
    return f"median {statistics.median(times):6.3f} s  (min {min(times):.3f}, max {max(times):.3f}, n={len(times)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each quick command")
    parser.add_argument("--check-runs", type=int, default=3, help="runs of `check` (each grades the hw1 stubs)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as scratch:
        db = small_gradebook(Path(scratch) / "gradebook.sqlite")
        quick = {
            "--version": (["--version"], 0),
            "--help": (["--help"], 0),
            "argument error (grade, no argument)": (["grade"], 2),
            "export csv of 3 students": (["export", "--db", str(db), "-o", "-", "--root", str(TINY)], 0),
        }
        for name, (args, expected_exit) in quick.items():
            print(f"{name:<40} {describe([wall(args, expected_exit) for _ in range(options.runs)])}", flush=True)
        homework = shutil.copytree(ROOT / "assignments" / "hw1", Path(scratch) / "hw1")
        firsts, ends, line = [], [], ""
        for _ in range(options.check_runs):
            first, end, line = first_line_and_end(["check", "hw1", "."], homework)
            firsts.append(first)
            ends.append(end)
        print(f"{'check hw1 (stubs): first line':<40} {describe(firsts)}")
        print(f"{'check hw1 (stubs): whole run':<40} {describe(ends)}")
        print(f"check's first line: {line!r}")


if __name__ == "__main__":
    main()
