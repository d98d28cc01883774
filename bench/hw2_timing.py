"""Benchmark: the verdicts of hw2's timed checks, rerun, for several solutions.

For each solution (the reference itself, correct vectorized ones in other
styles, a correct one with Python loops over output pixels, and the same
loops patching every clock in its process) and each timed check, prints over
--reruns runs: the verdicts, and the student/reference time ratios of the
best (min) and of the median call, which the verdict could be based on.
With --busy, a second process spins on another core all along.

Run: .venv/bin/python bench/hw2_timing.py [--reruns 10] [--busy]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from autograder.checks.timing import THRESHOLD  # noqa: E402
from autograder.engine.assignment import load_reference  # noqa: E402
from autograder.engine.runner import run_check  # noqa: E402
from autograder.protocol.client import Worker  # noqa: E402
from autograder.sandboxes import get_sandbox  # noqa: E402
from variants import loops_with_clock_tricks  # noqa: E402

SOLUTIONS = {
    "reference": ROOT / "reference" / "hw2",
    "alternative (index gather + einsum)": ROOT / "tests" / "submissions" / "hw2_alternative",
    "kernel-offset loop": ROOT / "tests" / "submissions" / "hw2_offsets",
    "pixel loops": ROOT / "tests" / "submissions" / "hw2_loops",
}


def race_once(assignment, spec, worker, pacer, student):
    verdict = run_check(assignment, spec, worker, student, pacer=pacer)
    if not verdict.races:
        raise SystemExit(f"{spec.id} ran no race: {verdict.message}")
    race = verdict.races[-1]
    return "pass" if verdict.status == "passed" else "FAIL", race.ratio, race.median_ratio, min(race.reference)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--busy", action="store_true", help="keep another core busy all along")
    parser.add_argument("--only", help="solutions whose name contains this")
    parser.add_argument("--sandbox", default="process", help="process (default), namespace or docker")
    options = parser.parse_args()
    torch.set_num_threads(1)
    assignment = load_reference("hw2", ROOT / "reference" / "hw2")
    timed = [spec for spec in assignment.checks if spec.timed and spec.device == "cpu"]
    sandbox = get_sandbox(options.sandbox)
    scratch = tempfile.TemporaryDirectory()
    solutions = {**SOLUTIONS, "pixel loops + clock patching": loops_with_clock_tricks(Path(scratch.name) / "tricks")}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if options.busy else None
    print(f"threshold {THRESHOLD:g}x, {options.reruns} reruns, other core {'busy' if options.busy else 'idle'}")
    print(f"{'solution':38} {'check':34} {'verdicts':>10} {'min ratio (range)':>22} {'median ratio (range)':>22} {'ref ms':>7}")
    try:
        with Worker(sandbox, assignment.reference_dir) as pacer:
            for name, directory in solutions.items():
                if options.only and options.only not in name:
                    continue
                with Worker(sandbox, directory) as worker:
                    for spec in timed:
                        runs = [race_once(assignment, spec, worker, pacer, f"bench{i}") for i in range(options.reruns)]
                        verdicts = [r[0] for r in runs]
                        mins, medians = [r[1] for r in runs], [r[2] for r in runs]
                        summary = f"{verdicts.count('pass')} pass" if len(set(verdicts)) > 1 else f"all {verdicts[0]}"
                        print(
                            f"{name:38} {spec.id:34} {summary:>10} "
                            f"{statistics.median(mins):6.2f} ({min(mins):5.2f}-{max(mins):5.2f})    "
                            f"{statistics.median(medians):6.2f} ({min(medians):5.2f}-{max(medians):5.2f})    "
                            f"{statistics.median(r[3] for r in runs) * 1e3:6.2f}",
                            flush=True,
                        )
    finally:
        if spinner:
            spinner.kill()
        scratch.cleanup()


if __name__ == "__main__":
    main()
