"""Grade a class: submissions in parallel, each result committed the moment it is done.

Process model:
    batch (this process: has imported torch and loaded the checks and reference;
      │    it runs no student code and decodes no worker's frame)
      ├─ grader 1   forked: grades one submission at a time, each by a zygote its
      ├─ ...        sandbox forks from a warm template (torch imported once per slot,
      └─ grader N   sandboxes/template.py; a fresh child per unit of checks)
The graders are forked, so they inherit torch and the assignment without
importing anything; they die with the batch (PR_SET_PDEATHSIG), and their
templates die with them (a grader that stops stops them first). Only the batch writes the gradebook, one transaction per
result: killed at any moment, it loses at most the submissions in flight, which
the next run grades because they are not in the gradebook yet.

Each grader runs under a memory limit of its own (GRADER_MEMORY_BYTES): a cgroup
made for it beside the batch's own (its workers' groups stay beside it, not in
it), past which the kernel kills the grader alone; where cgroups are refused,
RLIMIT_DATA, past which its allocations fail (a warning says so; its workers
inherit that limit). In the process sandbox the workers are the grader's
children in its cgroup and share its limit.

A grader that dies takes only its own submission with it: the batch forks a new
grader, grades that submission once more (GRADER_ATTEMPTS), and if that grader
dies too, records the submission as not graded, with the reason (the
gradebook's `ungraded` table: no score, never a silent 0). Submissions on the
other graders go on untouched.

A submission is skipped when the gradebook holds a result for the same student
with the same content hash and checks version (see checks_version), or records
that same submission as not graded; --force regrades. A submission that cannot
be graded through no fault of the student (the sandbox would not start a
worker) is not recorded, so a rerun retries it.

Leftovers: the batch copies submissions into a folder named by its pid; sandboxes
stage copies in folders named by the grader's pid (sandboxes/slots.py), process
workers compile into folders named by their own pid (protocol/worker.py), and
cgroups are named by their maker's pid (sandboxes/cgroups.py). Every batch removes
those whose pid no longer runs when it starts, when a grader dies, and at its end,
so a killed batch's or grader's leftovers go with the next run.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

import autograder
from autograder.batch.intake import Submission
from autograder.engine.assignment import NOTEBOOK_TEMPLATE, Assignment
from autograder.engine.course import Course
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.engine.runner import grade
from autograder.gradebook.store import Gradebook
from autograder.protocol.client import WorkerUnavailable
from autograder.sandboxes import cgroups, template
from autograder.sandboxes.slots import STAGED_PREFIX

PACKAGE = Path(autograder.__file__).resolve().parent
# What a result depends on besides the submission: the assignment's checks and reference, the checks library and engine.
GRADING_CODE = ("checks", "engine", "protocol")
PR_SET_PDEATHSIG = 1
WORKDIR_PREFIX = "autograder-batch-"
PYCACHE_PREFIX = "autograder-pycache-"  # protocol/worker.py's bytecode folders, then the worker's pid
GiB = 1 << 30
# A grader's memory: its cgroup's charge (past it the kernel kills the grader), or its data segment
# under the rlimit (past it allocations fail). Grading the example class, a grader's group peaked at
# 150 MiB (hw1, namespace) and 545 MiB (hw2, process sandbox: workers and timed races included).
GRADER_MEMORY_BYTES = 4 * GiB
GRADER_TASKS = 1024  # processes and threads in a grader's cgroup (the process sandbox's workers included)
GRADER_ATTEMPTS = 2  # graders that may die on one submission before it is recorded as not graded
STOP_SECONDS = 10.0  # for a grader told to stop to exit; past it, it is killed
NOT_GRADED = ("failed", "ungraded")  # the outcomes the batch command ends non-zero for


@dataclass
class Outcome:
    """What the batch did with one submission."""

    student: str
    # "graded"; "broken" (recorded with its reason); "unchanged" (skipped); "failed" (not recorded: a rerun retries);
    # "ungraded" (its graders died: recorded as not graded, with the reason)
    action: str
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    detail: str = ""
    earlier: bool = False  # an "ungraded" recorded by an earlier run for this same submission: skipped in this one
    worker: str = ""  # the cluster worker that graded it (batch --cluster); "" here
    sandbox: str = ""  # and the sandbox it graded in there


def checks_version(assignment: Assignment, course: Course, cuda: bool | None = None) -> str:
    """A hash of everything besides the submission that a score depends on; cuda: whether the grading host has a
    CUDA device (default: this host), which the scores of an assignment with CUDA checks depend on."""
    cuda = (torch.cuda.is_available() if cuda is None else cuda) and has_cuda_checks(assignment)
    digest = hashlib.sha256(f"{autograder.__version__}\0{course.cuda_absent}\0cuda={cuda}\0".encode())
    digest.update(hashlib.sha256(assignment.secret or b"").digest())  # it decides the hidden inputs
    folders = [assignment.reference_dir] + [PACKAGE / name for name in GRADING_CODE]
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            if path.name == NOTEBOOK_TEMPLATE and folder == assignment.reference_dir:
                continue  # the students' notebook: no score depends on it
            digest.update(f"{path.relative_to(folder)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def has_cuda_checks(assignment: Assignment) -> bool:
    return any(spec.device == "cuda" for spec in assignment.checks)


def broken_result(assignment: Assignment, submission: Submission, sandbox: str) -> SubmissionResult:
    """The result of a submission nothing of which can be graded: every check scores 0, with the reason."""
    checks = [
        CheckResult(spec.id, 0.0, spec.points, "error", f"not graded: {submission.broken}", spec.visibility)
        for spec in assignment.checks
    ]
    return SubmissionResult(assignment.name, submission.student, checks, sandbox, [submission.broken, *submission.notes],
                            submission.submitted_at, submission.submitted_at_source)


# Set by run_batch before the graders fork: they inherit it instead of receiving it pickled.
_job: dict = {}


def run_batch(
    assignment: Assignment,
    submissions: list[Submission],
    gradebook: Gradebook,
    *,
    sandbox,
    course: Course,
    workers: int,
    force: bool = False,
    on_start=None,
    on_outcome=None,
    on_busy=None,
    grader_memory_bytes: int = GRADER_MEMORY_BYTES,
) -> list[Outcome]:
    """Grade what needs grading among submissions; on_start(count to grade, graders), on_outcome(Outcome) as each
    ends, on_busy(students) with the students being graded whenever graders take new submissions."""
    sweep_leftovers()
    version = checks_version(assignment, course)
    outcomes, pending = triage(assignment, submissions, gradebook, version, sandbox.name, force)
    graders_count = max(1, min(workers, len(pending)))
    if on_start:
        on_start(len(pending), graders_count)
    for outcome in outcomes:
        if on_outcome:
            on_outcome(outcome)
    if not pending:
        return outcomes
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    _job.update(assignment=assignment, sandbox=sandbox, course=course, batch_pid=os.getpid())
    graders = _Graders(graders_count, grader_memory_bytes)
    try:
        queue = collections.deque(_Task(s, s.write(workdir / str(i))) for i, s in enumerate(pending))
        graders.assign(queue)
        if on_busy:
            on_busy(graders.students())
        while graders.busy:
            ended = []
            for task, reply in graders.replies():
                if reply is None and len(task.deaths) < GRADER_ATTEMPTS:
                    queue.append(task)  # once more, on a fresh grader, after the others
                else:
                    ended.append((task, reply))
            # Idle graders take their next submissions before the results are recorded: they grade while the
            # gradebook commits, and the progress shows whom they took beside each result.
            if graders.assign(queue) and on_busy:
                on_busy(graders.students())
            for task, reply in ended:
                shutil.rmtree(task.copy, ignore_errors=True)
                if reply is None:
                    outcome = record_ungraded(assignment.name, task.submission, _death_reason(task.deaths), gradebook, version)
                else:
                    outcome = settle(assignment.name, task.submission, reply, gradebook, version)
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
    except BaseException:
        graders.kill()
        raise
    finally:
        graders.close()
        shutil.rmtree(workdir, ignore_errors=True)
        sweep_leftovers()
    return outcomes


def triage(assignment: Assignment, submissions: list[Submission], gradebook: Gradebook, version: str, sandbox: str,
           force: bool) -> tuple[list[Outcome], list[Submission]]:
    """What needs no grading (unchanged, recorded as not graded before, broken: recorded here), and what does."""
    outcomes, pending = [], []
    for submission in submissions:
        digest = submission.content_hash
        earlier = None if force else gradebook.ungraded_reason(assignment.name, submission.student, digest, version)
        if not force and gradebook.is_current(assignment.name, submission.student, digest, version):
            outcomes.append(Outcome(submission.student, "unchanged"))
        elif earlier is not None:
            outcomes.append(Outcome(submission.student, "ungraded", earlier=True,
                                    detail=f"{earlier} (in an earlier run, on this same submission: --force grades it again)"))
        elif submission.broken:
            result = broken_result(assignment, submission, sandbox)
            gradebook.record(result, digest, version, 0.0)
            outcomes.append(Outcome(submission.student, "broken", 0.0, result.max_score, 0.0, submission.broken))
        else:
            pending.append(submission)
    return outcomes, pending


@dataclass
class _Task:
    submission: Submission
    copy: Path
    deaths: list[str] = field(default_factory=list)  # how each grader that took it died


def _death_reason(deaths: list[str]) -> str:
    times = {1: "once", 2: "twice"}.get(len(deaths), f"{len(deaths)} times")
    return f"its grader was {deaths[0]}, {times}" if len(set(deaths)) == 1 else f"its graders died: {'; '.join(deaths)}"


def record_ungraded(assignment: str, submission: Submission, reason: str, gradebook: Gradebook, version: str) -> Outcome:
    """Record submission as not graded, for reason (its graders died)."""
    gradebook.record_ungraded(assignment, submission.student, submission.content_hash, version, reason)
    return Outcome(submission.student, "ungraded", detail=f"{reason} (recorded as not graded: a rerun skips it, --force grades it again)")


def settle(assignment: str, submission: Submission, reply: tuple[dict, float], gradebook: Gradebook, version: str) -> Outcome:
    """Record a grader's reply (grade_copy's): the result, or nothing where the host failed (a rerun retries)."""
    result_dict, seconds = reply
    if "failure" in result_dict:
        return Outcome(submission.student, "failed", seconds=seconds, detail=result_dict["failure"])
    result = SubmissionResult.from_dict(result_dict)
    result.submitted_at, result.submitted_at_source = submission.submitted_at, submission.submitted_at_source
    gradebook.record(result, submission.content_hash, version, seconds)
    return Outcome(submission.student, "graded", result.score, result.max_score, seconds)


class _Graders:
    """Up to `count` forked graders, each grading one task at a time; a grader that dies is replaced."""

    def __init__(self, count: int, memory_bytes: int):
        self.slots: list[_Grader | None] = [None] * count
        self.memory_bytes = memory_bytes
        self.use_cgroups = True
        cgroups.make_groups_here()  # the graders' workers' groups go beside the graders' groups

    @property
    def busy(self) -> bool:
        return any(grader and grader.task for grader in self.slots)

    def students(self) -> list[str]:
        """The students whose submissions the graders hold now."""
        return [grader.task.submission.student for grader in self.slots if grader and grader.task]

    def assign(self, queue: collections.deque) -> int:
        """Give idle graders tasks from queue (starting graders where needed); how many they took."""
        taken = 0
        for index, grader in enumerate(self.slots):
            if not queue:
                return taken
            if grader and grader.task:
                continue
            if grader is None or not grader.process.is_alive():
                if grader:
                    grader.close()
                grader = self.slots[index] = self._start()
            grader.task = queue.popleft()
            taken += 1
            try:
                grader.connection.send((grader.task.submission.student, str(grader.task.copy), grader.task.submission.notes))
            except OSError:
                pass  # it died: replies() counts that against the task, as any death while holding it
        return taken

    def replies(self) -> list[tuple[_Task, tuple[dict, float] | None]]:
        """Wait until a busy grader replies or dies: (task, (result, seconds)) for each reply, (task, None) for each death."""
        busy = [grader for grader in self.slots if grader and grader.task]
        if not busy:
            return []
        multiprocessing.connection.wait([g.connection for g in busy] + [g.process.sentinel for g in busy])
        ended = []
        for index, grader in enumerate(self.slots):
            if not (grader and grader.task):
                continue
            try:
                reply = grader.connection.recv() if grader.connection.poll() else None
            except (EOFError, OSError):
                reply = None
            if reply is not None:
                ended.append((grader.task, reply))
                grader.task = None
            elif not grader.process.is_alive():
                grader.task.deaths.append(grader.death(self.memory_bytes))
                ended.append((grader.task, None))
                grader.close()
                self.slots[index] = None
                sweep_leftovers()  # its staged copies and its workers' groups
        return ended

    def _start(self) -> _Grader:
        if self.use_cgroups:
            try:
                return _Grader.start(self.memory_bytes, cgroup=True)
            except (cgroups.CgroupUnavailable, OSError) as exc:
                self.use_cgroups = False
                print(f"autograder: warning: no cgroup for the graders ({exc}); each grader's memory is limited by "
                      f"RLIMIT_DATA to {_size(self.memory_bytes)} instead, which its workers inherit", file=sys.stderr)
        return _Grader.start(self.memory_bytes, cgroup=False)

    def kill(self) -> None:
        """Kill the graders now (an interrupted batch): their workers die with them."""
        for grader in self.slots:
            if grader and grader.process.is_alive():
                grader.process.kill()

    def close(self) -> None:
        for grader in self.slots:
            if grader:
                grader.stop()
        for grader in self.slots:
            if grader:
                grader.close()
        self.slots = [None] * len(self.slots)


class _Grader:
    """One forked grader: its process, the batch's end of its pipe, its cgroup (None under the rlimit), its task."""

    def __init__(self, process, connection, cgroup):
        self.process, self.connection, self.cgroup = process, connection, cgroup
        self.task: _Task | None = None

    @classmethod
    def start(cls, memory_bytes: int, cgroup: bool) -> _Grader:
        group = cgroups.Cgroup.create(memory_bytes, GRADER_TASKS, float(os.cpu_count() or 1)) if cgroup else None
        ours, theirs = multiprocessing.get_context("fork").Pipe()
        process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(theirs, None if group else memory_bytes))
        try:
            process.start()
        except BaseException:
            if group:
                group.destroy()
            raise
        theirs.close()
        grader = cls(process, ours, group)
        if group:
            try:
                group.add(process.pid)  # before its first task: it waits for one
            except OSError:
                grader.close()
                raise
        return grader

    def death(self, memory_bytes: int) -> str:
        """How the grader died, e.g. "killed by the out-of-memory killer (over its 4 GiB limit)"."""
        code = self.process.exitcode
        if self.cgroup and self.cgroup.oom_kills():
            return f"killed by the kernel's out-of-memory killer (over the {_size(memory_bytes)} grader memory limit)"
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            return f"killed by {name}"
        return f"gone (exit status {code})"

    def stop(self) -> None:
        """Ask the grader to exit once idle; it is killed if it does not within STOP_SECONDS."""
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def close(self) -> None:
        """Kill what is left of the grader and remove its cgroup."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()
        if self.cgroup:
            self.cgroup.destroy()


def sweep_leftovers() -> None:
    """Remove what killed batches, graders and workers left: copies, bytecode folders, cgroups (named by a pid now dead)."""
    temporary = Path(tempfile.gettempdir())
    for prefix in (WORKDIR_PREFIX, STAGED_PREFIX, PYCACHE_PREFIX):
        for folder in temporary.glob(f"{prefix}*-*"):
            pid = folder.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not cgroups.alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
    try:
        cgroups.sweep()
    except OSError:
        pass  # a group whose processes would not die yet: the next sweep takes it


def _serve(connection, data_limit: int | None) -> None:
    """A grader: take a task, grade it, reply; until told to stop (None) or the batch is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != _job["batch_pid"]:  # the batch died before the line above took effect
        os._exit(1)
    if data_limit is not None:  # the soft limit only: a worker may still set its own
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        soft = data_limit if hard == resource.RLIM_INFINITY else min(data_limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    try:
        while True:
            try:
                task = connection.recv()
            except EOFError:
                return
            if task is None:
                return
            connection.send(grade_copy(_job["assignment"], _job["sandbox"], _job["course"], *task))
    finally:  # its warm workers (a forked process ends without running atexit)
        template.stop_all()


def grade_copy(assignment: Assignment, sandbox, course: Course, student: str, copy: str, notes: list[str]) -> tuple[dict, float]:
    """Grade the submission copied at copy: (its result as a dict, or {"failure": why}, and the seconds it took)."""
    started = time.monotonic()
    try:
        result = grade(assignment, Path(copy), sandbox, student, course=course)
    except WorkerUnavailable as exc:  # the host's trouble, not the student's
        return {"failure": str(exc)}, time.monotonic() - started
    except Exception:  # a bug of the grader's own: its traceback is what a maintainer needs
        return {"failure": traceback.format_exc(limit=8)}, time.monotonic() - started
    result.notes = list(notes)
    return result.to_dict(), time.monotonic() - started


def _size(size: int) -> str:
    return f"{size / GiB:g} GiB" if size >= GiB else f"{size / (1 << 20):g} MiB"
