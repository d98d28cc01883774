"""One student's failure is one student's result: in `autograder batch`, a grader
that dies costs its own submission alone (retried once, then recorded as not
graded, with the reason), the class finishes, and whatever a killed batch or
grader leaves in /tmp and in the cgroups goes with the next run.

Real processes throughout, on the small course of test_batch.py: the batch is
the command itself, and a grader dies by the kernel's hand (SIGKILL, or its
cgroup's memory killer)."""

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder.batch import run
from autograder.batch.intake import discover
from autograder.engine.assignment import load_reference
from autograder.engine.course import load_course
from autograder.gradebook.store import Gradebook
from autograder.reports import feedback
from autograder.sandboxes import SANDBOXES
from autograder.sandboxes.cgroups import Cgroup, CgroupUnavailable, alive
from processes import live_processes
from sandboxing import sandbox as sandbox_for_tests

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
RIGHT = "def double(x):\n    return x + x\n"
WRONG = "def double(x):\n    return 3 * x\n"
# The student whose graders are killed: right, and a little slow to import, so that it is caught mid-grade.
MARKER = "# cid's submission"
TARGET = f"{MARKER}\nimport time\ntime.sleep(1)\n\n{RIGHT}"
TMP = Path(tempfile.gettempdir())


def make_class(folder: Path, students: dict[str, str]) -> Path:
    for student, source in students.items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        (folder / student / "scale.py").write_text(source)
    return folder


def batch_command(source: Path, db: Path, sandbox: str, *extra) -> list[str]:
    return [sys.executable, "-m", "autograder", "batch", "tiny", str(source), "--db", str(db), "--root", str(TINY),
            "--sandbox", sandbox, *extra]


def scores(db: Path) -> dict[str, tuple[float, float]]:
    with sqlite3.connect(db) as connection:
        return {s: (score, top) for s, score, top in connection.execute("SELECT student, score, max_score FROM submissions")}


