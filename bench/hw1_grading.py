"""Benchmark: per-check worker start, and grading the reference hw1 end to end.

Prints, for every sandbox that can run here (process, namespace, docker)
* the median time to start a check's process (fork from the warm zygote, one
  round trip, kill and reap), target <= 20 ms for process, <= 50 ms for the
  namespace sandbox (its checks get namespaces of their own);
* the worker's first start (the template) and a later one (a zygote);
* the wall time to grade reference/hw1 (all checks, a warm template), next to
  the sum of the checks' own compute: the same checks run in this process with
  the reference standing in for the student, no worker and no protocol;
* the slowest checks, both ways.

Run: make bench   (or .venv/bin/python bench/hw1_grading.py [--starts N] [--sandbox NAME ...])
"""

from __future__ import annotations

import argparse
import contextlib
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
from autograder.sandboxes import SANDBOXES, SandboxUnavailable, get_sandbox  # noqa: E402

REFERENCE = ROOT / "reference" / "hw1"


class InProcess:
    """A session whose 'student' is the reference, called directly: the checks' own compute."""

    def __init__(self, assignment):
        self.student = assignment.reference_root(Tape())
        self.last_call = ""

    def put(self, value):
        return value

    def put_all(self, values):
        return list(values)

    def fetch(self, value):
        return value

    def fetch_all(self, values):
        return list(values)

    def fetching(self, handles):
        return contextlib.nullcontext(types.SimpleNamespace(values=None))  # no round trip to save: fetch_all

    def fixture(self, name):
        return ReferenceProxy(getattr(fixtures, name), name, Tape())


def median_start_ms(worker: Worker, count: int) -> tuple[float, float | None]:
    """Median wall ms to start a check's process, and the worker's mean CPU ms per start where the
    sandbox shows it (the jail's cgroup: the fork, the child's confinement, its end)."""
    times = []
    cpu = getattr(worker.proc, "cpu_seconds", None)
    cpu_before = cpu() if cpu else None
    for _ in range(count):
        started = time.perf_counter()
        session = worker.session(seed=0, forbid=[], call_timeout=5, check_timeout=5)
        session.violations()  # one round trip: the child is up and serving
        session.end()
        times.append(time.perf_counter() - started)
    time.sleep(0.2)  # the last child's end is counted too
    cpu_ms = (cpu() - cpu_before) / count * 1000 if cpu else None
    return statistics.median(times) * 1000, cpu_ms


def own_compute(assignment) -> dict[str, float]:
    seconds = {}
    for spec in assignment.checks:
        seed = check_seed("bench" if spec.visibility == "hidden" else PUBLIC_STUDENT, "hw1", spec.id)
        session = InProcess(assignment)
        started = time.perf_counter()
        spec.run(Trial(session, assignment.reference_root(Tape()), Tape(), seed))
        seconds[spec.id] = time.perf_counter() - started
    return seconds


TARGET_START_MS = {"process": 20, "namespace": 50, "docker": 50}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=200, help="check processes to start for the median")
    parser.add_argument("--sandbox", action="append", choices=list(SANDBOXES), help="default: every sandbox")
    args = parser.parse_args()
    torch.set_num_threads(1)
    assignment = load_reference("hw1", REFERENCE)
    own_compute(assignment)  # two passes first: no first-call costs in the figure
    own_compute(assignment)
    own = own_compute(assignment)
    print(f"the checks' own compute (reference in this process, no worker): {sum(own.values()):.2f} s")
    for name in args.sandbox or list(SANDBOXES):
        try:
            sandbox = get_sandbox(name)
        except SandboxUnavailable as exc:
            print(f"\n{name}: not measured: {exc}")
            continue
        measure(sandbox, assignment, own, args.starts)


def measure(sandbox, assignment, own: dict[str, float], starts: int) -> None:
    with Worker(sandbox, REFERENCE) as worker:
        started = time.perf_counter()
        worker.ensure_started()
        zygote_s = time.perf_counter() - started
    with Worker(sandbox, REFERENCE) as worker:
        started = time.perf_counter()
        worker.ensure_started()
        next_start_s = time.perf_counter() - started
        median_start_ms(worker, 10)  # warm up
        start_ms, start_cpu_ms = median_start_ms(worker, starts)

    wall = {}
    last = [time.perf_counter()]

    def clock(check):
        now = time.perf_counter()
        wall[check.id] = now - last[0]
        last[0] = now

    started = time.perf_counter()
    result = grade(assignment, REFERENCE, sandbox, "bench", on_result=clock)
    total = time.perf_counter() - started
    compute = sum(own.values())

    print(f"\n{sandbox.name}:")
    print(f"  first worker start (the template: sandbox + python + import torch; then a zygote): {zygote_s * 1000:.0f} ms")
    print(f"  next worker start (a zygote forked from the warm template): {next_start_s * 1000:.0f} ms")
    cpu_text = f", {start_cpu_ms:.1f} ms of the worker's CPU each" if start_cpu_ms is not None else ""
    print(f"  per-check start, median of {starts}: {start_ms:.1f} ms (target <= {TARGET_START_MS[sandbox.name]} ms){cpu_text}")
    print(f"  grading reference hw1 (warm template): {total:.2f} s wall, {len(result.checks)} checks, "
          f"score {result.score:g}/{result.max_score:g}")
    print(f"    {total / compute:.2f}x the checks' own compute (target <= 2x); the one-time start above comes apart")
    print("  slowest checks (graded wall ms / own compute ms):")
    for check_id in sorted(wall, key=wall.get, reverse=True)[:5]:
        print(f"    {check_id:48s} {wall[check_id] * 1000:7.1f} / {own[check_id] * 1000:6.1f}")


if __name__ == "__main__":
    main()
