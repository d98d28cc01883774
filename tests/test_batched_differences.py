"""Batched finite differences: Trial.gradcheck asks the student's process for all of one input's
evaluations in one request (protocol/plan.py, Calls), and the student's code runs exactly as it
would call by call: the same calls in the same order, the same verdicts and messages.

Each student layer logs every call it gets (and every value set on it) in its own process; a test
reads the log back and compares it between the two ways of evaluating.
"""

import pytest
import torch

from autograder.checks.failures import CheckFailed
from autograder.checks.tape import ReferenceProxy, Tape
from autograder.checks.trial import Trial
from autograder.protocol import plan, wire
from autograder.protocol.client import Session, StudentError, Worker
from autograder.sandboxes import get_sandbox

UNITS = '''
import torch

log = []


def calls():
    return [list(entry) for entry in log]


class Layer:
    """tanh(x @ W), and its backward."""

    def __init__(self):
        self.count = 0
        self.sets = 0

    @property
    def W(self):
        return self._W

    @W.setter
    def W(self, value):
        self.sets += 1
        log.append(["set W", self.sets, round(float(value.sum()), 12)])
        self.setting(self.sets)
        self._W = value

    def setting(self, number):
        pass

    def forward(self, x):
        self.count += 1
        log.append(["forward", self.count, round(float(x.sum()), 12), round(float(self._W.sum()), 12)])
        self.x = x.clone()
        y = self.output(torch.tanh(x @ self._W), self.count)
        x.add_(1.0)  # writes into its input: every evaluation must still get fresh copies
        return y

    def output(self, y, count):
        return y

    def backward(self, grad):
        d = grad * (1 - torch.tanh(self.x @ self._W) ** 2)
        self.dW = self.x.T @ d
        return d @ self._W.T


class Drifting(Layer):
    """From its fifth call on, each output a little off the last."""

    def output(self, y, count):
        return y + 1e-9 * max(0, count - 4)


class RaisesLater(Layer):
    def output(self, y, count):
        if count == 9:
            raise RuntimeError(f"call {count} went wrong")
        return y


class Float32Later(Layer):
    def output(self, y, count):
        return y.float() if count == 7 else y


class SetterRaisesLater(Layer):
    def setting(self, number):
        if number == 6:
            raise ValueError("no sixth W")


def pair(x, W):
    log.append(["pair", round(float(x.sum()), 12)])
    return (torch.tanh(x @ W), "and something else")
'''

LAYERS = ("Layer", "Drifting", "RaisesLater", "Float32Later", "SetterRaisesLater")


