"""Warm templates (sandboxes/template.py) and checks sharing a process per unit (engine/runner.py).

A template imports torch once and forks a zygote per submission: nothing of one
submission may reach the next, and a template that dies is replaced. The checks
of one unit share a process while each ends cleanly, stopped (parked) between
its public and its hidden checks where it has no process of its own left; a
unit, a hidden check or a check that errs never passes its process on to
another unit, a public check or the next check.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
import torch

from autograder.engine.runner import grade
from autograder.protocol.client import StudentError, Worker
from autograder.protocol.worker import PARKED_BYTES
from autograder.sandboxes import template
from autograder.sandboxes.process import ProcessSandbox
from reference_helpers import tiny_assignment
from sandboxing import require

# Whatever it was imported with leaves a mark on torch and in /tmp; `seen` reports what a later
# submission finds of earlier ones.
PROBE = """\
import glob, os, sys
import torch

MARK = {mark!r}
first_marks = getattr(torch, "_autograder_test_marks", [])
torch._autograder_test_marks = first_marks + [MARK]
open(f"/tmp/template-test-{{MARK}}", "w").close()


def seen():
    return {{
        "marks": list(first_marks),
        "files": sorted(os.listdir(".")),
        "tmp": sorted(glob.glob("/tmp/template-test-*")),
        "staging": sorted(os.listdir("/staging")) if os.path.isdir("/staging") else None,
    }}
"""

SANDBOXES = ["process", "namespace"]


def sandbox_called(name: str):
    """process, pipes (the process sandbox, the zygote relaying every frame) or namespace."""
    return ProcessSandbox() if name == "process" else ProcessSandbox(link="pipes") if name == "pipes" else require("namespace")


def submission(folder, mark: str, extra: str):
    folder.mkdir()
    (folder / "probe.py").write_text(PROBE.format(mark=mark))
    (folder / extra).write_text("")
    return folder


def probe(sandbox, folder) -> tuple[dict, object]:
    """What a check of folder's sees, and the template that served it."""
    with Worker(sandbox, folder) as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20)
        found = session.student.probe.seen()
        session.end()
        return found, worker.proc.template


@pytest.mark.parametrize("name", SANDBOXES)
def test_one_template_serves_submissions_one_after_the_other_and_none_sees_another(tmp_path, name):
    sandbox = sandbox_called(name)
    first, served_first = probe(sandbox, submission(tmp_path / "a", "alice", "only_alice.txt"))
    second, served_second = probe(sandbox, submission(tmp_path / "b", "bob", "only_bob.txt"))
    assert served_first is served_second and served_first.proc.poll() is None, "the second submission started a new template"
    assert first["marks"] == second["marks"] == [], f"what the template's torch held: {first}, then {second}"
    assert second["files"] == ["only_bob.txt", "probe.py"], second
    if name == "namespace":  # each check has a /tmp of its own, and sees no staged copy but its own
        assert second["tmp"] == ["/tmp/template-test-bob"], second
        assert second["staging"] == [], second


def test_a_template_that_died_is_replaced(tmp_path):
    sandbox = ProcessSandbox()
    _, served = probe(sandbox, submission(tmp_path / "a", "alice", "a.txt"))
    served.proc.kill()
    served.proc.wait()
    found, replacement = probe(sandbox, submission(tmp_path / "b", "bob", "b.txt"))
    assert replacement is not served and found["files"] == ["b.txt", "probe.py"], found


def test_a_forked_process_starts_templates_of_its_own(tmp_path):
    sandbox = ProcessSandbox()
    _, parents = probe(sandbox, submission(tmp_path / "a", "alice", "a.txt"))
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # a batch's grader is forked like this
        code = 1
        try:
            found, own = probe(sandbox, submission(tmp_path / "b", "bob", "b.txt"))
            os.write(write_end, str(own.proc.pid).encode())
            code = 0 if found["files"] == ["b.txt", "probe.py"] else 2
        finally:
            template.stop_all()
            os._exit(code)
    os.close(write_end)
    used = os.read(read_end, 100).decode()
    _, status = os.waitpid(child, 0)
    os.close(read_end)
    assert os.WEXITSTATUS(status) == 0, status
    assert used and int(used) != parents.proc.pid, "the forked process used its parent's template"
    assert parents.proc.poll() is None, "the forked process stopped its parent's template"