def ungraded(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT student, reason FROM ungraded"))


def children(pid: int) -> list[int]:
    return live_processes(lambda status: f"\nPPid:\t{pid}\n" in status)


def grader_of_target(batch_pid: int) -> int | None:
    """The batch's grader now grading cid: found by the copy its worker reads, staged in a folder named by
    the grader's pid (docker, process as root) or in a staging folder so named (namespace: one copy per
    submission inside), or the folder of a process worker (a zygote its template forked)."""
    for grader in children(batch_pid):
        staged = list(TMP.glob(f"autograder-submission-{grader}-*"))
        copies = staged + [inside for folder in staged for inside in folder.glob("*") if inside.is_dir()]
        for worker in (zygote for warm in children(grader) for zygote in [warm, *children(warm)]):
            try:
                copies.append(Path(os.readlink(f"/proc/{worker}/cwd")))
            except OSError:
                pass
        for copy in copies:
            try:
                if MARKER in (copy / "scale.py").read_text():
                    return grader
            except OSError:
                pass
    return None


def memory_limit_of(pid: int) -> int | None:
    """The memory limit of pid's own memory cgroup, or else its RLIMIT_DATA; None for neither."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or (controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists()):
            folder = Path("/sys/fs/cgroup") / ("memory" if controllers else "") / path.lstrip("/")
            for name in ("memory.limit_in_bytes", "memory.max"):
                if (folder / name).exists() and Path(path).name.startswith("autograder-"):
                    return int((folder / name).read_text())
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max data size"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    return None


def cgroup_folders() -> list[Path]:
    """Where this host's cgroups of the batch's graders and workers are made (the test runs in the batch's own)."""
    folders = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            if controller in ("memory", "pids", "cpu", "cpuacct", ""):
                folder = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
                if folder.is_dir():
                    folders.append(folder)
    return folders


def cgroups_of(pid: int) -> list[Path]:
    return [group for folder in cgroup_folders() for group in folder.glob(f"autograder-{pid}-*")]


def cgroups_available() -> bool:
    try:
        Cgroup.create(64 << 20, 16).destroy()
        return True
    except (CgroupUnavailable, OSError):
        return False


@pytest.mark.slow  # 60 to 120 s: three batches
def test_a_grader_killed_on_one_submission_costs_that_student_alone(tmp_path):
    sandbox = sandbox_for_tests().name
    source = make_class(tmp_path / "class", {"ann": RIGHT, "bob": WRONG, "cid": TARGET, "dee": RIGHT})
    db = tmp_path / "gradebook.sqlite"
    running = subprocess.Popen(batch_command(source, db, sandbox, "--workers", "2"), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, limits = [], []
    deadline = time.monotonic() + 300
    while running.poll() is None and time.monotonic() < deadline:
        grader = grader_of_target(running.pid)
        if grader is not None and grader not in killed:
            limits.append(memory_limit_of(grader))
            os.kill(grader, signal.SIGKILL)
            killed.append(grader)
        time.sleep(0.02)
    _, err = running.communicate(timeout=60)
    said = " ".join(err.split())  # as printed, but unwrapped

    assert len(killed) == 2, f"expected cid's grader to be killed twice (once, and once on the retry); killed {killed}\n{err}"
    assert limits == [run.GRADER_MEMORY_BYTES] * 2, f"cid's graders ran under memory limits {limits}, not {run.GRADER_MEMORY_BYTES}"
    assert running.returncode == 1, f"exit {running.returncode}\n{err}"
    reason = "its grader was killed by SIGKILL, twice"
    assert f"NOT GRADED: cid: {reason} (recorded as not graded" in said, err
    assert "not graded (see above): cid" in said, err
    assert "3 graded, 0 broken (recorded with the reason), 0 unchanged since last graded (skipped), 1 not graded" in said, err
    # The others were graded once each, with their right scores: neither lost nor graded again.
    progress = [line for line in err.splitlines() if line.startswith("[")]
    for student in ("ann", "bob", "dee"):
        assert sum(f"] {student}: " in line for line in progress) == 1, f"{student} graded other than once:\n{err}"
    assert scores(db) == {"ann": (3, 3), "bob": (0, 3), "dee": (3, 3)}
    assert ungraded(db) == {"cid": reason}
    # Nothing of the killed graders is left: staged copies, cgroups of their own and of their workers.
    for grader in killed:
        assert not list(TMP.glob(f"autograder-submission-{grader}-*")), f"a copy staged by the killed grader {grader} is left"
        assert not cgroups_of(grader), f"cgroups of the killed grader {grader}'s workers are left: {cgroups_of(grader)}"
    assert not cgroups_of(running.pid), f"the graders' cgroups are left: {cgroups_of(running.pid)}"

    # Not a silent 0: the class CSV marks tiny as missing for cid.
    export = subprocess.run([sys.executable, "-m", "autograder", "export", "--db", str(db), "-o", "-", "--root", str(TINY)],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(export.stdout))}
    assert rows["cid"]["tiny"] == "0" and "tiny" in rows["cid"]["missing"].split(), rows["cid"]
    assert rows["ann"]["missing"] == "exam", rows["ann"]

    # A rerun grades nobody (cid's submission is the same one), and still ends naming cid.
    again = subprocess.run(batch_command(source, db, sandbox), cwd=ROOT, capture_output=True, text=True, timeout=300)
    said = " ".join(again.stderr.split())
    assert again.returncode == 1 and "not graded (see above): cid" in said, again.stderr
    assert "0 graded, 0 broken (recorded with the reason), 3 unchanged since last graded (skipped), 1 not graded" in said
    assert f"NOT GRADED: cid: {reason} (in an earlier run, on this same submission: --force grades it again)" in said
    assert ungraded(db) == {"cid": reason}

    # --force grades it again: its graders now live, it gets its score, and the record of not grading goes.
    alone = make_class(tmp_path / "cid only", {"cid": TARGET})
    forced = subprocess.run(batch_command(alone, db, sandbox, "--force"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert scores(db) == {"ann": (3, 3), "bob": (0, 3), "cid": (3, 3), "dee": (3, 3)} and ungraded(db) == {}


def test_a_grader_over_its_memory_limit_is_killed_alone_and_said_so(tmp_path, monkeypatch):
    """Stands in for the reply frame that made the grader copy one buffer 20,000 times (the codec now
    refuses it): the grader itself allocates for one student, past the limit of its cgroup."""
    if not cgroups_available():
        pytest.skip("no cgroups here: graders are limited by RLIMIT_DATA, whose allocation failures are errors, not kills")
    limit = 1 << 30  # over what grading the tiny course needs, its process workers included
    real_grade = run.grade

    def grade(assignment, copy, sandbox, student, **options):
        if student == "cid":
            hoard = [b"x" * (16 << 20) for _ in range(2 * limit // (16 << 20))]  # written, so charged
            del hoard
        return real_grade(assignment, copy, sandbox, student, **options)

    monkeypatch.setattr(run, "grade", grade)  # the graders are forked: they inherit it
    source = make_class(tmp_path / "class", {"ann": WRONG, "cid": RIGHT})
    assignment, course = load_reference("tiny", TINY / "reference" / "tiny"), load_course(TINY)
    submissions, _ = discover(source, "tiny", assignment.modules)
    with Gradebook(tmp_path / "gradebook.sqlite") as gradebook:
        outcomes = run.run_batch(assignment, submissions, gradebook, sandbox=sandbox_for_tests(), course=course,
                                 workers=2, grader_memory_bytes=limit)
        recorded = {stored.result.student: stored.result.score for stored in gradebook.submissions("tiny")}
    assert {o.student: o.action for o in outcomes} == {"ann": "graded", "cid": "ungraded"}
    assert recorded == {"ann": 0}
    reason = "its grader was killed by the kernel's out-of-memory killer (over the 1 GiB grader memory limit), twice"
    assert ungraded(tmp_path / "gradebook.sqlite") == {"cid": reason}


@pytest.mark.slow  # 40 to 90 s each: a batch, killed, and the next
@pytest.mark.parametrize("sandbox", ["namespace", "process"])
def test_what_a_killed_batch_leaves_the_next_run_removes(tmp_path, sandbox):
    reason = SANDBOXES[sandbox]().unavailable()
    if reason:
        pytest.skip(f"the {sandbox} sandbox cannot run here: {reason}")
    slow = f"import time\ntime.sleep(1)\n\n{RIGHT}"
    source = make_class(tmp_path / "class", {f"s{i}": slow for i in range(4)})
    db = tmp_path / "gradebook.sqlite"
    running = subprocess.Popen(batch_command(source, db, sandbox, "--workers", "2"), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # What a batch makes while it grades, each named by the pid of its maker: the namespace jail keeps its
    # workers' bytecode inside; the process sandbox has no cgroups of its own, and stages a copy only where
    # it runs workers as another user.
    with_cgroups = cgroups_available()
    expected = {"the batch's copies"} | ({"graders' cgroups"} if with_cgroups else set())
    expected |= {"workers' bytecode"} if sandbox == "process" else \
        {"copies staged by graders"} | ({"workers' cgroups"} if with_cgroups else set())
    made: dict[str, list[Path]] = {}
    seen: set[str] = set()  # the kinds found at some moment: says what is missing should the batch end first
    processes: list[int] = []
    deadline = time.monotonic() + 120
    while running.poll() is None and time.monotonic() < deadline and not expected <= {kind for kind, paths in made.items() if paths}:
        seen |= {kind for kind, paths in made.items() if paths}
        graders = children(running.pid)
        templates = [template for grader in graders for template in children(grader)]
        workers = templates + [zygote for template in templates for zygote in children(template)]
        processes = graders + workers
        made = {
            "the batch's copies": list(TMP.glob(f"autograder-batch-{running.pid}-*")),
            "graders' cgroups": cgroups_of(running.pid),
            "copies staged by graders": [path for grader in graders for path in TMP.glob(f"autograder-submission-{grader}-*")],
            "workers' cgroups": [path for grader in graders for path in cgroups_of(grader)],
            "workers' bytecode": [path for worker in workers for path in TMP.glob(f"autograder-pycache-{worker}-*")],
        }
        time.sleep(0.02)
    assert running.poll() is None, f"the batch ended before it could be killed; {expected - seen} never seen"
    assert expected <= {kind for kind, paths in made.items() if paths}, f"expected {expected} while grading; found {made}"
    # Killed with all it started at once, as a CI timeout or systemd kills a whole cgroup: a worker then
    # has no time to remove its bytecode folder.
    for pid in [running.pid, *processes]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    running.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {kind: [path for path in paths if path.exists()] for kind, paths in made.items()}
    assert all(left[kind] for kind in expected), f"the killed batch left less than expected, the test proves nothing: {left}"

    again = subprocess.run(batch_command(source, db, sandbox, "--workers", "2"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    still = {kind: [path for path in paths if path.exists()] for kind, paths in made.items()}
    assert not any(still.values()), f"the next run left what the killed batch left: {still}"
    assert scores(db) == {f"s{i}": (3, 3) for i in range(4)}


def test_the_reports_say_why_a_student_was_not_graded(tmp_path):
    """The student's feedback shows the assignment as missing, and why: not a silent 0, not a bare "missing"."""
    course = load_course(TINY)
    reason = "its grader was killed by the kernel's out-of-memory killer (over the 4 GiB grader memory limit), twice"
    with Gradebook(tmp_path / "gradebook.sqlite") as gradebook:
        gradebook.record_ungraded("tiny", "cid", "hash", "v1", reason)
        (grades,) = gradebook.class_grades(course)
    (score,) = [s for s in grades.scores if s.component.source == "tiny"]
    assert (grades.student, score.missing, score.points, score.note) == ("cid", True, 0, f"not graded: {reason}")
    page = feedback.markdown(course, grades, {})
    assert "missing" in page and "not graded: its grader was killed by the kernel" in page, page
