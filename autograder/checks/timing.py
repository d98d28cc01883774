"""Timed checks: is the student's code within THRESHOLD times the reference's time?

How a race is run:

* Student and reference each run in a worker of the same kind (same sandbox,
  same device, one CPU thread), in their own check processes.
* What one measurement does is a small program (protocol/plan.py), recorded
  from the check's set-up and timed lambdas: constructing a layer, setting its
  parameters, a forward before a timed backward, the timed call. A request
  carries `repetitions` input sets and the worker runs the whole program once
  per set, so all of it is on the clock, and the reference's work per request
  (several ms) sits far above the cost of a round trip.
* Every input set is fresh (caching an answer gains nothing) and travels with
  the request that uses it: nothing of a round is in the student's process
  before its timed request.
* Rounds alternate between the sides (S R, R S, ...), both getting the same
  input sets. WARMUP rounds of one repetition come first, uncounted (imports,
  first calls, the allocator, a CUDA context).
* Only the grader measures: the wall-clock time of each request, and the
  kernel's count of the check process's CPU time, all its threads, since its
  previous request ended (nothing in the worker can read or change it; extra
  threads, or threads left working while the other side is timed, do not buy
  time). On CUDA, and where the sandbox hides the check's CPU time, wall-clock
  time alone.
* Every repetition's result is compared with the reference's for the same
  inputs: a wrong answer returned quickly fails.
* The verdict compares the median per-repetition time of each side over the
  counted requests: CPU time is what the code costs, barely moved by other
  processes, and the median ignores the odd disturbed request. Time the
  student's process spends waiting (sleeping, another process doing its work)
  is not CPU time: a wall-clock ratio over WAIT_SLACK times the CPU-time ratio
  counts instead, divided by WAIT_SLACK.
* A student's request that reaches the check's time limit per call is stopped
  and the race lost, the message giving the limit and the reference's time: so
  pixel loops cost the grader that limit, not minutes.

bench/hw2_timing.py measures the verdicts of every solution style, idle and
under load: the figures are beside THRESHOLD.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from autograder.protocol import plan as programs
from autograder.protocol.client import CallTimeout

# hw2 (bench/hw2_timing.py --quick, 2 shared cores, idle and with 8 spinning processes): vectorized styles
# took at most 5.7 times the reference's CPU time, pixel loops 33 times and more (numpy's; torch's were
# stopped at the call limit). The run-time guard's cost per torch operator, in both processes, weighs on
# the reference: without it, vectorized styles measured up to ~9 times, numpy's pixel loops ~80 times.
# 18 keeps a factor of about 2 to both sides, with the guard or without.
THRESHOLD = 18.0
REPETITIONS = 8  # input sets per request, each run through the whole program
ROUNDS = 8  # counted requests per side
WARMUP = 1  # uncounted rounds of one repetition first
HOPELESS = 2.0  # stop early once the student is this many thresholds behind, after two counted rounds
WAIT_SLACK = 3.0  # how much more the wall-clock ratio may exceed the CPU-time ratio before it counts


@dataclass(frozen=True)
class Measurement:
    """One request's time per repetition, in seconds."""

    wall: float
    cpu: float | None  # None where the check's CPU time is not visible (or not meaningful: CUDA)


@dataclass
class Race:
    repetitions: int
    student: list[Measurement] = field(default_factory=list)  # one per counted request
    reference: list[Measurement] = field(default_factory=list)

    @property
    def cpu_clock(self) -> bool:
        """Whether every counted request of both sides was measured by CPU time too."""
        return all(m.cpu is not None for m in self.student + self.reference)

    @property
    def wall_ratio(self) -> float:
        return _median(self.student, "wall") / _median(self.reference, "wall")

    @property
    def cpu_ratio(self) -> float | None:
        if not self.cpu_clock:
            return None
        return _median(self.student, "cpu") / max(_median(self.reference, "cpu"), 1e-9)

    @property
    def waited(self) -> bool:
        """Whether the student's wall-clock time counts: far more of it than CPU time, compared with the reference."""
        return self.cpu_clock and self.wall_ratio > WAIT_SLACK * self.cpu_ratio

    @property
    def ratio(self) -> float:
        """The verdict's number: how many times the reference's time the student's took."""
        if not self.cpu_clock:
            return self.wall_ratio
        return max(self.cpu_ratio, self.wall_ratio / WAIT_SLACK)

    def describe(self, threshold: float) -> str:
        """What was measured, in words and figures (no values of the inputs: hidden checks show it)."""
        clock = "cpu" if self.cpu_clock else "wall"
        name = "CPU time" if self.cpu_clock else "wall-clock time"
        text = (
            f"median {name} per repetition {_ms(_median(self.student, clock))} against the reference's "
            f"{_ms(_median(self.reference, clock))}, {self.ratio:.1f} times as long (limit {threshold:g} times)"
        )
        if self.waited:
            text = (
                f"median wall-clock time per repetition {_ms(_median(self.student, 'wall'))} against the "
                f"reference's {_ms(_median(self.reference, 'wall'))}, {self.wall_ratio:.1f} times as long, which is "
                f"over {WAIT_SLACK:g} times its CPU-time ratio ({self.cpu_ratio:.1f}): its process waited, and the "
                f"wall-clock ratio counts, divided by {WAIT_SLACK:g}: {self.ratio:.1f} times (limit {threshold:g} times)"
            )
        how = "the kernel's CPU-time count of each process" if self.cpu_clock else "the grader's wall clock"
        return (
            f"{text}; measured by {how} over {len(self.student)} requests of {_repetitions(self.repetitions)} "
            "each (fresh inputs every repetition), interleaved with the reference on the same device"
        )