# A unit whose every call counts the calls made in its process so far.
COUNTER = "calls = []\n\ndef count(x):\n    calls.append(x)\n    return len(calls)\n\ndef other(x):\n    calls.append(x)\n    return len(calls)\n"
GROUP_CHECKS = {
    "public_checks.py": '''
        import os

        from autograder.checks import CheckList

        checks = CheckList()


        def record(t, check, function):  # the grader's environment: where the test reads it
            os.environ[f"TINY_CALLS {check}"] = str(getattr(t.student.counter, function)(1))


        @checks.public("counter.count.first", points=1)
        def _(t):
            record(t, "count.first", "count")


        @checks.public("counter.count.second", points=1)
        def _(t):
            record(t, "count.second", "count")
            t.expect(False, "fails on purpose: an assertion, so the process is kept")


        @checks.public("counter.count.third", points=1)
        def _(t):
            record(t, "count.third", "count")
            t.student.counter.count()  # a TypeError in the student's process: it is not kept


        @checks.public("counter.count.fourth", points=1)
        def _(t):
            record(t, "count.fourth", "count")


        @checks.public("counter.other.first", points=1)
        def _(t):
            record(t, "other.first", "other")
        ''',
    "hidden_checks.py": '''
        import os

        from autograder.checks import CheckList

        checks = CheckList()


        def record(t, check, function):
            os.environ[f"TINY_CALLS {check}"] = str(getattr(t.student.counter, function)(1))


        @checks.hidden("counter.count.hidden", points=1)
        def _(t):
            record(t, "count.hidden", "count")
        ''',
}


def test_checks_of_a_unit_share_a_process_until_one_errs(tmp_path, monkeypatch):
    assignment = tiny_assignment(tmp_path, {"counter.py": COUNTER}, GROUP_CHECKS)
    student = tmp_path / "student"
    student.mkdir()
    (student / "counter.py").write_text(COUNTER)
    result = grade(assignment, student, ProcessSandbox(), "alice")
    statuses = {check.id: check.status for check in result.checks}
    assert statuses == {
        "counter.count.first": "passed", "counter.count.second": "failed", "counter.count.third": "error",
        "counter.count.fourth": "passed", "counter.other.first": "passed", "counter.count.hidden": "passed",
    }, statuses
    calls = {key.split(" ", 1)[1]: int(value) for key, value in os.environ.items() if key.startswith("TINY_CALLS ")}
    for key in [key for key in os.environ if key.startswith("TINY_CALLS ")]:
        monkeypatch.delenv(key)
    assert calls == {
        "count.first": 1,  # a fresh process
        "count.second": 2,  # the same unit after a pass: the same process
        "count.third": 3,  # after a failed assertion: still the same
        "count.fourth": 1,  # after an error: a fresh one
        "other.first": 1,  # another unit: a fresh one
        "count.hidden": 2,  # hidden, after every public check: the unit's process, parked meanwhile
    }, calls


def test_a_public_check_never_runs_where_a_hidden_one_ran(tmp_path):
    (tmp_path / "counter.py").write_text(COUNTER)
    with Worker(ProcessSandbox(), tmp_path) as worker:
        counts = []
        for hidden in (False, True, True, False):
            session = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20, group="counter.count", hidden=hidden)
            counts.append(session.student.counter.count(1))
            session.keep()
    assert counts == [1, 2, 3, 1], counts


# Prints a secret and fails in a hidden check; a public check of another unit looks for it in its
# own process's memory (a copy of the zygote's).
LEAKY = """\
import gc

def hidden_part(secret):
    print(secret)
    raise RuntimeError("and fails")

def public_part():
    secret = ("SECRET-" + "7f3a").encode()  # made here: no request carries it
    found = 0
    for value in gc.get_objects():
        for held in (value.__dict__.values() if hasattr(value, "__dict__") else ()):
            if isinstance(held, (bytes, bytearray)) and secret in held:
                found += 1
    return found
"""
LEAK_CHECKS = {
    "public_checks.py": '''
        import os

        from autograder.checks import CheckList

        checks = CheckList()


        @checks.public("leaky.public_part.scan", points=1)
        def _(t):
            os.environ["TINY_LEAK_FOUND"] = str(t.student.leaky.public_part())
        ''',
    "hidden_checks.py": '''
        from autograder.checks import CheckList

        checks = CheckList()


        @checks.hidden("leaky.hidden_part.prints", points=1)
        def _(t):
            t.student.leaky.hidden_part("SECRET-" + "7f3a")
        ''',
}


