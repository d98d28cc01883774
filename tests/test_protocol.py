"""The worker protocol against real worker processes: what crosses, what does not,
and how every way a child can misbehave ends up as one check's clear failure."""

import json
import os
import struct
import time

import pytest
import torch

from autograder.protocol import wire
from autograder.protocol.client import CallTimeout, StudentError, Worker, WorkerDied
from autograder.protocol.limits import WALL_BACKSTOP
from autograder.protocol.proxy import Remote
from autograder.sandboxes import get_sandbox
from autograder.sandboxes.process import ProcessSandbox
from sandboxing import require

STUDENT = '''
import os, sys, signal, time, socket
import torch

class Layer:
    def __init__(self, scale=2.0):
        self.scale = scale
        self.W = torch.ones(2, 3)

    def forward(self, x):
        return x * self.scale

    def twice(self, other, x):
        return other.forward(other.forward(x))

def add(a, b=1):
    return a + b

def shout(n):
    print("x" * n)
    return n

def loop_forever():
    while True:
        pass

def exit_now(code):
    os._exit(code)

def crash():
    import ctypes
    ctypes.string_at(0)  # a real segmentation fault (a signal sent to oneself is ignored by a pid 1)

def raise_value_error():
    raise ValueError("bad input 42")

def give_numpy():
    import numpy
    return numpy.zeros(3)

def give_object():
    return object()

def give_nested():
    return {"a": (1, 2.5, None, True), "b": [torch.arange(3), "text"], "c": float("nan")}

class Sub(torch.Tensor):
    pass

def give_subclass():
    return torch.ones(2).as_subclass(Sub)

def give_complex():
    return torch.ones(2, dtype=torch.complex64)

def give_huge():
    return torch.zeros(80 * 1024 * 1024)  # 320 MB, over the payload cap

def spawn_and_return(name):
    pid = os.fork()
    if pid == 0:  # a grandchild that tries to outlive the check, named so the host can find it
        import ctypes
        ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
        time.sleep(30)
        os._exit(0)
    return pid

def forge_control_frame():
    import json, struct
    for fd in range(3, 64):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        body = json.dumps({"zygote": "exited", "status": "exit 0", "buffers": []}).encode()
        try:
            sock.sendall(struct.pack(">I", len(body)) + body)
        except OSError:
            pass
    return 1

def give_garbage():
    for fd in range(3, 64):  # whatever the connection is, write nonsense on it
        try:
            os.write(fd, b"\\xff\\xff\\xff\\xff garbage")
        except OSError:
            pass
    time.sleep(5)

def mutate(x):
    x.add_(1)
    return None

def counter():
    global COUNT
    COUNT = globals().get("COUNT", 0) + 1
    return COUNT
'''


def started(link: str):
    """A process sandbox linked both ways (checks' sockets handed over directly, or relayed by the
    zygote), and the namespace sandbox, which hands sockets over from inside its jail."""
    return require("namespace") if link == "namespace" else ProcessSandbox(link=link)


@pytest.fixture(scope="module", params=["socket", "pipes", "namespace"])
def worker(request, tmp_path_factory):
    submission = tmp_path_factory.mktemp("submission")
    (submission / "student.py").write_text(STUDENT)
    with Worker(started(request.param), submission) as w:
        yield w


def session(worker, call_timeout=5.0, total=20.0, forbid=()):
    return worker.session(seed=1, forbid=list(forbid), call_timeout=call_timeout, check_timeout=total)


def test_values_round_trip_through_the_codec():
    value = {"t": torch.randn(3, 4, dtype=torch.float64), "i": torch.arange(5), "b": torch.tensor([True, False]),
             "h": torch.ones(2, dtype=torch.bfloat16), "e": torch.zeros(0, 3), "s": torch.tensor(2.5),
             "nested": [(1, "two", None, False, float("inf"))]}
    buffers = []
    encoded = wire.encode_value(value, buffers)
    frame = wire.FrameReader().feed(wire.encode_frame({"v": encoded}, buffers))[0]
    back = wire.decode_value(frame.header["v"], frame.buffers)
    for key in ("t", "i", "b", "h", "e", "s"):
        assert back[key].dtype == value[key].dtype and torch.equal(back[key], value[key])
    assert back["nested"] == [(1, "two", None, False, float("inf"))]


