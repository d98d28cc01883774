"""Benchmark: the verdicts of hw2's timed checks over regrades, per solution style, idle and under load.

Styles: correct solutions written several ways. Vectorized ones must pass:
torch as_strided im2col (the reference), torch index gather + einsum, torch
kernel-offset loop, numpy np.add.at, numpy einsum, numpy stride tricks.
Python loops over output pixels must fail: torch, torch patching every clock in
its process, numpy. For each style and timed check, over --reruns regrades of
the same student, it prints the verdicts, the verdict's ratio (median and
range), the CPU-time and wall-clock ratios it comes from, and the reference's
time per repetition; then whether any verdict flipped or went the wrong way.

Loads: idle, and busy (--spinners processes spinning all along, by default 4
per core). The grader's verdict is the same in both when timing works.

--device cuda races the CUDA twins of the timed checks instead (on a host with a CUDA device; the
workers are started asking for the GPUs, as the grader starts them for CUDA checks).

Run: .venv/bin/python bench/hw2_timing.py [--reruns 10] [--load both|idle|busy] [--quick] [--only TEXT]
     [--sandbox process|namespace|docker] [--device cpu|cuda]

The figures behind THRESHOLD are in autograder/checks/timing.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
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

SUBMISSIONS = ROOT / "tests" / "submissions"
PASS, FAIL = "pass", "FAIL"
# style -> (folder, the verdict it must get)
STYLES = {
    "torch as_strided im2col (reference)": (ROOT / "reference" / "hw2", PASS),
    "torch index gather + einsum": (SUBMISSIONS / "hw2_alternative", PASS),
    "torch kernel-offset loop": (SUBMISSIONS / "hw2_offsets", PASS),
    "numpy np.add.at": (SUBMISSIONS / "hw2_numpy_add_at", PASS),
    "numpy einsum": (SUBMISSIONS / "hw2_numpy_einsum", PASS),
    "numpy stride tricks": (SUBMISSIONS / "hw2_numpy_strides", PASS),
    "torch pixel loops": (SUBMISSIONS / "hw2_loops", FAIL),
    "torch pixel loops + clock patching": (None, FAIL),  # made from hw2_loops (tests/variants.py)
    "numpy pixel loops": (SUBMISSIONS / "hw2_numpy_loops", FAIL),
}


def regrade(assignment, spec, worker, pacer):
    """One grading of a timed check: (verdict, race), the race None when a request was stopped at the call limit."""
    verdict = run_check(assignment, spec, worker, "bench-student", pacer=pacer)
    if verdict.races:
        return (PASS if verdict.status == "passed" else FAIL), verdict.races[-1]
    if verdict.status == "failed" and "was stopped" in verdict.message:
        return FAIL, None
    raise SystemExit(f"{spec.id} ran no race: {verdict.message}")


def spread(values) -> str:
    if not values:
        return "stopped"
    return f"{statistics.median(values):7.2f} ({min(values):6.2f}-{max(values):6.2f})"


def median_or_nan(values) -> float:
    return statistics.median(values) if values else float("nan")


def run_load(load, assignment, sandbox, styles, reruns, spinners, device) -> list[str]:
    """Print one table; return the problems found (flips, wrong verdicts)."""
    timed = [spec for spec in assignment.checks if spec.timed and spec.device == device]
    cuda = device == "cuda"
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(spinners if load == "busy" else 0)]
    problems = []
    print(f"\n{load}: {len(busy)} spinning processes, threshold {THRESHOLD:g}x, {reruns} regrades each")
    print(f"{'style':36} {'check':34} {'verdicts':>19} {'ratio: median (range)':>23} {'CPU ratio':>9} "
          f"{'wall ratio':>10} {'ref ms/rep':>10} {'s/regrade':>9}")
    try:
        with Worker(sandbox, assignment.reference_dir, cuda=cuda) as pacer:
            for name, (directory, expected) in styles.items():
                with Worker(sandbox, directory, cuda=cuda) as worker:
                    for spec in timed:
                        start = time.monotonic()
                        runs = [regrade(assignment, spec, worker, pacer) for _ in range(reruns)]
                        seconds = (time.monotonic() - start) / reruns
                        verdicts = [verdict for verdict, _ in runs]
                        races = [race for _, race in runs if race is not None]
                        passes = verdicts.count(PASS)
                        summary = f"all {verdicts[0]}" if len(set(verdicts)) == 1 else f"{passes}/{reruns} pass"
                        if len(races) < len(runs):
                            summary += f", {len(runs) - len(races)} stopped"
                        cpu = [race.cpu_ratio for race in races if race.cpu_ratio is not None]
                        reference_ms = [statistics.median(m.cpu or m.wall for m in race.reference) * 1e3 for race in races]
                        print(
                            f"{name:36} {spec.id:34} {summary:>19} {spread([r.ratio for r in races]):>23} "
                            f"{median_or_nan(cpu):9.2f} {median_or_nan([r.wall_ratio for r in races]):10.2f} "
                            f"{median_or_nan(reference_ms):10.3f} {seconds:9.1f}",
                            flush=True,
                        )
                        if len(set(verdicts)) > 1:
                            problems.append(f"{load}: {name}, {spec.id}: the verdict flipped ({summary})")
                        elif verdicts[0] != expected:
                            problems.append(f"{load}: {name}, {spec.id}: {verdicts[0]}, expected {expected}")
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=10, help="regrades per style and check (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 regrades (calibration runs)")
    parser.add_argument("--load", choices=["both", "idle", "busy"], default="both")
    parser.add_argument("--spinners", type=int, default=4 * (os.cpu_count() or 1), help="busy processes under load")
    parser.add_argument("--only", help="styles whose name contains this")
    parser.add_argument("--sandbox", default="process", help="process (default), namespace or docker")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="the timed checks or their CUDA twins")
    options = parser.parse_args()
    if options.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device on this host")
    reruns = 3 if options.quick else options.reruns
    torch.set_num_threads(1)
    assignment = load_reference("hw2", ROOT / "reference" / "hw2")
    sandbox = get_sandbox(options.sandbox)
    with tempfile.TemporaryDirectory() as scratch:
        styles = {
            name: (directory or loops_with_clock_tricks(Path(scratch) / "clock_tricks"), expected)
            for name, (directory, expected) in STYLES.items()
            if not options.only or options.only in name
        }
        loads = ["idle", "busy"] if options.load == "both" else [options.load]
        problems = [p for load in loads for p in run_load(load, assignment, sandbox, styles, reruns, options.spinners, options.device)]
    print()
    if problems:
        print("\n".join(problems))
        raise SystemExit(1)
    print("no verdict flipped; every vectorized style passed and every pixel-loop style failed")


if __name__ == "__main__":
    main()
