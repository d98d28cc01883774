"""Timed checks: races between real workers, the grader's clocks, and what a race refuses.

The submissions here are one-file modules, `mm.f(x) = x @ x.T` written several
ways and a small layer `mm.Layer`, so that each race is short and its verdict
is far from the threshold either way.
"""

import time

import pytest
import torch

from autograder.checks import timing
from autograder.checks.failures import CheckFailed
from autograder.checks.tape import ReferenceProxy, Tape
from autograder.checks.trial import Trial
from autograder.protocol import plan, wire
from autograder.protocol.client import Worker
from autograder.sandboxes import get_sandbox
from sandboxing import require

SPIN = (
    "import time\n"
    "def spin(seconds):  # until this thread has used `seconds` of CPU\n"
    "    end = time.thread_time() + seconds\n"
    "    while time.thread_time() < end:\n"
    "        pass\n"
)
LAYER = (
    "class Layer:\n"
    "    def __init__(self):\n"
    "        {init}\n"
    "    @property\n"
    "    def scale(self):\n"
    "        return self._scale\n"
    "    @scale.setter\n"
    "    def scale(self, value):\n"
    "        {setter}\n"
    "        self._scale = value\n"
    "    def forward(self, x):\n"
    "        {forward}\n"
    "        self.x = x\n"
    "        return self._scale * x @ x.T\n"
    "    def backward(self, grad):\n"
    "        return self._scale * (grad + grad.T) @ self.x\n"
)
FAST_LAYER = LAYER.format(init="pass", setter="pass", forward="pass")
# A cache of answers by input content, and a count of its hits that the test reads back.
CACHE = (
    "answers, hits = {}, [0]\n"
    "def cached(x, compute):\n"
    "    key = x.numpy().tobytes()\n"
    "    if key in answers:\n"
    "        hits[0] += 1\n"
    "    else:\n"
    "        answers[key] = compute(x)\n"
    "    return answers[key]\n"
    "def hit_count():\n"
    "    return hits[0]\n"
)
SLOW_SQUARE = (
    "def slow_square(x):\n"
    "    out = torch.empty(len(x), len(x), dtype=x.dtype)\n"
    "    for i in range(len(x)):\n"
    "        for j in range(len(x)):\n"
    "            out[i, j] = x[i] @ x[j]\n"
    "    return out\n"
)
SOLUTIONS = {
    "vectorized": "def f(x):\n    return x @ x.T\n" + FAST_LAYER,
    "element_loop": "import torch\n" + SLOW_SQUARE + "def f(x):\n    return slow_square(x)\n",
    "fast_but_wrong": "import torch\ndef f(x):\n    return torch.zeros(len(x), len(x), dtype=x.dtype)\n",
    "memoizes_first_answer": (
        "answer = []\n"
        "def f(x):\n"
        "    if not answer:\n"
        "        answer.append(x @ x.T)\n"
        "    return answer[0]\n"
    ),
    "busy_background_thread": SPIN + (
        "import threading\n"
        "def f(x):\n"
        "    threading.Thread(target=spin, args=(0.3,)).start()\n"
        "    return x @ x.T\n"
    ),
    # Returns at once, leaving a thread to work while the grader times the reference.
    "leaves_threads_working": SPIN + (
        "import threading\n"
        "def later(seconds):\n"
        "    time.sleep(0.01)\n"
        "    spin(seconds)\n"
        "def f(x):\n"
        "    threading.Thread(target=later, args=(0.05,)).start()\n"
        "    return x @ x.T\n"
    ),
    "sleeps": "import time\ndef f(x):\n    time.sleep(0.2)  # waiting costs no CPU time\n    return x @ x.T\n",
    "never_returns": "def f(x):\n    while True:\n        pass\n",
    "broken": "def f(x):\n    raise RuntimeError('the reference is broken')\n",
    # Work moved into the set-up of a timed call: the constructor, a setter, the forward before a timed backward.
    "slow_constructor": SPIN + LAYER.format(init="spin(0.02)", setter="pass", forward="pass"),
    "slow_setter": SPIN + LAYER.format(init="pass", setter="spin(0.02)", forward="pass"),
    "slow_forward": SPIN + LAYER.format(init="pass", setter="pass", forward="spin(0.02)"),
    # Correct and vectorized, but answers inputs it has seen before from a cache.
    "caches_by_content": CACHE + "def f(x):\n    return cached(x, lambda x: x @ x.T)\n",
    # Slow, unless it knows the inputs in advance: its first call (the uncounted warm-up) replays its
    # own random stream, as the grader's inputs() below draws them, and caches the answers.
    "replays_its_rng": "import torch\n" + SLOW_SQUARE + CACHE + (
        "def f(x):\n"
        "    if not answers:\n"
        "        replay = torch.Generator().manual_seed(torch.initial_seed())\n"
        "        for _ in range(200):\n"
        "            future = torch.randn((40, 8), generator=replay, dtype=torch.float64)\n"
        "            answers[future.numpy().tobytes()] = future @ future.T\n"
        "    return cached(x, slow_square)\n"
    ),
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
    """(student, reference[, link, call_timeout]) -> a fresh session of each, ended after the test.

    The student's process is seeded with 1, the grader draws the inputs with seed 0 (trial below):
    independent streams, as the grader's are (checks/seeds.py)."""
    sessions = []

    def start(student, reference, link="socket", call_timeout=20):
        limits = dict(seed=1, forbid=[], call_timeout=call_timeout, check_timeout=120)
        pair = [workers(name, link, side).session(**limits) for name, side in ((student, "student"), (reference, "reference"))]
        sessions.extend(pair)
        return pair

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


def trial(student, reference) -> Trial:
    return Trial(student, ReferenceProxy(None, "", Tape()), Tape(), seed=0, pacer=reference)


def call_f(code, x):
    return code.mm.f(x)


def expect_fast(student, reference, repetitions=timing.REPETITIONS):
    """mm.f raced on fresh x (40, 8) drawn from the trial's generator; the Race."""
    t = trial(student, reference)
    t.expect_fast(call_f, lambda: {"x": t.randn(40, 8)}, what="mm.f", repetitions=repetitions)
    return t.races[-1]


def inputs():
    return {"x": torch.randn(40, 8, dtype=torch.float64)}


def test_vectorized_code_passes_and_both_clocks_are_used(race_between):
    race = expect_fast(*race_between("vectorized", "vectorized"))
    assert race.cpu_clock  # the process sandbox shares pids: the kernel's CPU clock is read too
    assert len(race.student) == len(race.reference) == timing.ROUNDS
    assert race.repetitions == timing.REPETITIONS
    assert race.ratio < timing.THRESHOLD


def test_python_loops_fail_with_what_was_measured_in_the_message(race_between):
    with pytest.raises(CheckFailed) as failure:
        expect_fast(*race_between("element_loop", "vectorized"))
    message = failure.value.message
    assert message.startswith("mm.f is too slow: median CPU time per repetition ")
    assert f"times as long (limit {timing.THRESHOLD:g} times)" in message
    assert f"the kernel's CPU-time count of each process over 2 requests of {timing.REPETITIONS} repetitions" in message
    assert "loop" not in message.lower() and "vectoriz" not in message.lower()  # it says what was measured, not why
    assert failure.value.summary == message  # timings are no secret: hidden checks show them


def test_a_clearly_hopeless_race_stops_early(race_between):
    student, reference = race_between("element_loop", "vectorized")
    race = timing.run_race(student, reference, None, call_f, inputs, lambda got, expected: None)
    assert len(race.student) == 2 and race.ratio > timing.HOPELESS * timing.THRESHOLD


def test_a_request_stopped_at_the_call_limit_loses_the_race(race_between):
    with pytest.raises(CheckFailed) as failure:
        expect_fast(*race_between("never_returns", "vectorized", call_timeout=0.5))
    message = failure.value.message
    assert message.startswith("mm.f is too slow: its timed request of 1 repetition was stopped (mm.f (timed) ")
    assert "where the reference took" in message and "of CPU time per repetition" in message


@pytest.mark.parametrize("name", ["fast_but_wrong", "memoizes_first_answer"])
def test_every_repetition_is_verified_against_the_reference(race_between, name):
    """Fresh inputs for every repetition: a quick wrong answer, or yesterday's answer, fails."""
    with pytest.raises(CheckFailed, match=r"mm\.f \(timed\)"):
        expect_fast(*race_between(name, "vectorized"))


def test_a_broken_reference_is_an_internal_error_not_the_students(race_between):
    with pytest.raises(RuntimeError, match="the reference solution failed in the race"):
        expect_fast(*race_between("vectorized", "broken"))


def test_each_request_carries_its_own_inputs_and_nothing_else_reaches_the_student(race_between):
    """Every input set travels with the one timed request that uses it: the student's process gets
    no put, call or other request of a round before (or besides) that round's timed request."""
    student, reference = race_between("vectorized", "vectorized")
    sent, request = [], student.request

    def spy(op, **fields):
        input_sets = fields["args"][-1] if op == "repeat" else []
        sent.append((op, [values["x"].numpy().tobytes() for values in input_sets]))
        return request(op, **fields)

    student.request = spy
    expect_fast(student, reference)
    assert [op for op, _ in sent] == ["repeat"] * (timing.WARMUP + timing.ROUNDS)
    assert [len(xs) for _, xs in sent] == [1] * timing.WARMUP + [timing.REPETITIONS] * timing.ROUNDS
    every_x = [x for _, xs in sent for x in xs]
    assert len(set(every_x)) == len(every_x)  # each input set is new, and used once


@pytest.mark.parametrize("name", ["slow_constructor", "slow_setter", "slow_forward"])
def test_the_set_up_runs_on_the_clock(race_between, name):
    """Constructing the layer, setting a parameter, the forward before a timed backward: all timed."""
    student, reference = race_between(name, "vectorized")
    t = trial(student, reference)

    def forwarded(code, x, grad):
        layer = code.mm.Layer()
        layer.scale = 2.0
        layer.forward(x)
        return {"layer": layer, "grad": grad}

    def draw():
        return {"x": t.randn(40, 8), "grad": t.randn(40, 40)}

    with pytest.raises(CheckFailed, match="mm.Layer.backward is too slow: median CPU time per repetition"):
        t.expect_fast(lambda layer, grad: layer.backward(grad), draw, forwarded, what="mm.Layer.backward")


def test_caching_answers_by_input_content_gains_nothing(race_between):
    student, reference = race_between("caches_by_content", "vectorized")
    race = expect_fast(student, reference)
    assert student.student.mm.hit_count() == 0  # every repetition's inputs were new to it
    assert race.ratio < timing.THRESHOLD


def test_replaying_its_own_random_stream_does_not_foresee_the_inputs(race_between):
    """The warm-up is not counted, but what the student's process can draw is not what the grader draws.
    (Seeded like the grader's generator instead, this submission passes: its cache answers every input.)"""
    student, reference = race_between("replays_its_rng", "vectorized")
    with pytest.raises(CheckFailed, match="mm.f is too slow"):
        expect_fast(student, reference)
    assert student.exit is None and student.student.mm.hit_count() == 0


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


def test_threads_left_working_between_requests_are_charged(race_between):
    """A request is charged all the CPU time its process used since its previous request ended: here
    its threads work while the grader compares results (slowly, so that they are done by the next request)."""
    student, reference = race_between("leaves_threads_working", "vectorized")
    pause = lambda got, expected: time.sleep(0.3)  # noqa: E731
    race = timing.run_race(student, reference, None, call_f, inputs, pause, rounds=2, repetitions=2)
    assert race.cpu_ratio > timing.THRESHOLD


def test_time_spent_waiting_counts_by_the_wall_clock(race_between):
    """Sleeping costs no CPU time; work done elsewhere while the process waits would not either.
    (The sleep is long, so that the reference's wall-clock time, longer on a loaded host, stays far below it.)"""
    with pytest.raises(CheckFailed) as failure:
        expect_fast(*race_between("sleeps", "vectorized"), repetitions=2)
    assert "its process waited, and the wall-clock ratio counts, divided by 3" in failure.value.message


def test_without_the_process_in_view_only_wall_time_is_used(race_between):
    """Over the relay link (docker's) the grader cannot see the child's pid: wall time alone."""
    student, reference = race_between("vectorized", "vectorized", link="pipes")
    assert student.cpu_time() is None
    race = timing.run_race(student, reference, None, call_f, inputs, lambda got, expected: None, rounds=3)
    assert not race.cpu_clock and len(race.student) == 3 and race.ratio == race.wall_ratio
    assert "measured by the grader's wall clock" in race.describe(timing.THRESHOLD)


def test_a_timed_check_without_the_reference_is_refused(race_between):
    student, _ = race_between("vectorized", "vectorized")
    with pytest.raises(RuntimeError, match="needs the reference"):
        trial(student, None).expect_fast(call_f, inputs, what="mm.f")


def test_timed_checks_must_be_hidden():
    from autograder.checks import CheckList

    with pytest.raises(ValueError, match="must be hidden"):
        CheckList().public("mm.f.timed", points=1)
    checks = CheckList()
    checks.hidden("mm.f.timed", points=1, cuda=0.5)(lambda t: None)
    cpu, cuda = checks.specs
    assert (cpu.id, cpu.device, cpu.timed) == ("mm.f.timed", "cpu", True)
    assert (cuda.id, cuda.device, cuda.twin, cuda.timed, cuda.points) == ("mm.f.timed.cuda", "cuda", "mm.f.timed", True, 0.5)


# --- the recorded program (protocol/plan.py) ---------------------------------


def test_a_program_records_reads_sets_and_calls_in_order():
    def prepare(code, x, w):
        layer = code.mm.Layer(3, bias=True)
        layer.weight = w
        layer.forward(x)
        return {"layer": layer, "x": x}

    recorded = plan.record(prepare, lambda layer, x: (layer.backward(x), layer.dweight), ["x", "w"])
    slot = lambda number: wire.Ref(number, plan.SLOT, plan.SLOT)  # noqa: E731
    assert recorded.inputs == ["x", "w"]
    assert recorded.steps == [
        ["get", 0, "mm"],  # slot 3
        ["get", 3, "Layer"],  # 4
        ["call", 4, [3], {"bias": True}],  # 5: the layer
        ["set", 5, "weight", slot(2)],
        ["get", 5, "forward"],  # 6
        ["call", 6, [slot(1)], {}],  # 7
        ["get", 5, "backward"],  # 8
        ["call", 8, [slot(1)], {}],  # 9
        ["get", 5, "dweight"],  # 10: read after backward ran
    ]
    assert recorded.result == (slot(9), slot(10))


@pytest.mark.parametrize(
    "timed",
    [lambda code, x: code.mm.f(x) + 1, lambda code, x: code.mm.f(x)[0], lambda code, x: code.mm.f(x) if x else None],
    ids=["arithmetic", "indexing", "truth value"],
)
def test_a_program_refuses_what_it_cannot_repeat(timed):
    with pytest.raises(TypeError, match="a timed check may only read, set and call attributes|unsupported operand"):
        plan.record(None, timed, ["x"])


def test_the_worker_runs_a_program_once_per_input_set_and_returns_only_plain_data(race_between):
    student, _ = race_between("vectorized", "vectorized")
    squares = plan.record(None, call_f, ["x"])
    xs = [torch.randn(3, 2, dtype=torch.float64) for _ in range(3)]
    results = student.repeat(squares, [{"x": x} for x in xs], describe="mm.f")
    assert len(results) == 3 and all(torch.equal(got, x @ x.T) for got, x in zip(results, xs))
    layers = plan.record(None, lambda code, x: (code.mm.Layer(), code.mm.f(x)), ["x"])
    (layer, square), = student.repeat(layers, [{"x": xs[0]}], describe="mm.Layer")
    assert isinstance(layer, wire.Opaque) and layer.type == "mm.Layer" and torch.equal(square, xs[0] @ xs[0].T)
