"""Timed checks: races between real workers, the grader's clocks, and what a race refuses.

The submissions here are one-function modules, `mm.f(x) = x @ x.T` written
several ways, so that each race is short and its verdict is far from the
threshold either way.
"""

import time

import pytest
import torch

from autograder.checks import timing
from autograder.checks.failures import CheckFailed
from autograder.checks.tape import ReferenceProxy, Tape
from autograder.checks.trial import Trial
from autograder.protocol.client import Worker
from autograder.sandboxes import get_sandbox
from sandboxing import require

SOLUTIONS = {
    "vectorized": "def f(x):\n    return x @ x.T\n",
    "element_loop": (
        "import torch\n"
        "def f(x):\n"
        "    out = torch.empty(len(x), len(x), dtype=x.dtype)\n"
        "    for i in range(len(x)):\n"
        "        for j in range(len(x)):\n"
        "            out[i, j] = x[i] @ x[j]\n"
        "    return out\n"
    ),
    "fast_but_wrong": "import torch\ndef f(x):\n    return torch.zeros(len(x), len(x), dtype=x.dtype)\n",
    "memoizes_first_answer": (
        "answer = []\n"
        "def f(x):\n"
        "    if not answer:\n"
        "        answer.append(x @ x.T)\n"
        "    return answer[0]\n"
    ),
    "busy_background_thread": (
        "import threading, time\n"
        "def spin(seconds):  # until this thread has used `seconds` of CPU\n"
        "    end = time.thread_time() + seconds\n"
        "    while time.thread_time() < end:\n"
        "        pass\n"
        "def f(x):\n"
        "    threading.Thread(target=spin, args=(0.3,)).start()\n"
        "    return x @ x.T\n"
    ),
    "broken": "def f(x):\n    raise RuntimeError('the reference is broken')\n",
}


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    base = tmp_path_factory.mktemp("timing")
    made = {}
    for name, source in SOLUTIONS.items():
        (base / name).mkdir()
        (base / name / "mm.py").write_text(source)
        made[name] = base / name
    return made


@pytest.fixture(scope="module")
def workers(directories):
    """One warm worker per side, solution and link, for the whole module."""
    started = {}

    def get(name, link, side):
        if (name, link, side) not in started:
            sandbox = {"socket": lambda: get_sandbox("process"), "pipes": _pipes, "namespace": _jail}[link]()
            started[name, link, side] = Worker(sandbox, directories[name])
        return started[name, link, side]

    yield get
    for worker in started.values():
        worker.close()


@pytest.fixture
def race_between(workers):
    """(student, reference[, link]) -> a fresh session of each, ended after the test."""
    sessions = []

    def start(student, reference, link="socket"):
        limits = dict(seed=1, forbid=[], call_timeout=20, check_timeout=120)
        sessions.extend(workers(name, link, side).session(**limits) for name, side in ((student, "student"), (reference, "reference")))
        return sessions[-2:]

    yield start
    for session in sessions:
        session.end()


def _jail():
    """The namespace sandbox, where the grader reads CPU time from the worker's cgroup."""
    sandbox = require("namespace")
    probe = sandbox._cgroup()
    if probe is None:
        pytest.skip("no cgroup here for the namespace sandbox to count CPU time in")
    probe.destroy()
    return sandbox


def _pipes():
    from autograder.sandboxes.process import ProcessSandbox

    return ProcessSandbox(link="pipes")


def inputs():
    return {"x": torch.randn(100, 8, dtype=torch.float64)}


def call_f(code, x):
    return code.mm.f(x)


def expect_fast(student, reference):
    trial = Trial(student, ReferenceProxy(None, "", Tape()), Tape(), seed=0, pacer=reference)
    trial.expect_fast(call_f, inputs, what="mm.f")
    return trial.races[-1]


def test_vectorized_code_passes_and_both_clocks_are_used(race_between):
    race = expect_fast(*race_between("vectorized", "vectorized"))
    assert race.cpu_clock  # the process sandbox shares pids: the kernel's CPU clock is read too
    assert len(race.student) == len(race.reference) == timing.ROUNDS
    assert race.ratio < timing.THRESHOLD


def test_python_loops_fail_with_the_ratio_in_the_message(race_between):
    with pytest.raises(CheckFailed) as failure:
        expect_fast(*race_between("element_loop", "vectorized"))
    assert "mm.f is too slow" in failure.value.message and "x its time (limit 10x" in failure.value.message
    assert failure.value.summary == failure.value.message  # timings are no secret: hidden checks show them


def test_a_clearly_hopeless_race_stops_early(race_between):
    student, reference = race_between("element_loop", "vectorized")
    race = timing.run_race(student, reference, None, call_f, inputs, lambda got, expected: None)
    assert len(race.student) < timing.ROUNDS and race.ratio > timing.HOPELESS * timing.THRESHOLD


@pytest.mark.parametrize("name", ["fast_but_wrong", "memoizes_first_answer"])
def test_every_round_is_verified_against_the_reference(race_between, name):
    """Fresh inputs each round: a quick wrong answer, or yesterday's answer, fails."""
    with pytest.raises(CheckFailed, match=r"mm\.f \(timed\)"):
        expect_fast(*race_between(name, "vectorized"))


def test_a_broken_reference_is_an_internal_error_not_the_students(race_between):
    with pytest.raises(RuntimeError, match="the reference solution failed in the race"):
        expect_fast(*race_between("vectorized", "broken"))


@pytest.mark.parametrize("link", ["socket", "namespace"])
def test_the_cpu_clock_counts_every_thread_of_the_check_process(race_between, link):
    """The check's own CPU clock in the process sandbox; its worker's cgroup in the jail, whose pids are not ours."""
    student, _ = race_between("busy_background_thread", "vectorized", link=link)
    before = student.cpu_time()
    student.student.mm.f(torch.randn(4, 3))  # returns at once; its thread goes on to use 0.3 s of CPU
    give_up = time.monotonic() + 20
    while student.cpu_time() - before < 0.3 and time.monotonic() < give_up:
        time.sleep(0.05)
    assert student.cpu_time() - before >= 0.3


def test_without_the_process_in_view_only_wall_time_is_used(race_between):
    """Over the relay link (docker's) the grader cannot see the child's pid: wall time alone."""
    student, reference = race_between("vectorized", "vectorized", link="pipes")
    assert student.cpu_time() is None
    race = timing.run_race(student, reference, None, call_f, inputs, lambda got, expected: None, rounds=3)
    assert not race.cpu_clock and len(race.student) == 3


def test_a_timed_check_without_the_reference_is_refused(race_between):
    student, _ = race_between("vectorized", "vectorized")
    trial = Trial(student, ReferenceProxy(None, "", Tape()), Tape(), seed=0)
    with pytest.raises(RuntimeError, match="needs the reference"):
        trial.expect_fast(call_f, inputs, what="mm.f")


def test_timed_checks_must_be_hidden():
    from autograder.checks import CheckList

    with pytest.raises(ValueError, match="must be hidden"):
        CheckList().public("mm.f.timed", points=1)
    checks = CheckList()
    checks.hidden("mm.f.timed", points=1, cuda=0.5)(lambda t: None)
    cpu, cuda = checks.specs
    assert (cpu.id, cpu.device, cpu.timed) == ("mm.f.timed", "cpu", True)
    assert (cuda.id, cuda.device, cuda.twin, cuda.timed, cuda.points) == ("mm.f.timed.cuda", "cuda", "mm.f.timed", True, 0.5)

