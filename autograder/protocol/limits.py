"""How long the grader waits for a worker: every time limit is computed here.

A check's limits measure the student's work, not the host:

* a check's budget starts once its process exists (a worker's start-up is
  never charged to a check), and a call's budget when the call is sent;
* where the sandbox shows the grader the kernel's count of the check's CPU
  time (Session.cpu_time: the child's CPU clock, or the worker's cgroup), a
  call may use `call_seconds` of it and the whole check `check_seconds`, so a
  loaded host, a slow container or a busy neighbour cost wall time only;
* code that sleeps or blocks uses no CPU: a wall-clock backstop WALL_BACKSTOP
  times larger ends it. The check's wall clock runs only while the grader
  waits for the worker (the grader's own computing between calls is not the
  student's);
* where no CPU clock is visible (docker, a worker that relays), the limits are
  wall clock, with the same values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

START_TIMEOUT = 120.0  # a zygote's start: importing torch on a loaded machine can take a while
END_TIMEOUT = 5.0  # the grader's exchanges with a zygote: fork, end
WALL_BACKSTOP = 5.0  # times the CPU limits: the wall-clock limits for code that sleeps or blocks
POLL = 0.05  # seconds between looks at the check's CPU clock while waiting for an answer

PER_CALL = "per call"
WHOLE_CHECK = "for the whole check"

CpuClock = Callable[[], "float | None"]


class WallLimit:
    """A plain wall-clock limit, for the grader's own exchanges with a zygote."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def next_wait(self) -> float | None:
        """Seconds to wait before looking again; None once the limit is reached."""
        left = self.deadline - time.monotonic()
        return left if left > 0 else None


@dataclass(frozen=True)
class Limit:
    seconds: float  # what this call may still use
    configured: float  # the limit as set, for messages
    scope: str  # PER_CALL or WHOLE_CHECK


class CheckLimits:
    """One check's limits, per call and for the whole check, counted from when its process exists."""

    def __init__(self, call_seconds: float, check_seconds: float, cpu_clock: CpuClock | None):
        self.call_seconds, self.check_seconds = call_seconds, check_seconds
        start = cpu_clock() if cpu_clock else None
        self.cpu_clock = cpu_clock if start is not None else None
        self.cpu_at_start = start or 0.0
        self.waited = 0.0  # wall seconds spent waiting for the worker, all calls together

    def call(self, calls: int = 1, seconds: float | None = None) -> "CallBudget":
        """The budget of a request sent now making `calls` calls (their per-call limits together), or
        one call allowed `seconds` (a model's training); give it back to `charge` when it is over."""
        call_seconds = seconds if seconds is not None else calls * self.call_seconds
        backstop = WALL_BACKSTOP if self.cpu_clock else 1.0
        wall = _tighter(backstop * call_seconds, backstop * self.check_seconds, self.waited)
        if self.cpu_clock is None:
            return CallBudget(None, None, wall)
        now = self.cpu_clock()
        used = 0.0 if now is None else now - self.cpu_at_start
        return CallBudget(self.cpu_clock, _tighter(call_seconds, self.check_seconds, used), wall)

    def charge(self, budget: "CallBudget") -> None:
        self.waited += budget.wall_used()


class CallBudget:
    """What one call may use from when it is sent: CPU seconds of the check's clock (None: no clock visible) and wall seconds."""

    def __init__(self, cpu_clock: CpuClock | None, cpu: Limit | None, wall: Limit):
        self.cpu_clock, self.cpu, self.wall = cpu_clock, cpu, wall
        self.cpu_at_start = self._cpu_now() or 0.0
        self.started = time.monotonic()
        self.reached: Limit | None = None  # the limit that ended the call

    def cpu_used(self) -> float:
        now = self._cpu_now()
        return 0.0 if now is None else max(0.0, now - self.cpu_at_start)

    def wall_used(self) -> float:
        return time.monotonic() - self.started

    def next_wait(self) -> float | None:
        """Seconds to wait before looking again (short slices while a CPU clock is watched); None once a limit is reached."""
        if self.cpu and self.cpu_used() >= self.cpu.seconds:
            self.reached = self.cpu
            return None
        left = self.wall.seconds - self.wall_used()
        if left <= 0:
            self.reached = self.wall
            return None
        return min(left, POLL) if self.cpu else left

    def exceeded(self) -> str:
        """Which limit ended the call, in words: what follows the call's description in a message."""
        if self.cpu and self.reached is self.cpu:
            return f"used {self.cpu.configured:g} s of CPU time without returning (the limit {self.cpu.scope})"
        if self.cpu:
            return (
                f"blocked for {self.wall.configured:g} s (wall clock) without returning, having used "
                f"{self.cpu_used():.2f} s of CPU time (the backstop {self.wall.scope} for code that sleeps or waits)"
            )
        return f"ran for {self.wall.configured:g} s (wall clock) without returning (the limit {self.wall.scope})"

    def _cpu_now(self) -> float | None:
        return self.cpu_clock() if self.cpu_clock else None


def _tighter(per_call: float, whole_check: float, used: float) -> Limit:
    """The limit a call meets first: its own, or what is left of the check's."""
    left = whole_check - used
    if per_call <= left:
        return Limit(per_call, per_call, PER_CALL)
    return Limit(max(0.0, left), whole_check, WHOLE_CHECK)