class CallByCall:
    """The session without record_calls: Trial.gradcheck evaluates call by call, as it did before batching."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        if name == "record_calls":
            raise AttributeError(name)
        return getattr(self._session, name)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batched")
    (folder / "units.py").write_text(UNITS)
    with Worker(get_sandbox("process"), folder) as started:
        yield started


@pytest.fixture
def requests(monkeypatch):
    """op -> how many requests of it the grader sent (every Session's, counted as they are sent)."""
    counted = {}
    send = Session.request

    def counting(self, op, **fields):
        if self.recording is None:
            counted[op] = counted.get(op, 0) + 1
        return send(self, op, **fields)

    monkeypatch.setattr(Session, "request", counting)
    return counted


def layer_forward(t, layer):
    def forward(x, W):
        layer.W = W
        return layer.forward(x)

    return forward


def layer_backward(t, layer, x, W):
    return lambda g: {"x": layer.backward(g), "W": layer.dW}


def gradcheck(worker, layer_name: str, batched: bool, x_shape=(3, 2), forward_of=layer_forward, backward_of=layer_backward):
    """t.gradcheck of units.<layer_name> on x and W in a fresh check process: (outcome, the student's log).
    outcome: "passed", or the failure's type and message."""
    session = worker.session(seed=1, forbid=[], call_timeout=10, check_timeout=60)
    try:
        t = Trial(session if batched else CallByCall(session), ReferenceProxy(None, "", Tape()), Tape(), seed=0)
        layer = getattr(t.student.units, layer_name)()
        x, W = t.randn(*x_shape), t.randn(x_shape[-1], 4)
        try:
            t.gradcheck(forward_of(t, layer), {"x": x, "W": W}, backward_of(t, layer, x, W))
            outcome = "passed"
        except (CheckFailed, StudentError) as failure:
            outcome = (type(failure).__name__, str(failure))
        return outcome, t.student.units.calls()
    finally:
        session.end()


@pytest.mark.parametrize("layer_name", LAYERS)
def test_batched_differences_run_the_same_calls_and_give_the_same_verdict(worker, layer_name):
    batched, call_by_call = gradcheck(worker, layer_name, True), gradcheck(worker, layer_name, False)
    assert batched[0] == call_by_call[0]
    assert batched[1] == call_by_call[1]  # every call and every value set, in order, with the values it got
    expected = {
        "Layer": "passed",
        "Drifting": "called at the same inputs after the finite differences, returned other values",
        "RaisesLater": "units.RaisesLater().forward(float64[3, 2]) raised RuntimeError at units.py:",
        "Float32Later": "returned float32[3, 4], expected float64[3, 4]",
        "SetterRaisesLater": "setting units.SetterRaisesLater().W raised ValueError at units.py:",
    }[layer_name]
    assert expected == batched[0] if expected == "passed" else expected in batched[0][1], batched[0]


def test_the_student_process_stops_where_call_by_call_evaluation_stops(worker):
    # The seventh forward returns float32: its differences end the check there, and no later forward runs.
    _, log = gradcheck(worker, "Float32Later", True)
    forwards = [entry[1] for entry in log if entry[0] == "forward"]
    assert forwards == list(range(1, 8))
    (_, message), log = gradcheck(worker, "RaisesLater", True)
    assert [entry[1] for entry in log if entry[0] == "forward"][-1] == 9 and "call 9 went wrong" in message


@pytest.mark.parametrize("x_shape", [(3, 2), (9, 9)], ids=["element by element", "along random directions"])
def test_a_batched_gradcheck_makes_one_request_per_input(worker, requests, x_shape):
    outcome, log = gradcheck(worker, "Layer", True, x_shape)
    assert outcome == "passed"
    assert requests.get("repeat") == 2  # x and W: each input's evaluations in one request
    forwards = len([entry for entry in log if entry[0] == "forward"])
    differences = sum(2 * (n if n <= 64 else 3) for n in (x_shape[0] * x_shape[1], x_shape[1] * 4))
    assert forwards == 4 + differences  # the four forwards gradcheck makes itself, and every difference's
    requests.clear()
    assert gradcheck(worker, "Layer", False, x_shape)[0] == "passed"
    assert "repeat" not in requests and requests["set"] + requests["callmethod"] >= 2 * differences


def pair_forward(t, layer):
    pair = t.student.units.pair  # a function of the student's module, called by the forward
    return lambda x, W: pair(x, W)[0]


def pair_backward(t, layer, x, W):
    def backward(g):  # the gradients at the point checked, computed here
        d = g * (1 - torch.tanh(x @ W) ** 2)
        return {"x": d @ W.T, "W": x.T @ d}

    return backward


def test_a_result_indexed_by_the_forward_is_batched_too(worker, requests):
    batched = gradcheck(worker, "Layer", True, forward_of=pair_forward, backward_of=pair_backward)
    assert batched == gradcheck(worker, "Layer", False, forward_of=pair_forward, backward_of=pair_backward)
    assert batched[0] == "passed" and requests.get("repeat") == 2


def test_a_forward_with_python_logic_on_a_result_is_evaluated_call_by_call(worker, requests):
    def forward_of(t, layer):
        return lambda x, W: layer_forward(t, layer)(x, W) * 1.0

    batched = gradcheck(worker, "Layer", True, forward_of=forward_of)
    assert batched == gradcheck(worker, "Layer", False, forward_of=forward_of)
    assert batched[0] == "passed" and "repeat" not in requests


def test_a_timed_program_may_not_refer_to_objects_of_the_check_process():
    steps = [["call", wire.Ref(1, plan.OBJECT, plan.OBJECT), [], {}]]
    with pytest.raises(ValueError, match="a timed program may only refer to its own slots"):
        plan.run([], steps, None, [{}], modules=None)
    with pytest.raises(ValueError, match="a timed program may only refer to its own slots"):
        plan.run([], [["call", 0, [wire.Ref(3, "object", "units.Layer")], {}]], None, [{}], modules=None)
