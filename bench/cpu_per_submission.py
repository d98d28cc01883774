"""Where a submission's CPU time goes: the grader, the worker's processes, and the guard's share.

    .venv/bin/python bench/cpu_per_submission.py [--submissions 6] [--rounds 2] [--sandbox namespace]

Run it on an otherwise idle machine: the worker's CPU is the machine's (/proc/stat) less the grader's.
Each measurement runs in a fresh Python process of its own, in turn, --rounds times:

* grading reference/hw1 --submissions times with one warm worker (after one grading to warm it up),
  in --sandbox: CPU seconds per submission of the grader and of the worker's processes, wall time,
  requests, and check processes started;
* the same in the process sandbox twice: as it is, and with the run-time guard's dispatcher layer
  (guard.py: the dispatch mode that sees every aten operator, the guarded autograd engine, guarded
  threads) left out of every check's process, through a copy of the worker's entry point made here
  for this measurement only. The difference is what that layer costs; the by-name wrappers stay.
* the floor of a check's process: a child forked from a process that holds torch as a zygote does
  (preloaded, heap in 2 MB pages, the forbidden names wrapped) that only exits, and one that seeds,
  installs a guard against autograd and multiplies two matrices first; and one no-op request's round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
WITHOUT_DISPATCHER = """\
import sys
from autograder.protocol import guard, worker
guard.Guard._install_dispatcher = lambda self: None  # this measurement only: the by-name wrappers stay
sys.argv[0] = "worker"
worker.main(sys.argv[1:])
"""


def machine_cpu() -> float:
    with open("/proc/stat") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def grading(sandbox_name: str, dispatcher: bool, submissions: int) -> dict:
    """Grade the reference hw1 in this process; CPU, wall, requests and forks per submission."""
    if not dispatcher:
        script = Path(tempfile.mkdtemp(prefix="bench-cpu-")) / "worker_without_dispatcher.py"
        script.write_text(WITHOUT_DISPATCHER)
        launch = subprocess.Popen

        class Launch(launch):
            def __init__(self, args, *rest, **options):
                if "autograder.protocol.worker" in args:
                    at = args.index("-m")
                    args = [*args[:at], str(script), *args[at + 2:]]
                super().__init__(args, *rest, **options)

        subprocess.Popen = Launch
    from autograder.engine.assignment import load_reference
    from autograder.engine.runner import grade
    from autograder.protocol import client
    from autograder.sandboxes import get_sandbox

    counts = {"requests": 0, "forks": 0}
    request, data_channel = client.Session.request, client.Worker._data_channel

    def counted_request(self, *args, **kwargs):
        counts["requests"] += 1
        return request(self, *args, **kwargs)

    def counted_fork(self, *args, **kwargs):
        counts["forks"] += 1
        return data_channel(self, *args, **kwargs)

    client.Session.request, client.Worker._data_channel = counted_request, counted_fork
    assignment = load_reference("hw1", REFERENCE)
    sandbox = get_sandbox(sandbox_name)
    warm = grade(assignment, REFERENCE, sandbox, "warm-up")
    counts.update(requests=0, forks=0)
    started, grader_before, machine_before = time.monotonic(), own_cpu(), machine_cpu()
    scores = [grade(assignment, REFERENCE, sandbox, f"student{i}").score for i in range(submissions)]
    time.sleep(0.3)  # the last check processes' ends are counted too
    grader, machine = own_cpu() - grader_before, machine_cpu() - machine_before
    wall = time.monotonic() - started - 0.3
    return {
        "grader": grader / submissions, "worker": (machine - grader) / submissions, "wall": wall / submissions,
        "requests": counts["requests"] / submissions, "forks": counts["forks"] / submissions,
        "scores": sorted({warm.score, *scores}),
    }


def floor(children: int) -> dict:
    """CPU ms of a check process's bare minimum: children of a process prepared as a template, then a
    zygote covering the names its next check forbids, are."""
    import torch

    from autograder.protocol import guard, worker

    worker.preload()
    worker.back_with_huge_pages()
    guard.cover(["torch.autograd"])
    results = {}
    with tempfile.TemporaryDirectory() as submission:
        for label, body in [
            ("a fork that exits", lambda: None),
            ("seed, install a guard, one matmul", lambda: (
                worker.seed_everything(1), guard.Guard(["torch.autograd"], submission).install(),
                float((torch.randn(10, 10) @ torch.randn(10, 10)).sum()))),
        ]:
            before = machine_cpu()
            for _ in range(children):
                pid = os.fork()
                if pid == 0:
                    try:
                        body()
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
            results[label] = (machine_cpu() - before) / children * 1000
    return results


def round_trip(count: int) -> dict:
    """Wall ms of one no-op request, and CPU ms of the grader and of the worker for it (process sandbox)."""
    from autograder.protocol.client import Worker
    from autograder.sandboxes import get_sandbox

    with Worker(get_sandbox("process"), REFERENCE) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=60, check_timeout=600)
        session.violations()
        times, grader_before, machine_before = [], own_cpu(), machine_cpu()
        for _ in range(count):
            started = time.perf_counter()
            session.violations()
            times.append(time.perf_counter() - started)
        grader, machine = own_cpu() - grader_before, machine_cpu() - machine_before
        session.end()
    return {"wall": statistics.median(times) * 1000, "grader": grader / count * 1000, "worker": (machine - grader) / count * 1000}


def measure(*arguments: str) -> dict:
    """One measurement in a fresh Python process (its template, imports and patches its own)."""
    run = subprocess.run([sys.executable, __file__, "--measure", *arguments], capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        sys.exit(f"measurement {arguments} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.splitlines()[-1])


def spread(values: list[float], digits: int = 2) -> str:
    text = f"{statistics.median(values):.{digits}f}"
    return text if len(values) == 1 else f"{text} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sandbox", default="namespace")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # in a process of its own (measure): the package, torch and one thread, as the grader has them
        sys.path.insert(0, str(ROOT))
        import torch

        torch.set_num_threads(1)
        kind, *rest = args.measure
        figures = {"grading": lambda: grading(rest[0], rest[1] == "on", int(rest[2])),
                   "floor": lambda: floor(200), "round-trip": lambda: round_trip(2000)}[kind]()
        print(json.dumps(figures))
        return

    print(f"load average before: {os.getloadavg()[0]:.2f} (run on an idle machine: the worker's CPU is the machine's less the grader's)")
    runs = [(args.sandbox, "on"), ("process", "on"), ("process", "off")]
    runs = list(dict.fromkeys(runs))
    found: dict[tuple, list[dict]] = {run: [] for run in runs}
    for number in range(args.rounds):
        for run in runs if number % 2 == 0 else runs[::-1]:
            found[run].append(measure("grading", *run, str(args.submissions)))
    print(f"\ngrading reference hw1, {args.submissions} submissions a round, {args.rounds} rounds: "
          "per submission, median (min-max over rounds)")
    for (sandbox, dispatcher), results in found.items():
        scores = sorted({score for result in results for score in result["scores"]})
        grader, worker = [r["grader"] for r in results], [r["worker"] for r in results]
        total = [g + w for g, w in zip(grader, worker)]
        label = f"{sandbox}, guard {'as it is' if dispatcher == 'on' else 'without its dispatcher layer'}"
        print(f"  {label}:")
        print(f"    CPU s: {spread(total)} = grader {spread(grader)} + worker's processes {spread(worker)}; "
              f"wall {spread([r['wall'] for r in results])} s; scores {scores}")
        print(f"    {spread([r['requests'] for r in results], 0)} requests, "
              f"{spread([r['forks'] for r in results], 0)} check processes started")
    with_it, without = found.get(("process", "on")), found.get(("process", "off"))
    cost = [(a["grader"] + a["worker"]) - (b["grader"] + b["worker"]) for a, b in zip(with_it, without)]
    print(f"  the guard's dispatcher layer: {spread(cost)} CPU s per submission (process sandbox, round by round)")

    base = measure("floor")
    trip = measure("round-trip")
    print("\nfloors (process sandbox):")
    for label, ms in base.items():
        print(f"  a check's process, {label}: {ms:.1f} ms CPU (fork, run, exit)")
    print(f"  a no-op request: {trip['wall']:.2f} ms wall (median), {trip['grader']:.2f} ms of the grader's CPU, "
          f"{trip['worker']:.2f} ms of the worker's")


if __name__ == "__main__":
    main()
