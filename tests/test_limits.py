"""Limits that measure the student's work, not the host (protocol/limits.py), and the CPU share of
each sandboxed worker (sandboxes/cgroups.py): a late worker start, a stalled check process or a
neighbour's busy processes never change a verdict; code that spins or sleeps is still stopped,
and its message says which limit stopped it."""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade, run_check
from autograder.gradebook.store import Gradebook
from autograder.protocol.client import CallTimeout, Worker
from autograder.protocol.limits import WALL_BACKSTOP
from autograder.sandboxes.base import Sandbox
from autograder.sandboxes.cgroups import Cgroup
from autograder.sandboxes.process import ProcessSandbox
from hw1_variants import VARIANTS
from sandboxing import require, sandbox as sandbox_for_tests
from variants import apply

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
STUDENT_FILES = ("neurons.py", "activations.py", "backprop.py", "optimizers.py")

STUDENT = '''
import os, time

def pid():
    return os.getpid()

def work(seconds):
    """Spend seconds of this process's own CPU time, then return."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return seconds

def spin():
    while True:
        pass

def nap(seconds):
    time.sleep(seconds)
    return seconds
'''

# A hostile hw1 submission: importing activations, backprop or optimizers, or calling
# threshold_neuron or perceptron_fit, fills the check's pids limit with processes that spin until
# the check ends, each in a session of its own (so the kernel's autogroups cannot gather them into
# one share). Each lasts until a time limit stops it: 3 import probes and 4 checks of pressure, on
# either side of its instant failures, while the others are graded.
KEEP_BUSY = """import os

def keep_busy(*args, **kwargs):
    while True:  # every process forks until the pids limit says no: it is reached in a moment
        try:
            if os.fork() == 0:
                os.setsid()
        except OSError:
            break
    while True:
        pass
"""
BUSY_NEURONS = KEEP_BUSY + "\nthreshold_neuron = perceptron_fit = keep_busy\n"
BUSY_AT_IMPORT = KEEP_BUSY + "\nkeep_busy()\n"


class DelayedStart(Sandbox):
    """A real sandbox whose workers start `delay` seconds late, as on a loaded host or with a slow container engine."""

    def __init__(self, inner: Sandbox, delay: float):
        self.inner, self.delay = inner, delay
        self.name, self.shares_pids = inner.name, inner.shares_pids

    def start(self, submission: Path, cuda: bool = False):
        time.sleep(self.delay)
        return self.inner.start(submission)


@pytest.fixture(scope="module", params=["process", "namespace"])
def worker(request, tmp_path_factory):
    """A worker whose checks' CPU time the grader sees: the process's own clock, or the jail's cgroup."""
    submission = tmp_path_factory.mktemp("submission")
    (submission / "student.py").write_text(STUDENT)
    sandbox = ProcessSandbox() if request.param == "process" else require("namespace")
    with Worker(sandbox, submission) as started:
        yield started


@pytest.fixture(scope="module")
def hw1():
    return load_reference("hw1", REFERENCE)


def session(worker, call_timeout: float, check_timeout: float = 30.0):
    return worker.session(seed=0, forbid=[], call_timeout=call_timeout, check_timeout=check_timeout)


def check_processes(worker, check) -> list[int]:
    """The host pids of the check's processes: its own where pids are shared, else every process of the jail's cgroup."""
    if worker.sandbox.shares_pids:
        return [check.student.student.pid()]
    return [int(pid) for pid in (worker.proc.cgroup.groups["pids"] / "cgroup.procs").read_text().split()]


def stall(pids: list[int], after: float, seconds: float) -> threading.Thread:
    """Stop the processes for `seconds` of wall clock, `after` seconds from now: what a busy host does to them."""

    def stop_then_continue():
        time.sleep(after)
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(seconds)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=stop_then_continue)
    thread.start()
    return thread