@pytest.mark.parametrize("bad", [
    {"$tensor": 0, "dtype": "float64", "shape": [3], "device": "cpu"},  # buffer has 8 bytes, needs 24
    {"$tensor": 0, "dtype": "complex64", "shape": [1], "device": "cpu"},
    {"$tensor": 0, "dtype": "float64", "shape": [-1], "device": "cpu"},
    {"$tensor": 5, "dtype": "float64", "shape": [1], "device": "cpu"},
    {"$tensor": 0, "dtype": "float64", "shape": [1], "device": "tpu"},
    {"$pickle": "gASV"},
    {"$tuple": [1], "extra": 2},
])
def test_malformed_values_are_protocol_errors(bad):
    with pytest.raises(wire.ProtocolError):
        wire.decode_value(bad, [memoryview(bytes(8))])


def test_frame_caps():
    with pytest.raises(wire.ProtocolError, match="header"):
        wire.FrameReader().feed(struct.pack(">I", wire.MAX_HEADER_BYTES + 1))
    body = json.dumps({"buffers": [1 << 40]}).encode()
    with pytest.raises(wire.ProtocolError, match="payload"):
        wire.FrameReader().feed(struct.pack(">I", len(body)) + body)
    with pytest.raises(wire.ProtocolError, match="JSON"):
        wire.FrameReader().feed(struct.pack(">I", 3) + b"{{{")


def test_frames_cut_from_pieces():
    data = wire.encode_frame({"a": 1}, [bytes(range(10))]) + wire.encode_frame({"b": 2})
    reader, frames = wire.FrameReader(), []
    for i in range(len(data)):
        frames += reader.feed(data[i : i + 1])
    assert [f.header["a" if i == 0 else "b"] for i, f in enumerate(frames)] == [1, 2]
    assert bytes(frames[0].buffers[0]) == bytes(range(10))


def test_calls_objects_and_attributes(worker):
    s = session(worker)
    layer = s.student.student.Layer(scale=3.0)
    assert isinstance(layer, Remote)
    x = torch.arange(4, dtype=torch.float64)
    assert torch.equal(layer.forward(x), x * 3)
    assert s.last_call == "student.Layer(scale=3.0).forward(float64[4])"
    assert torch.equal(layer.W, torch.ones(2, 3))
    layer.scale = 0.5
    assert torch.equal(layer.forward(x), x * 0.5)
    other = s.student.student.Layer()
    assert torch.equal(layer.twice(other, x), x * 4)  # handles travel as arguments
    assert s.student.student.add(2, b=5) == 7
    assert s.student.student.give_nested()["b"][1] == "text"
    assert s.end()["status"] == "ended"


def test_each_session_is_a_fresh_process(worker):
    for _ in range(2):
        s = session(worker)
        assert s.student.student.counter() == 1
        s.end()


def test_student_exception_is_reported_with_location(worker):
    s = session(worker)
    with pytest.raises(StudentError) as info:
        s.student.student.raise_value_error()
    assert info.value.type == "ValueError" and "bad input 42" in str(info.value)
    assert info.value.where.startswith("student.py:")
    assert "42" not in info.value.summary  # the value-free form for hidden checks
    s.end()


def test_non_plain_results_do_not_cross(worker):
    s = session(worker)
    assert isinstance(s.student.student.give_numpy(), wire.Opaque)
    assert repr(s.student.student.give_object()) == "<object of type 'object', not plain data>"
    subclass = s.student.student.give_subclass()
    assert type(subclass) is torch.Tensor and torch.equal(subclass, torch.ones(2))
    with pytest.raises(StudentError, match="complex64"):
        s.student.student.give_complex()
    s.end()


def spent(worker, seconds: float) -> str:
    """What a spinning call's time-out says: CPU time where the grader sees the check's CPU clock
    (a socket handed over), wall clock where the zygote relays."""
    return f"used {seconds:g} s of CPU time" if worker.direct else f"ran for {seconds:g} s \\(wall clock\\)"


def test_timeout_kills_only_that_check(worker):
    s = session(worker, call_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CallTimeout, match=f"loop_forever\\(\\) {spent(worker, 0.5)} without returning \\(the limit per call\\)"):
        s.student.student.loop_forever()
    assert time.monotonic() - started < 0.5 * WALL_BACKSTOP + 1
    assert s.exit is not None
    fresh = session(worker)
    assert fresh.student.student.add(1) == 2
    fresh.end()