def run_race(student, reference, prepare, timed, draw, verify, *, repetitions=REPETITIONS, rounds=ROUNDS,
             warmup=WARMUP, threshold=THRESHOLD, cpu_clock=True, what="the timed code") -> Race:
    """Race the student's session against the reference's; returns the Race.

    draw() -> {name: value}: one fresh input set;
    prepare(code, **inputs) -> {name: value}: the set-up (code: the modules), on the clock too;
    timed(**prepared) -> result: the measured call;
    verify(student_results, reference_results): the lists of one request's results, one per input set;
    raises CheckFailed when they differ. cpu_clock=False: wall-clock time only (CUDA).
    """
    first = draw()
    program = programs.record(prepare, timed, list(first))
    race = Race(repetitions)
    sides = (reference, student)  # the reference first in the first round: its time is known when the student's runs
    describe = f"{what} (timed)"
    latest = None  # the reference's latest time per repetition
    # Each side's CPU clock where its last request ended: a request is charged all the CPU its process
    # used since then (threads it left running while the other side was timed, say), not only its own.
    marks = {session: session.cpu_time() if cpu_clock else None for session in sides}
    for number in range(warmup + rounds):
        counted = number >= warmup
        input_sets = [first] if number == 0 else []
        input_sets += [draw() for _ in range((repetitions if counted else 1) - len(input_sets))]
        results, times = {}, {}
        for session in sides if number % 2 == 0 else sides[::-1]:
            try:
                results[session], times[session], marks[session] = _measure(
                    session, program, input_sets, marks[session], describe
                )
            except CallTimeout as exc:
                known = times.get(reference, latest)
                if session is student and known is not None:
                    raise TooSlow(_stopped(exc, what, len(input_sets), known, cpu_clock)) from None
                raise
            except Exception as exc:
                if session is student:
                    raise
                # never the student's fault: the check reports an internal error
                raise RuntimeError(f"the reference solution failed in the race: {exc}") from exc
        latest = times[reference]
        if counted:
            race.student.append(times[student])
            race.reference.append(times[reference])
        verify(results[student], results[reference])
        if len(race.student) >= 2 and race.ratio > HOPELESS * threshold:
            break  # clearly too slow: more rounds would only cost the grader time
    return race


class TooSlow(Exception):
    """The student's timed request was stopped by the check's time limit per call (a slow race ends there)."""


def _stopped(exc: CallTimeout, what: str, count: int, reference: Measurement, cpu_clock: bool) -> str:
    """What was measured when the student's request was stopped: the limit it met, and the reference's time."""
    clock = "cpu" if cpu_clock and reference.cpu is not None else "wall"
    per_repetition = getattr(reference, clock)
    name = "CPU time" if clock == "cpu" else "wall-clock time"
    return (
        f"{what} is too slow: its timed request of {_repetitions(count)} was stopped ({exc}), where the reference "
        f"took {_ms(per_repetition)} of {name} per repetition ({_ms(per_repetition * count)} for {count})"
    )


def _measure(session, program, input_sets: list[dict], cpu_mark: float | None, describe: str):
    """The results of one request, its time per repetition (CPU time since cpu_mark), and the new mark."""
    start = time.perf_counter()
    results = session.repeat(program, input_sets, describe=describe)
    wall = time.perf_counter() - start
    cpu_after = session.cpu_time() if cpu_mark is not None else None
    count = len(input_sets)
    cpu = None if cpu_after is None else (cpu_after - cpu_mark) / count
    return results, Measurement(wall / count, cpu), cpu_after


def _median(measurements: list[Measurement], clock: str) -> float:
    return statistics.median(getattr(m, clock) for m in measurements)


def _repetitions(count: int) -> str:
    return f"{count} repetition{'s' if count != 1 else ''}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"
