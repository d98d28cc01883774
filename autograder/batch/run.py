"""Grade a class: submissions in parallel, each result committed the moment it is done.

Process model:
    batch (this process: has imported torch and loaded the checks and reference)
      ├─ grader 1   forked: grades one submission at a time, each in its own sandboxed
      ├─ ...        worker (one torch import per worker tree, a fresh child per check)
      └─ grader N
The graders are forked, so they inherit torch and the assignment without
importing anything; they die with the batch (PR_SET_PDEATHSIG), and their
workers die with them. Only the batch writes the gradebook, one transaction per
result: killed at any moment, it loses at most the submissions in flight, which
the next run grades because they are not in the gradebook yet.

A submission is skipped when the gradebook holds a result for the same student
with the same content hash and checks version (see checks_version); --force
regrades. A submission that cannot be graded through no fault of the student
(the sandbox would not start a worker) is not recorded, so a rerun retries it.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import dataclass
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

PACKAGE = Path(autograder.__file__).resolve().parent
# What a result depends on besides the submission: the assignment's checks and reference, the checks library and engine.
GRADING_CODE = ("checks", "engine", "protocol")
PR_SET_PDEATHSIG = 1
WORKDIR_PREFIX = "autograder-batch-"


@dataclass
class Outcome:
    """What the batch did with one submission."""

    student: str
    action: str  # "graded", "broken" (recorded with its reason), "unchanged" (skipped), "failed" (not recorded)
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0
    detail: str = ""


def checks_version(assignment: Assignment, course: Course) -> str:
    """A hash of everything besides the submission that a score depends on."""
    digest = hashlib.sha256(f"{autograder.__version__}\0{course.cuda_absent}\0cuda={torch.cuda.is_available()}\0".encode())
    digest.update(hashlib.sha256(assignment.secret or b"").digest())  # it decides the hidden inputs
    folders = [assignment.reference_dir] + [PACKAGE / name for name in GRADING_CODE]
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            if path.name == NOTEBOOK_TEMPLATE and folder == assignment.reference_dir:
                continue  # the students' notebook: no score depends on it
            digest.update(f"{path.relative_to(folder)}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


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
) -> list[Outcome]:
    """Grade what needs grading among submissions; on_start(count to grade), on_outcome(Outcome) as each ends."""
    version = checks_version(assignment, course)
    outcomes, pending = [], []
    for submission in submissions:
        digest = submission.content_hash
        if not force and gradebook.is_current(assignment.name, submission.student, digest, version):
            outcomes.append(Outcome(submission.student, "unchanged"))
        elif submission.broken:
            result = broken_result(assignment, submission, sandbox.name)
            gradebook.record(result, digest, version, 0.0)
            outcomes.append(Outcome(submission.student, "broken", 0.0, result.max_score, 0.0, submission.broken))
        else:
            pending.append(submission)
    if on_start:
        on_start(len(pending))
    for outcome in outcomes:
        if on_outcome:
            on_outcome(outcome)
    if not pending:
        return outcomes
    _sweep_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    _job.update(assignment=assignment, sandbox=sandbox, course=course, batch_pid=os.getpid())
    context = multiprocessing.get_context("fork")
    pool = concurrent.futures.ProcessPoolExecutor(max(1, min(workers, len(pending))), context, initializer=_become_grader)
    try:
        futures = {}
        for index, submission in enumerate(pending):
            copy = submission.write(workdir / str(index))
            futures[pool.submit(_grade_one, submission.student, str(copy), submission.notes)] = (submission, copy)
        for future in concurrent.futures.as_completed(futures):
            submission, copy = futures[future]
            shutil.rmtree(copy, ignore_errors=True)
            outcome = _settle(future, submission, gradebook, version)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    except BaseException:
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return outcomes


def _sweep_workdirs() -> None:
    """Remove the copies a killed batch left in the temporary folder (named by its pid, now dead)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = folder.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def _settle(future, submission: Submission, gradebook: Gradebook, version: str) -> Outcome:
    try:
        result_dict, seconds = future.result()
    except concurrent.futures.process.BrokenProcessPool:
        return Outcome(submission.student, "failed", detail="its grader process died; rerun the batch to grade it")
    if "failure" in result_dict:
        return Outcome(submission.student, "failed", seconds=seconds, detail=result_dict["failure"])
    result = SubmissionResult.from_dict(result_dict)
    result.submitted_at, result.submitted_at_source = submission.submitted_at, submission.submitted_at_source
    gradebook.record(result, submission.content_hash, version, seconds)
    return Outcome(submission.student, "graded", result.score, result.max_score, seconds)


def _become_grader() -> None:
    """In each forked grader: die with the batch, leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != _job["batch_pid"]:  # the batch died before the line above took effect
        os._exit(1)


def _grade_one(student: str, copy: str, notes: list[str]) -> tuple[dict, float]:
    started = time.monotonic()
    try:
        result = grade(_job["assignment"], Path(copy), _job["sandbox"], student, course=_job["course"])
    except WorkerUnavailable as exc:  # the host's trouble, not the student's
        return {"failure": str(exc)}, time.monotonic() - started
    except Exception:  # a bug of the grader's own: its traceback is what a maintainer needs
        return {"failure": traceback.format_exc(limit=8)}, time.monotonic() - started
    result.notes = list(notes)
    return result.to_dict(), time.monotonic() - started


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill the graders now (an interrupted batch): their workers die with them."""
    for process in list(getattr(pool, "_processes", {}).values()):
        if process.is_alive():
            process.kill()
