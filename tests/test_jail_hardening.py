"""The namespace jail's hardening (sandboxes/namespace.py's docstring says what and why).

- Staged copies: no other local user can list or read a staged submission or
  reference while its worker runs (user nobody tries, in a forked child).
- The race worker of timed checks is given the reference's solution files alone.
- Keyrings: nothing one check's process leaves in the kernel's keyrings reaches
  the next check's; without libseccomp the session keyrings are still private.
- Seccomp: the refused calls fail with EPERM inside a check, while torch,
  threads, fork and subprocesses work.

Every test runs real workers in the namespace sandbox.
"""

from __future__ import annotations

import errno
import json
import os
import runpy
from pathlib import Path

import pytest

from autograder.engine.runner import grade
from autograder.protocol.client import Worker
from autograder.sandboxes import namespace
from autograder.sandboxes.namespace import NamespaceSandbox
from reference_helpers import tiny_assignment
from sandboxing import require

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "hw1"
NOBODY = 65534
KEY_TEXT = "left by an earlier check"

# Runs inside the checks: each function returns plain data, errors as errno names.
PROBE = r'''
import ctypes, errno, os, subprocess, threading

import torch

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NUMBERS = {
    "x86_64": {"add_key": 248, "keyctl": 250, "bpf": 321, "clone": 56},
    "aarch64": {"add_key": 217, "keyctl": 219, "bpf": 280, "clone": 220},
}[os.uname().machine]
KEYRINGS = {"user": -4, "session": -3}  # KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING
KEYCTL_SEARCH, KEYCTL_READ = 10, 11
CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x40000000, 17


def outcome(result):
    return "ok" if result != -1 else errno.errorcode[ctypes.get_errno()]


def in_child(call):
    """call() in a forked child (what it changes stays there): "ok" or the errno's name."""
    pid = os.fork()
    if pid == 0:
        result = call()
        os._exit(0 if result != -1 else ctypes.get_errno())
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "ok" if code == 0 else errno.errorcode.get(code, f"status {code}")


def clone_with(flags):
    pid = libc.syscall(NUMBERS["clone"], flags | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    return pid


def leave_key(text):
    data = text.encode()
    return {name: outcome(libc.syscall(NUMBERS["add_key"], b"user", b"agkey", data, len(data), ctypes.c_long(ring)))
            for name, ring in KEYRINGS.items()}


def find_key():
    found = {}
    for name, ring in KEYRINGS.items():
        serial = libc.syscall(NUMBERS["keyctl"], KEYCTL_SEARCH, ctypes.c_long(ring), b"user", b"agkey", 0)
        if serial == -1:
            found[name] = outcome(-1)
            continue
        buffer = ctypes.create_string_buffer(256)
        size = libc.syscall(NUMBERS["keyctl"], KEYCTL_READ, ctypes.c_long(serial), buffer, 256)
        found[name] = buffer.raw[:size].decode() if size >= 0 else outcome(-1)
    return found


def refused_calls():
    return {
        "ptrace": in_child(lambda: libc.ptrace(0, 0, None, None)),  # PTRACE_TRACEME
        "unshare": in_child(lambda: libc.unshare(CLONE_NEWUSER)),
        "clone with CLONE_NEWNET": in_child(lambda: clone_with(CLONE_NEWNET)),
        "clone with CLONE_NEWUSER": in_child(lambda: clone_with(CLONE_NEWUSER)),
        "mount": outcome(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        "keyctl": outcome(libc.syscall(NUMBERS["keyctl"], 0, ctypes.c_long(-3), 0)),  # KEYCTL_GET_KEYRING_ID
        "bpf": outcome(libc.syscall(NUMBERS["bpf"], 0, None, 0)),  # BPF_MAP_CREATE
        "personality(ADDR_NO_RANDOMIZE)": in_child(lambda: libc.personality(0x0040000)),
        "personality(0x80040000)": in_child(lambda: libc.personality(0x80040000)),
    }


def allowed_work():
    """What checks do: torch with autograd and convolutions, threads, fork, a subprocess, personality's query."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    y = torch.nn.functional.conv2d(x, w, padding=1)
    (y.square().sum() + (x.flatten(1) @ x.flatten(1).T).trace()).backward()
    results = []
    thread = threading.Thread(target=lambda: results.append(float((torch.ones(64, 64) @ torch.ones(64, 64)).sum())))
    thread.start()
    thread.join()
    return {
        "gradient finite": bool(torch.isfinite(x.grad).all()),
        "thread": results,
        "fork": in_child(lambda: 0),
        "subprocess": subprocess.run(["/bin/true"]).returncode,
        "personality query": libc.personality(0xFFFFFFFF) != -1,
    }
'''