@pytest.mark.parametrize("name", SANDBOXES)
def test_what_a_hidden_check_printed_never_reaches_a_public_check(tmp_path, name, monkeypatch):
    assignment = tiny_assignment(tmp_path, {"leaky.py": LEAKY}, LEAK_CHECKS)
    # The hidden check listed first, of a unit that comes first: the order must still run it last.
    assignment = dataclasses.replace(assignment, checks=sorted(assignment.checks, key=lambda spec: spec.visibility != "hidden"))
    student = tmp_path / "student"
    student.mkdir()
    (student / "leaky.py").write_text(LEAKY)
    monkeypatch.setenv("TINY_LEAK_FOUND", "not run")
    result = grade(assignment, student, sandbox_called(name), "alice")
    statuses = {check.id: check.status for check in result.checks}
    assert statuses == {"leaky.hidden_part.prints": "error", "leaky.public_part.scan": "passed"}, statuses
    assert os.environ["TINY_LEAK_FOUND"] == "0", "the public check's process held what the hidden check printed"


def test_a_check_that_outlives_its_zygote_is_killed_before_the_next_submission(tmp_path):
    sandbox = require("namespace")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lingers.py").write_text(LINGERS)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "lingers.py").write_text(LINGERS)
    with Worker(sandbox, tmp_path / "a") as worker:
        session = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20)
        assert session.student.lingers.leave_a_spinner() is True
        worker.close()  # no grace: the zygote killed by force, as when it stops answering
    with Worker(sandbox, tmp_path / "b") as worker:
        worker.ensure_started()
        before = worker.proc.cpu_seconds()
        time.sleep(1.0)
        busy = worker.proc.cpu_seconds() - before
    assert busy < 0.3, f"the jail used {busy:.2f} s of CPU in 1 s while the next submission's worker was idle"


# The check's process drops its death signal and spins in a thread: what must not outlive its submission.
LINGERS = """\
import ctypes, threading

def spin():
    while True:
        pass

def leave_a_spinner():
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG 0
    threading.Thread(target=spin, daemon=True).start()
    return True
"""


USES_SIGMOID = """\
import torch

def squash(x):
    return torch.sigmoid(x)


def wrapped():
    return hasattr(torch.sigmoid, "__wrapped__")
"""


@pytest.mark.parametrize("name", SANDBOXES)
def test_names_wrapped_by_the_zygote_for_one_check_are_refused_only_where_a_check_forbids_them(tmp_path, name):
    """The zygote wraps the forbidden APIs of each check it forks for, so that later checks' processes
    inherit the wrappers: a wrapper must refuse only for a check that forbids its API."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "squash.py").write_text(USES_SIGMOID)
    x = torch.zeros(3)
    outcomes = []
    with Worker(sandbox_called(name), tmp_path / "s") as worker:
        for forbid in (["torch.sigmoid"], [], ["torch.sigmoid"], ["torch.tanh"]):
            session = worker.session(seed=0, forbid=forbid, call_timeout=20, check_timeout=20)
            try:
                outcomes.append(session.student.squash.squash(x).tolist())
            except StudentError as error:
                outcomes.append(error.type)
            outcomes.append(session.violations())
            if not forbid:
                inherited = session.student.squash.wrapped()
            session.end()
    assert inherited, "the check forbidding nothing ran without the wrapper the zygote made for the check before it"
    refused = "ForbiddenAPIError"
    assert outcomes[0] == refused and "torch.sigmoid called at squash.py:4" in outcomes[1][0], outcomes
    assert outcomes[2:4] == [[0.5, 0.5, 0.5], []], f"wrapped for the first check, it refused the second's call: {outcomes}"
    assert outcomes[4] == refused and outcomes[5], f"the third check forbids it again: {outcomes}"
    assert outcomes[6:8] == [[0.5, 0.5, 0.5], []], outcomes


# `start` counts its calls and, on its first, sets a timer that ticks every 5 ms in its process;
# `spawn` leaves a process of its own behind; `wait` takes a second while the others are parked;
# `hold` keeps mb megabytes.
PARKED = """\
import os, signal, time

