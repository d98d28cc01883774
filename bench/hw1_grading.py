"""Benchmark: per-check worker start, and grading the reference hw1 end to end.

Prints
* the median time to start a check's process (fork from the warm zygote, one
  round trip, kill and reap), target <= 20 ms;
* the wall time to grade reference/hw1 (all checks, one warm worker), next to
  the sum of the checks' own compute: the same checks run in this process with
  the reference standing in for the student, no worker and no protocol;
* the slowest checks, both ways.

Run: make bench   (or .venv/bin/python bench/hw1_grading.py [--starts N])
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.checks.seeds import PUBLIC_STUDENT, check_seed  # noqa: E402
from autograder.checks.tape import ReferenceProxy, Tape  # noqa: E402
from autograder.checks.trial import Trial  # noqa: E402
from autograder.engine.assignment import load_reference  # noqa: E402
from autograder.engine.runner import grade  # noqa: E402
from autograder.protocol import fixtures  # noqa: E402
from autograder.protocol.client import Worker  # noqa: E402
from autograder.sandboxes import get_sandbox  # noqa: E402

REFERENCE = ROOT / "reference" / "hw1"


class InProcess:
    """A session whose 'student' is the reference, called directly: the checks' own compute."""

    def __init__(self, assignment):
        self.student = assignment.reference_root(Tape())
        self.last_call = ""

    def put(self, value):
        return value

    def fetch(self, value):
        return value

    def fixture(self, name):
        return ReferenceProxy(getattr(fixtures, name), name, Tape())


def median_start_ms(worker: Worker, count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        session = worker.session(seed=0, forbid=[], call_timeout=5, deadline=time.monotonic() + 5)
        session.violations()  # one round trip: the child is up and serving
        session.end()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def own_compute(assignment) -> dict[str, float]:
    seconds = {}
    for spec in assignment.checks:
        seed = check_seed("bench" if spec.visibility == "hidden" else PUBLIC_STUDENT, "hw1", spec.id)
        session = InProcess(assignment)
        started = time.perf_counter()
        spec.run(Trial(session, assignment.reference_root(Tape()), Tape(), seed))
        seconds[spec.id] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=200, help="check processes to start for the median")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sandbox = get_sandbox("process")
    assignment = load_reference("hw1", REFERENCE)

    with Worker(sandbox, REFERENCE) as worker:
        started = time.perf_counter()
        worker.ensure_started()
        zygote_s = time.perf_counter() - started
        median_start_ms(worker, 10)  # warm up
        start_ms = median_start_ms(worker, args.starts)

    own = own_compute(assignment)
    own_compute(assignment)  # second pass: no first-call costs in the figure
    own = own_compute(assignment)

    wall = {}
    last = [time.perf_counter()]

    def clock(check):
        now = time.perf_counter()
        wall[check.id] = now - last[0]
        last[0] = now

    started = time.perf_counter()
    result = grade(assignment, REFERENCE, sandbox, "bench", on_result=clock)
    total = time.perf_counter() - started

    print(f"zygote start (python + import torch): {zygote_s * 1000:.0f} ms")
    print(f"per-check worker start, median of {args.starts}: {start_ms:.1f} ms (target <= 20 ms)")
    print(f"grading reference hw1: {total:.2f} s wall for {len(result.checks)} checks, score {result.score:g}/{result.max_score:g}")
    print(f"  sum of the checks' own compute: {sum(own.values()):.2f} s; ratio {total / sum(own.values()):.2f}x (target <= 2x)")
    print(f"  without the one-time zygote start: {total - zygote_s:.2f} s; ratio {(total - zygote_s) / sum(own.values()):.2f}x")
    print("slowest checks (graded wall ms / own compute ms):")
    for check_id in sorted(wall, key=wall.get, reverse=True)[:8]:
        print(f"  {check_id:48s} {wall[check_id] * 1000:7.1f} / {own[check_id] * 1000:6.1f}")


if __name__ == "__main__":
    main()