@pytest.fixture(scope="module")
def jail():
    return require("namespace")


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe.py").write_text(PROBE)
    return folder


@pytest.fixture(scope="module")
def probe_worker(jail, probe_folder):
    """One warm worker on the probe for the tests that need no other sandbox: each check a fresh process."""
    with Worker(jail, probe_folder) as worker:
        yield worker


def open_session(worker: Worker):
    return worker.session(seed=0, forbid=[], call_timeout=60, check_timeout=120)


def leave_then_find_key(worker: Worker) -> tuple[dict, dict]:
    """One check leaves KEY_TEXT in its keyrings, the next looks for it: what each keyring call gave."""
    writer = open_session(worker)
    left = writer.student.probe.leave_key(KEY_TEXT)
    writer.end()
    reader = open_session(worker)
    found = reader.student.probe.find_key()
    reader.end()
    return left, found


def staged_folder(worker: Worker) -> Path:
    """The staged copy a running namespace worker sees as /submission (the jail's first bind)."""
    return worker.proc.folder


def as_nobody(paths: list[Path]) -> dict[str, str]:
    """What user nobody gets, in a forked child, listing each folder or reading each file:
    "read" or the error's name."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            got = {}
            for path in paths:
                try:
                    os.listdir(path) if path.is_dir() else path.read_bytes()
                    got[str(path)] = "read"
                except OSError as exc:
                    got[str(path)] = errno.errorcode.get(exc.errno, str(exc))
            os.write(write_end, json.dumps(got).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        text = reader.read()
    os.waitpid(pid, 0)
    return json.loads(text)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root to become user nobody (the jail's slot uids are root's to give)")


def test_no_other_user_reads_the_staged_reference_while_a_check_runs(jail):
    need_root()
    with Worker(jail, REFERENCE) as worker:
        session = open_session(worker)
        try:
            assert session.student.neurons.threshold_neuron is not None  # the check reads its copy
            staged = staged_folder(worker)
            tried = [staged, staged / "hidden_checks.py", staged / "neurons.py"]
            assert {path.name for path in tried[1:]} <= set(os.listdir(staged))
            got = as_nobody(tried)
        finally:
            session.end()
    assert got == {str(path): "EACCES" for path in tried}, f"user nobody, during a check: {got}"
    assert not staged.exists(), f"{staged} outlived its worker"


TINY_SOLUTION = "def double(x):\n    return 2 * x\n"
TINY_CHECKS = {
    "public_checks.py": '''
        import torch
        from autograder.checks import CheckList

        checks = CheckList()


        @checks.public("scale.double.values", points=1)
        def _(t):
            x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
            t.expect_close(t.student.scale.double(x), t.reference.scale.double(x))
        ''',
    "hidden_checks.py": '''
        from autograder.checks import CheckList

        checks = CheckList()


        @checks.hidden("scale.double.timed", points=1, timeout=120, call_timeout=20)
        def _(t):
            t.expect_fast(lambda code, x: code.scale.double(x), lambda: {"x": t.randn(256, 256)}, what="scale.double")
        ''',
}


class WatchedNamespace(NamespaceSandbox):
    """The namespace sandbox, noting for every worker it starts what it was given, what its
    staged copy holds, and what user nobody gets of that copy while the worker runs."""

    def __init__(self):
        super().__init__()
        self.started: list[dict] = []

    def start(self, submission: Path, cuda: bool = False):
        proc = super().start(submission)
        staged = proc.folder
        files = sorted(os.listdir(staged))
        self.started.append({"given": Path(submission), "staged": files, "nobody": as_nobody([staged, staged / files[0]])})
        return proc


def test_the_race_worker_is_given_the_solution_files_alone(tmp_path):
    need_root()
    require("namespace")
    assignment = tiny_assignment(tmp_path, {"scale.py": TINY_SOLUTION}, TINY_CHECKS)
    reference = assignment.reference_dir
    student = tmp_path / "student"
    student.mkdir()
    (student / "scale.py").write_text(TINY_SOLUTION)
    (student / "notes.txt").write_text("mine")
    sandbox = WatchedNamespace()
    result = grade(assignment, student, sandbox, "alice")
    statuses = {check.id: (check.status, check.message) for check in result.checks}
    assert {i: s for i, (s, _) in statuses.items()} == {"scale.double.values": "passed", "scale.double.timed": "passed"}, statuses
    assert len(sandbox.started) == 2, sandbox.started
    submission, race = sandbox.started
    assert submission["staged"] == ["notes.txt", "scale.py"], submission
    assert race["staged"] == ["scale.py"], f"the race worker's copy holds more than the solution: {race['staged']}"
    assert race["given"] != reference and not race["given"].exists(), race  # a copy, removed after grading
    for started in sandbox.started:
        assert set(started["nobody"].values()) == {"EACCES"}, f"user nobody, while a worker ran: {started}"


def test_nothing_passes_between_checks_through_the_keyrings(probe_worker):
    left, found = leave_then_find_key(probe_worker)
    assert KEY_TEXT not in found.values(), f"the next check read the key an earlier one left: {found}"
    assert left == {"user": "EPERM", "session": "EPERM"}, f"add_key in a check: {left}"
    assert found == {"user": "EPERM", "session": "EPERM"}, f"keyctl in a check: {found}"


def test_without_libseccomp_each_check_still_has_its_own_session_keyring(probe_folder, monkeypatch):
    require("namespace")
    monkeypatch.setattr(namespace, "libseccomp_missing", lambda: "switched off by the test")
    sandbox = NamespaceSandbox()
    with Worker(sandbox, probe_folder) as worker:
        left, found = leave_then_find_key(worker)
    assert any("no seccomp filter" in warning for warning in sandbox.warnings), sandbox.warnings
    assert left == {"user": "ok", "session": "ok"}, f"no filter, yet add_key failed: {left}"
    # The user keyring is the uid's: only the filter keeps checks out of it (namespace.py).
    assert found["session"] != KEY_TEXT, f"the next check's session keyring held the earlier one's key: {found}"


def test_seccomp_refuses_with_eperm_and_checks_work_as_usual(probe_worker):
    session = open_session(probe_worker)
    refused = session.student.probe.refused_calls()
    session.end()
    session = open_session(probe_worker)
    work = session.student.probe.allowed_work()
    session.end()
    not_refused = {call: got for call, got in refused.items() if got != "EPERM"}
    assert not not_refused, f"calls a check made that the filter should refuse with EPERM: {not_refused}"
    assert work == {
        "gradient finite": True,
        "thread": [64.0 * 64 * 64],
        "fork": "ok",
        "subprocess": 0,
        "personality query": True,
    }, work


def test_the_docstring_lists_every_refused_call():
    refused = runpy.run_path(str(namespace.JAIL))["SECCOMP_REFUSED"]  # a script: its globals, not run as main
    documented = " ".join(namespace.__doc__.split())
    missing = [name for name in (*refused, "clone3", "personality") if name not in documented]
    assert len(refused) > 40 and not missing, f"refused but not documented in namespace.py: {missing}"