calls, ticks, held = [], [], []

def hold(mb):
    held.append(b"x" * (mb << 20))
    return len(held)

def start(first):
    calls.append(first)
    if first:
        signal.signal(signal.SIGALRM, lambda *_: ticks.append(1))
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
    return [len(calls), len(ticks)]

def spawn(x):
    calls.append(x)
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    return len(calls)

def wait(seconds):
    time.sleep(seconds)
    return 0
"""
PARKED_CHECKS = {
    "public_checks.py": '''
        import os

        from autograder.checks import CheckList

        checks = CheckList()


        @checks.public("parked.start.public", points=1)
        def _(t):
            os.environ["TINY_PARKED start.public"] = repr(t.student.parked.start(True))


        @checks.public("parked.spawn.public", points=1)
        def _(t):
            os.environ["TINY_PARKED spawn.public"] = repr(t.student.parked.spawn(1))


        @checks.public("parked.wait.public", points=1)
        def _(t):
            t.student.parked.wait(1.0)


        @checks.public("parked.hold.public", points=1)
        def _(t):
            os.environ["TINY_PARKED hold.public"] = repr(t.student.parked.hold(PARKED_MB))
        ''',
    "hidden_checks.py": '''
        import os

        from autograder.checks import CheckList

        checks = CheckList()


        @checks.hidden("parked.start.hidden", points=1)
        def _(t):
            os.environ["TINY_PARKED start.hidden"] = repr(t.student.parked.start(False))


        @checks.hidden("parked.spawn.hidden", points=1)
        def _(t):
            os.environ["TINY_PARKED spawn.hidden"] = repr(t.student.parked.spawn(1))


        @checks.hidden("parked.hold.hidden", points=1)
        def _(t):
            os.environ["TINY_PARKED hold.hidden"] = repr(t.student.parked.hold(1))
        ''',
}
PARKED_CHECKS["public_checks.py"] = PARKED_CHECKS["public_checks.py"].replace("PARKED_MB", str((PARKED_BYTES >> 20) + 64))


@pytest.mark.parametrize("name", [*SANDBOXES, "pipes"])
def test_a_parked_process_runs_nothing_and_one_with_a_process_of_its_own_is_not_parked(tmp_path, name, monkeypatch):
    assignment = tiny_assignment(tmp_path, {"parked.py": PARKED}, PARKED_CHECKS)
    student = tmp_path / "student"
    student.mkdir()
    (student / "parked.py").write_text(PARKED)
    result = grade(assignment, student, sandbox_called(name), "alice")
    assert {check.status for check in result.checks} == {"passed"}, [(c.id, c.message) for c in result.checks]
    seen = {key.split(" ", 1)[1]: eval(value) for key, value in os.environ.items() if key.startswith("TINY_PARKED ")}
    for key in [key for key in os.environ if key.startswith("TINY_PARKED ")]:
        monkeypatch.delenv(key)
    (calls_before, ticks_before), (calls_after, ticks_after) = seen["start.public"], seen["start.hidden"]
    assert (calls_before, calls_after) == (1, 2), "the unit's hidden check ran in its parked process"
    # Running, its timer would have ticked ~200 times while `wait` took a second; stopped, it did not.
    assert ticks_after - ticks_before < 40, (ticks_before, ticks_after)
    assert (seen["spawn.public"], seen["spawn.hidden"]) == (1, 1), "a process that left one behind is not parked"
    assert (seen["hold.public"], seen["hold.hidden"]) == (1, 1), "a process holding over PARKED_BYTES is not parked"


def test_the_next_check_of_a_process_keeps_the_modules_and_definitions_not_the_objects(tmp_path):
    box_class = "\nclass Box:\n    def __init__(self, x):\n        self.x = x\n\n    @staticmethod\n    def double(x):\n        return 2 * x\n"
    (tmp_path / "counter.py").write_text(COUNTER + box_class)
    with Worker(ProcessSandbox(), tmp_path) as worker:
        first = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20, group="counter")
        assert first.student.counter.count(1) == 1
        box = first.student.counter.Box(5)
        assert first.student.counter.Box.double(2) == 4
        first.keep()
        second = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20, group="counter")
        sent = []
        request = second.request
        second.request = lambda op, **fields: sent.append(op) or request(op, **fields)
        assert second.student.counter.count(1) == 2  # the same process
        assert second.student.counter.Box.double(3) == 6  # looked up on a class: carried too
        assert second.student.counter.Box(6).x == 6
        assert sent == ["call", "call", "call", "get"], "the module and its functions and classes are carried over"
        with pytest.raises(StudentError, match="unknown object handle"):
            object.__setattr__(box, "_session", second)
            box.x  # the last check's objects are gone
        second.end()


# Computes with torch.sigmoid as it is imported: forbidden to `first`, allowed to `second`.
PROBED = "import torch\n\nHALF = float(torch.sigmoid(torch.zeros(1)))\n\ndef first(x):\n    return x\n\ndef second(x):\n    return HALF + x\n"
PROBED_CHECKS = {
    "public_checks.py": '''
        from autograder.checks import CheckList

        checks = CheckList()
        FORBIDDEN = {"probed.first": {forbidden}}


        @checks.public("probed.first.check", points=1)
        def _(t):
            t.expect(t.student.probed.first(1.0) == 1.0, "first(1.0) is 1.0")


        @checks.public("probed.second.check", points=1)
        def _(t):
            t.expect(t.student.probed.second(1.0) == 1.5, "second(1.0) is 1.5")
        ''',
}


@pytest.mark.parametrize("forbidden", [[], ["torch.sigmoid"]])
def test_the_import_probes_process_serves_the_first_unit_and_its_guard_never_breaks_the_file(tmp_path, forbidden, monkeypatch):
    checks = {"public_checks.py": PROBED_CHECKS["public_checks.py"].replace("{forbidden}", repr(forbidden))}
    assignment = tiny_assignment(tmp_path, {"probed.py": PROBED}, checks)
    student = tmp_path / "student"
    student.mkdir()
    (student / "probed.py").write_text(PROBED)
    forks = []
    data_channel = Worker._data_channel
    monkeypatch.setattr(Worker, "_data_channel", lambda self, control: forks.append(1) or data_channel(self, control))
    result = grade(assignment, student, ProcessSandbox(), "alice")
    checks = {check.id: check for check in result.checks}
    assert checks["probed.second.check"].status == "passed", checks["probed.second.check"].message
    if forbidden:  # imported under first's guard, the file fails there alone, as in a process of its own
        assert checks["probed.first.check"].status == "failed"
        assert "called a forbidden API: torch.sigmoid" in checks["probed.first.check"].message
        assert "could not be imported" not in checks["probed.second.check"].message
    else:  # the probe's process ran `first`: one process per unit
        assert checks["probed.first.check"].status == "passed"
        assert len(forks) == 2, forks


def test_a_process_that_will_not_begin_the_next_check_is_ended_and_the_worker_goes_on(tmp_path):
    (tmp_path / "counter.py").write_text(COUNTER + "\nimport threading, time\n\ndef linger(x):\n    threading.Thread(target=time.sleep, args=(5,)).start()\n    return x\n")
    with Worker(ProcessSandbox(), tmp_path) as worker:
        first = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20, group="counter")
        first.student.counter.linger(1)  # a thread still runs when the check ends: `begin` refuses
        first.keep()
        zygote = worker.proc
        counts = []
        for _ in range(2):
            session = worker.session(seed=0, forbid=[], call_timeout=20, check_timeout=20, group="counter")
            counts.append(session.student.counter.count(1))
            session.keep()
        assert counts == [1, 2], "a fresh process, then kept"
        assert worker.proc is zygote, "the zygote was restarted"
