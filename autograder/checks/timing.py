"""Timed checks: is the student's code within THRESHOLD times the reference's time?

How a race is run:

* Student and reference each run in a worker of the same kind (same sandbox,
  same device, one CPU thread), in their own check processes.
* Rounds alternate between them (S R, R S, S R, ...), each round on fresh
  inputs that both sides get, so caching a previous answer gains nothing.
  The first WARMUP rounds are not counted (imports, allocator, CUDA context).
* Only the grader measures. A call costs its wall time around the worker
  requests, which includes bringing the result back (work still pending on a
  GPU or in a background thread is counted, since the bytes cannot arrive
  before it is done), or, where the kernel's accounting of the check's process
  is visible, its CPU time over all threads if that is larger (extra threads
  do not buy time). Nothing in the worker can read or change either clock.
* Every timed result is compared with the reference's result of the same
  round: a wrong answer returned quickly fails.
* The verdict compares the best (minimum) time of each side: noise from other
  processes only ever adds time, so the minimum is the most repeatable
  estimate of what the code costs (bench/hw2_timing.py measures this).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

THRESHOLD = 10.0  # hw2 on 2 cores: vectorized solutions 1-4x the reference, pixel loops 30x and more
WARMUP = 2
ROUNDS = 12
HOPELESS = 4.0  # stop early once the student's best is this many thresholds behind


@dataclass
class Race:
    student: list[float] = field(default_factory=list)  # seconds per counted call
    reference: list[float] = field(default_factory=list)
    cpu_clock: bool = True  # whether every call was also measured by CPU time

    @property
    def ratio(self) -> float:
        return min(self.student) / min(self.reference)

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.student) / statistics.median(self.reference)

    def describe(self, threshold: float) -> str:
        clocks = "wall and CPU time" if self.cpu_clock else "wall time"
        return (
            f"best of {len(self.student)} calls: {_ms(min(self.student))} against the reference's "
            f"{_ms(min(self.reference))}, {self.ratio:.1f}x its time (limit {threshold:g}x; {clocks}, "
            f"interleaved with the reference on the same device)"
        )


def run_race(student, reference, prepare, timed, inputs, verify, *, rounds=ROUNDS, warmup=WARMUP, threshold=THRESHOLD):
    """Race the student's session against the reference's; returns the Race.

    inputs() -> {name: tensor}: fresh inputs for one round, placed in both processes untimed;
    prepare(code, **inputs) -> {name: value}: untimed set-up in one process (code: its modules);
    timed(**prepared) -> result: what is timed;
    verify(student_result, reference_result): raises CheckFailed when they differ.
    """
    race = Race()
    sides = (student, reference)
    for number in range(warmup + rounds):
        values = inputs()
        order = sides if number % 2 == 0 else sides[::-1]
        results = {}
        for session in order:
            try:
                results[session], seconds, measured_cpu = _run_side(session, prepare, timed, values)
            except Exception as exc:
                if session is student:
                    raise
                # never the student's fault: the check reports an internal error
                raise RuntimeError(f"the reference solution failed in the race: {exc}") from exc
            race.cpu_clock &= measured_cpu
            if number >= warmup:
                (race.student if session is student else race.reference).append(seconds)
        verify(results[student], results[reference])
        if number >= warmup + 2 and race.ratio > HOPELESS * threshold:
            break  # clearly too slow: more rounds would only cost the grader time
    return race


def _run_side(session, prepare, timed, values):
    handles = {name: session.put(value) for name, value in values.items()}
    prepared = prepare(session.student, **handles) if prepare else dict(code=session.student, **handles)
    cpu_before = session.cpu_time()
    start = time.perf_counter()
    result = timed(**prepared)
    wall = time.perf_counter() - start
    cpu_after = session.cpu_time()
    if cpu_before is None or cpu_after is None:
        return result, wall, False
    return result, max(wall, cpu_after - cpu_before), True


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"