def test_check_limit_bounds_the_sum_of_calls(worker):
    s = session(worker, call_timeout=5.0, total=0.3)
    with pytest.raises(CallTimeout, match=f"{spent(worker, 0.3)} without returning \\(the limit for the whole check\\)"):
        s.student.student.loop_forever()


@pytest.mark.parametrize("call, expected", [
    (lambda m: m.exit_now(3), "exit 3"),
    (lambda m: m.crash(), "SIGSEGV"),
    (lambda m: m.give_huge(), "protocol error"),
    (lambda m: m.forge_control_frame(), "forged a control frame"),
    (lambda m: m.give_garbage(), "protocol error"),
])
def test_child_death_is_an_error_of_that_check(worker, call, expected):
    s = session(worker)
    with pytest.raises(WorkerDied, match=expected):
        call(s.student.student)
    fresh = session(worker)
    assert fresh.student.student.add(1) == 2
    fresh.end()


def test_output_is_captured_apart_and_capped(worker):
    s = session(worker)
    assert s.student.student.shout(10) == 10
    assert s.student.student.shout(200_000) == 200_000
    output = s.end()["output"]
    assert output.startswith("x" * 10 + "\n")
    assert "more bytes of output dropped" in output and len(output) < 70_000


def _alive_named(name: str) -> bool:
    """Whether a live process of this name runs anywhere on the host (the sandbox's pids are not ours)."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as status:
                text = status.read()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        if text.startswith(f"Name:\t{name}\n") and "\nState:\tZ" not in text:  # a zombie is dead
            return True
    return False


def test_grandchildren_die_with_the_check(worker):
    s = session(worker)
    name = f"gc{os.getpid() % 10000}-{time.monotonic_ns() % 100000}"
    s.student.student.spawn_and_return(name)
    assert _wait_for(lambda: _alive_named(name))  # once it has named itself
    s.end()
    assert _wait_for(lambda: not _alive_named(name))


def _wait_for(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_put_and_fetch_show_in_place_changes(worker):
    s = session(worker)
    handle = s.put(torch.zeros(3))
    s.student.student.mutate(handle)
    assert torch.equal(s.fetch(handle), torch.ones(3))
    s.end()


def test_several_values_put_and_fetched_in_one_round_trip_each(worker):
    s = session(worker)
    first, second, third = s.put_all([torch.zeros(3), torch.zeros(2, 2), torch.arange(4)])
    assert [first._path, second._path, third._path] == ["float32[3]", "float32[2, 2]", "int64[4]"]
    s.student.student.mutate(second)
    after = s.fetch_all([third, second, first])
    assert [a.tolist() for a in after] == [[0, 1, 2, 3], [[1.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 0.0]]
    with pytest.raises(StudentError, match="a list of handles"):
        s.request("fetch", refs=first._ref.id)
    with pytest.raises(StudentError, match="unknown object handle"):
        s.request("fetch", refs=[first._ref.id, 999])
    s.end()


def test_put_values_travel_with_the_next_request_and_keep_one_handle_each(worker):
    s = session(worker)
    sent = []
    request = s.request
    s.request = lambda op, **fields: sent.append(op) or request(op, **fields)
    first, second = s.put_all([torch.zeros(2), torch.ones(3)])
    assert sent == [] and first._ref.id != second._ref.id
    s.student.student.mutate(first)  # the import, carrying both values, then the lookup and the call
    assert [value.tolist() for value in s.fetch_all([first, second])] == [[1.0, 1.0], [1.0, 1.0, 1.0]]
    assert sent == ["import", "get", "call", "fetch"]
    with pytest.raises(StudentError, match="new negative handle numbers"):
        s.request("fetch", refs=[], put={"refs": [first._ref.id], "values": [1]})  # a number already in use
    s.end()


def test_a_calls_answer_brings_back_the_values_asked_for_and_only_the_last_requests_count(worker):
    s = session(worker)
    kept, changed = s.put_all([torch.zeros(3), torch.zeros(2, 2)])
    mutate = s.student.student.mutate
    sent = []
    request = s.request
    s.request = lambda op, **fields: sent.append(op) or request(op, **fields)
    with s.fetching([kept, changed]) as after:
        mutate(changed)
    assert sent == ["call"], "the values came back with the call's answer"
    assert [value.tolist() for value in after.values] == [[0.0, 0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]]]
    with s.fetching([kept]) as after:
        mutate(changed)
        s.student.student.add  # a lookup last: no call answered after it, so nothing is kept
    assert after.values is None
    with s.fetching([kept]) as after:
        pass
    assert after.values is None and s.fetch_along is None
    s.end()


def test_a_cuda_checks_process_starts_before_its_limits_do(worker):
    """device "cuda": the process starts CUDA (where there is one) before it serves, uncharged; then
    it serves like any other, in every way of carrying frames."""
    s = worker.session(seed=1, forbid=[], call_timeout=5.0, check_timeout=20.0, device="cuda")
    assert s.limits.waited == 0.0
    assert s.student.student.add(2, b=3) == 5
    assert 0.0 < s.limits.waited < 5.0
    s.end()


def test_starting_cuda_is_charged_neither_to_the_checks_cpu_nor_to_its_wall_time():
    """A fake check process that takes 3 s of CPU and 1 s of wall time to answer `ready`, against a
    check's limits of 0.5 s: the check still has all of them."""
    import socket
    import threading
    import types

    from autograder.protocol.client import Connection, Session
    from autograder.protocol.limits import WallLimit

    clock = [100.0]  # the check's CPU clock, as the grader reads it
    worker = types.SimpleNamespace(proc=types.SimpleNamespace(cpu_seconds=lambda: clock[0]))
    ours, theirs = socket.socketpair()

    def check_process():
        link = Connection(theirs.fileno(), theirs.fileno(), theirs)
        assert link.receive(WallLimit(5)).header["op"] == "ready"
        clock[0] += 3.0
        time.sleep(1.0)
        link.send({"ok": None}, [], WallLimit(5))

    thread = threading.Thread(target=check_process)
    thread.start()
    session = Session(worker, None, Connection(ours.fileno(), ours.fileno(), ours), 0.5, 0.5)
    session.wait_started(5.0)
    thread.join()
    budget = session.limits.call()
    assert budget.cpu.seconds == 0.5 and session.limits.waited == 0.0
    ours.close()
    theirs.close()