def test_cpu_work_survives_a_stall_longer_than_its_limit(worker):
    check = session(worker, call_timeout=1.0)
    stalled = stall(check_processes(worker, check), after=0.2, seconds=2.5)  # 2.5 s: over the 1 s limit, under its backstop
    started = time.monotonic()
    try:
        assert check.student.student.work(0.5) == 0.5
    finally:
        stalled.join()
    assert time.monotonic() - started > 2.5, "the call ended before the stall: it proves nothing"
    check.end()


def test_a_spinning_call_is_stopped_by_its_cpu_limit(worker):
    check = session(worker, call_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CallTimeout) as stopped:
        check.student.student.spin()
    assert str(stopped.value) == "student.spin() used 0.5 s of CPU time without returning (the limit per call)"
    assert time.monotonic() - started < 0.5 * WALL_BACKSTOP


def test_a_sleeping_call_is_stopped_by_the_wall_clock_backstop(worker):
    check = session(worker, call_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(CallTimeout) as stopped:
        check.student.student.nap(60)
    waited = time.monotonic() - started
    message = str(stopped.value)
    assert message.startswith("student.nap(60) blocked for 1.5 s (wall clock) without returning, having used 0.0"), message
    assert message.endswith("s of CPU time (the backstop per call for code that sleeps or waits)"), message
    assert 0.3 * WALL_BACKSTOP <= waited < 0.3 * WALL_BACKSTOP + 2


def test_the_check_limit_counts_cpu_time_of_all_its_calls(worker):
    check = session(worker, call_timeout=1.0, check_timeout=1.2)
    assert check.student.student.work(0.7) == 0.7
    with pytest.raises(CallTimeout, match=r"^student.work\(0.7\) used 1.2 s of CPU time without returning \(the limit for the whole check\)$"):
        check.student.student.work(0.7)


def test_a_late_worker_start_is_not_charged_to_the_first_check(hw1):
    """The worker starts 3 s late; the check's whole budget is 2 s: it passes all the same."""
    spec = next(s for s in hw1.checks if s.id == "neurons.threshold_neuron.output")
    short = dataclasses.replace(spec, timeout=2.0, call_timeout=2.0)
    with Worker(DelayedStart(sandbox_for_tests(), delay=3.0), REFERENCE) as worker:
        verdict = run_check(hw1, short, worker, "ref")
    assert (verdict.status, verdict.message) == ("passed", "")


@pytest.mark.slow
def test_the_reference_scores_full_marks_when_its_worker_starts_15_s_late(hw1):
    result = grade(hw1, REFERENCE, DelayedStart(sandbox_for_tests(), delay=15.0), "ref")
    lost = {c.id: c.message for c in result.checks if c.status != "passed"}
    assert (result.score, result.max_score, lost) == (15.0, 15.0, {})


def test_the_cpu_share_is_written_to_a_jailed_workers_cgroup_v1(tmp_path):
    sandbox = require("namespace")
    (tmp_path / "student.py").write_text(STUDENT)
    with Worker(sandbox, tmp_path) as worker:
        check = session(worker, call_timeout=5.0)
        assert check.student.student.work(0.01) == 0.01  # the worker runs
        cgroup = worker.proc.cgroup
        if cgroup is None or cgroup.version != 1:
            pytest.skip(f"this host's cgroups are not v1 with a cpu controller ({cgroup and cgroup.version})")
        if "cpu" not in cgroup.groups:
            pytest.skip(f"no v1 cpu controller here: {cgroup.unlimited}")
        written = {name: (cgroup.groups["cpu"] / name).read_text().strip() for name in ("cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares")}
        assert written == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000", "cpu.shares": "1024"}
        members = set((cgroup.groups["cpu"] / "cgroup.procs").read_text().split())
        assert str(worker.proc.template.proc.pid) in members, "the worker's jail is not in its cpu group"
        check.end()


def fake_v2_cgroup(directory: Path, controllers: str) -> Path:
    """A directory laid out as a delegated cgroup v2 offering `controllers` (cgroupfs files are plain files here)."""
    directory.mkdir()
    (directory / "cgroup.controllers").write_text(controllers + "\n")
    (directory / "cgroup.subtree_control").write_text("\n")
    return directory


def test_cgroup_v2_gets_a_cpu_max_and_weight(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CGROUP", str(fake_v2_cgroup(tmp_path / "delegated", "cpuset cpu io memory pids")))
    cgroup = Cgroup.create(memory_bytes=1 << 30, pids=64, cpus=1.5)
    (group,) = cgroup.directories
    written = {name: (group / name).read_text() for name in sorted(os.listdir(group))}
    assert written == {"cpu.max": "150000 100000", "cpu.weight": "100", "memory.max": str(1 << 30), "pids.max": "64"}
    assert cgroup.unlimited == []


def test_cgroup_v2_without_a_cpu_controller_keeps_memory_and_pids_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CGROUP", str(fake_v2_cgroup(tmp_path / "delegated", "memory pids")))
    cgroup = Cgroup.create(memory_bytes=1 << 30, pids=64)
    (group,) = cgroup.directories
    assert sorted(os.listdir(group)) == ["memory.max", "pids.max"]
    assert cgroup.unlimited == ["CPU share (no cpu controller)"]


# --- a neighbour that keeps its pids limit of processes busy, in the same batch ---------------

STARVED = 3.0  # times the quiet run's grading time: beyond this, a neighbour starved the others


def class_folder(folder: Path, students: dict[str, str | None]) -> Path:
    """A class of hw1 submissions: the reference with a single-bug variant applied (a name from
    hw1_variants; None: none), or "busy", the hostile neighbour."""
    variants = {v.name: v for v in VARIANTS}
    for student, change in students.items():
        directory = folder / student
        directory.mkdir(parents=True)
        if change == "busy":
            (directory / "neurons.py").write_text(BUSY_NEURONS)
            for name in STUDENT_FILES[1:]:
                (directory / name).write_text(BUSY_AT_IMPORT)
            continue
        for name in STUDENT_FILES:
            shutil.copy(REFERENCE / name, directory / name)
        if change:
            apply(variants[change], directory)
    return folder


def batch_scores(folder: Path, db: Path) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Grade the class as an instructor does (two submissions at once, jailed): student -> check id -> score,
    and student -> seconds its grading took."""
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "batch", "hw1", str(folder), "--db", str(db), "--root", str(ROOT),
         "--workers", "2", "--sandbox", "namespace"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    with Gradebook(db) as gradebook:
        stored = gradebook.submissions("hw1")
    print(folder.name, {s.result.student: f"{s.result.score:g}/{s.result.max_score:g} in {s.seconds:.0f} s" for s in stored})
    return {s.result.student: {c.id: c.score for c in s.result.checks} for s in stored}, {s.result.student: s.seconds for s in stored}


@pytest.mark.slow
def test_a_neighbour_with_its_pids_limit_of_busy_processes_changes_no_other_score(tmp_path):
    require("namespace")
    others = {"ref": None, "variant": "sigmoid_wrong_derivative"}
    quiet, quiet_seconds = batch_scores(class_folder(tmp_path / "quiet", others), tmp_path / "quiet.sqlite")
    # "busy" sorts first: it is graded from the start, beside the others (one after the other).
    noisy, noisy_seconds = batch_scores(class_folder(tmp_path / "noisy", {"busy": "busy", **others}), tmp_path / "noisy.sqlite")
    assert sum(quiet["ref"].values()) == 15.0 and sum(quiet["variant"].values()) < 15.0
    for student in others:
        differ = {check: (score, noisy[student].get(check)) for check, score in quiet[student].items() if noisy[student].get(check) != score}
        assert not differ, f"{student}: check -> (quiet score, score beside the busy neighbour): {differ}"
    # Starved, the reference's grading took 4x as long here (its calls were light enough to finish in time).
    slowest = max(noisy_seconds[s] / quiet_seconds[s] for s in others)
    assert slowest < STARVED, f"grading beside the busy neighbour took {slowest:.1f}x as long as beside a quiet one"
