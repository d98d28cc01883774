"""A grader killed in the middle of grading leaves nothing of its sandboxes behind.

Its jails die with it (every process in them dies with its parent); the
cgroups it made are removed by the next grader that starts a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.sandboxes import cgroups
from autograder.sandboxes.namespace import NamespaceSandbox
from autograder.sandboxes.slots import SLOT_UIDS, SLOTS
from processes import live_processes, uid_of
from sandboxing import require

ROOT = Path(__file__).resolve().parent.parent
GRADER = """
import faulthandler, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)  # where it stands, should it ever hang
# Ctrl-C as in a terminal, even where this test was started in the background (SIGINT then comes in ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.sandboxes.namespace import NamespaceSandbox
reference = Path(sys.argv[1]) / "reference" / "hw1"
print("grading", flush=True)
grade(load_reference("hw1", reference), Path(sys.argv[2]), NamespaceSandbox(), "alice")
"""


def jailed_processes(grader: int) -> list[int]:
    """Processes running as a slot's uid (only sandboxes use those) in a cgroup the grader made:
    not those of other graders running meanwhile (a parallel test run)."""

    def of_grader(pid: int) -> bool:
        try:
            return f"/{cgroups.PREFIX}{grader}-" in Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return False

    jailed = live_processes(lambda status: SLOT_UIDS <= uid_of(status) < SLOT_UIDS + 2 * SLOTS)
    try:
        cgroups._bases()
    except cgroups.CgroupUnavailable:
        return jailed  # no cgroups to tell graders apart: every jailed process counts
    return [pid for pid in jailed if of_grader(pid)]


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_killed_grader_leaves_no_process_and_no_cgroup(tmp_path, how):
    require("namespace")
    if os.geteuid() != 0:
        pytest.skip("checks run as slot uids only when the grader is root")
    submission = tmp_path / "sleepy"
    submission.mkdir()
    for name in ("neurons", "activations", "backprop", "optimizers"):
        (submission / f"{name}.py").write_text("import time\ntime.sleep(10**6)\n")  # every import hangs
    stderr = tmp_path / "grader.stderr"
    with open(stderr, "w") as log:
        grader = subprocess.Popen([sys.executable, "-c", GRADER, str(ROOT), str(submission)], stdout=subprocess.PIPE, stderr=log, cwd=ROOT)
    assert wait_until(lambda: jailed_processes(grader.pid), 60), "no jailed process ever started"
    grader.send_signal(how)
    try:
        grader.wait(timeout=30)
    except subprocess.TimeoutExpired:
        grader.send_signal(signal.SIGUSR1)
        time.sleep(1)
        grader.kill()
        pytest.fail(f"the grader did not end within 30 s of {how.name}; where it was:\n{stderr.read_text()[-6000:]}")
    assert wait_until(lambda: not jailed_processes(grader.pid), 10), "jailed processes outlived the grader"
    try:
        bases = set(cgroups._bases()[1].values())  # a directory per controller, some shared
    except cgroups.CgroupUnavailable:
        return  # no cgroups here: nothing to leave behind
    left = [d for base in bases for d in base.glob(f"{cgroups.PREFIX}{grader.pid}-*")]
    if how == signal.SIGINT:
        assert not left, f"an interrupted grader left its cgroups: {left}"
    NamespaceSandbox()._cgroup().destroy()  # the next grader's first worker sweeps up
    assert not [d for d in left if d.exists()], "cgroups of a killed grader were not swept"