def test_missing_module_and_bad_import(worker, tmp_path):
    s = session(worker)
    with pytest.raises(StudentError, match="nothere.py is missing"):
        s.student.nothere
    s.end()


def test_forbidden_api_guard_runs_in_the_child(tmp_path):
    (tmp_path / "student.py").write_text("import torch\ndef f(x):\n    return torch.sigmoid(x)\n")
    with Worker(get_sandbox("process"), tmp_path) as w:
        s = session(w, forbid=["torch.sigmoid"])
        with pytest.raises(StudentError, match="ForbiddenAPIError"):
            s.student.student.f(torch.zeros(2))
        assert any("torch.sigmoid" in v for v in s.violations())
        s.end()


def test_every_reply_after_a_refusal_carries_the_guards_first_findings(tmp_path):
    (tmp_path / "student.py").write_text(
        "import torch\n"
        "def quiet(x):\n    return x + 1\n"
        "def hidden_use(x, times):\n"
        "    for _ in range(times):\n"
        "        try:\n            torch.sigmoid(x)\n        except Exception:\n            pass\n"
        "    return x\n"
    )
    with Worker(get_sandbox("process"), tmp_path) as w:
        s = session(w, forbid=["torch.sigmoid"])
        s.student.student.quiet(torch.zeros(2))
        assert s.found_violations == []
        s.student.student.hidden_use(torch.zeros(2), 1000)  # refused and caught: the reply is a success
        assert len(s.found_violations) == wire.MAX_VIOLATIONS
        assert all("torch.sigmoid" in v for v in s.found_violations)
        s.student.student.quiet(torch.zeros(2))  # and later replies still say so
        assert len(s.found_violations) == wire.MAX_VIOLATIONS
        assert len(s.violations()) == 1000  # the request still answers the whole list
        s.end()


@pytest.mark.parametrize("link", ["socket", "pipes", "namespace"])
def test_a_dead_zygote_is_restarted_for_the_next_check(tmp_path, link):
    (tmp_path / "student.py").write_text(STUDENT)
    with Worker(started(link), tmp_path) as w:
        s = session(w)
        assert s.student.student.add(1) == 2
        w.proc.kill()  # the whole worker dies under a running check
        w.proc.wait()
        with pytest.raises(WorkerDied):
            deadline = time.monotonic() + 5  # the check's process dies with the worker, maybe a moment later
            while time.monotonic() < deadline:
                s.student.student.add(1)
        fresh = session(w)
        assert fresh.student.student.add(2) == 3
        fresh.end()
