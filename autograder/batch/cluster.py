"""Grade a class on a Dask distributed cluster: `autograder batch --cluster ADDRESS`.

Process model:
    batch (this process: the gradebook's only writer; it runs no student code)
      └─ Dask client ── scheduler ── graders: Dask workers on any host (batch/cluster_worker.py)
The batch decides what needs grading exactly as a local batch does (run.triage), sends
the assignment's material once (a task whose result the graders share) and one task
per submission, and commits each result the moment it arrives, so resume, idempotence
and --force keep their meaning: a batch killed at any point loses only the results in
flight. It keeps as many tasks out as the cluster has slots (worker threads), so a
slot never holds a second submission waiting behind the one it grades: when a grader
dies, only the submission it was grading is suspected.

Failures:
- a grader dies (killed, out of memory, its host gone): Dask runs its task again
  elsewhere; a submission on which graders died more often than the scheduler allows
  (its `distributed.scheduler.allowed-failures`, 3 by default) comes back as
  KilledWorker and is recorded as not graded, with the reason; the class goes on;
- a grader that cannot grade (another autograder, no such sandbox there): the
  submission is not recorded, a rerun retries it;
- the scheduler unreachable, at the start or later: the batch says so and ends, with
  every result so far committed.
"""

from __future__ import annotations

import collections
import logging

from autograder.batch import run
from autograder.batch.cluster_worker import GPU, Material, grade_task, hold
from autograder.batch.intake import Submission
from autograder.engine.assignment import Assignment
from autograder.engine.course import Course
from autograder.gradebook.store import Gradebook

CONNECT_SECONDS = 10.0  # to reach the scheduler
WORKERS_SECONDS = 60.0  # for a first worker to join a scheduler that has none
CLUSTER_ENVIRONMENT = "AUTOGRADER_CLUSTER"
INSTALL = "pip install 'dl-autograder[cluster]'"  # the default address, over course.toml's [grading] cluster


class ClusterUnavailable(Exception):
    """The scheduler cannot be reached, or lost, or has no worker: the batch ends, every result so far committed."""


def run_cluster_batch(
    assignment: Assignment,
    submissions: list[Submission],
    gradebook: Gradebook,
    *,
    address: str,
    sandbox: str,
    course: Course,
    force: bool = False,
    on_start=None,
    on_outcome=None,
    on_busy=None,
) -> list[run.Outcome]:
    """run.run_batch's contract on the cluster at address; sandbox: the name each grader chooses its sandbox by."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterUnavailable(f"grading on a cluster needs Dask's distributed on this host: {INSTALL}") from None

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its reconnection chatter; the batch says what failed
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address} ({exc}): start one with "
                                 f"`dask scheduler`, or check the address") from None
    try:
        return _Batch(client, address, assignment, gradebook, sandbox, course, on_outcome, on_busy).grade(
            submissions, force, on_start)
    finally:
        client.close(timeout=CONNECT_SECONDS)


class _Batch:
    def __init__(self, client, address, assignment, gradebook, sandbox, course, on_outcome, on_busy):
        self.client, self.address, self.assignment = client, address, assignment
        self.gradebook, self.sandbox, self.course = gradebook, sandbox, course
        self.on_outcome, self.on_busy = on_outcome, on_busy

    def grade(self, submissions: list[Submission], force: bool, on_start) -> list[run.Outcome]:
        from distributed import as_completed

        workers = self._workers()
        gpu = run.has_cuda_checks(self.assignment) and any(w.get("resources", {}).get(GPU) for w in workers.values())
        version = run.checks_version(self.assignment, self.course, cuda=gpu)
        outcomes, pending = run.triage(self.assignment, submissions, self.gradebook, version, self.sandbox, force)
        if on_start:
            on_start(len(pending), _slots(workers, gpu))
        for outcome in outcomes:
            self._tell(outcome)
        if not pending:
            return outcomes
        material = self.client.submit(hold, Material.pack(self.assignment, self.course, version, gpu), pure=False,
                                      key=f"autograder-material-{self.assignment.name}-{version}")
        queue, flying, arrived = collections.deque(pending), {}, as_completed(loop=self.client.loop)
        resources = {GPU: 1} if gpu else None

        def send() -> None:
            capacity = max(1, _slots(self._workers(), gpu))
            sent = False
            while queue and len(flying) < capacity:
                submission = queue.popleft()
                future = self.client.submit(
                    grade_task, material, submission.student, submission.files, submission.notes, self.sandbox,
                    key=f"autograder-grade-{self.assignment.name}-{submission.student}-{submission.content_hash[:16]}-{version}",
                    resources=resources, pure=False)
                flying[future.key] = submission
                arrived.add(future)
                sent = True
            if sent and self.on_busy:
                self.on_busy([s.student for s in flying.values()])

        send()
        for future in arrived:
            submission = flying.pop(future.key)
            if future.status == "cancelled":
                raise ClusterUnavailable(f"lost the Dask scheduler at {self.address} while grading; every result shown "
                                         f"so far is saved: run the same command again to go on")
            send()  # the freed slot grades while this result commits
            outcome = self._settle(future, submission, version)
            future.release()
            outcomes.append(outcome)
            self._tell(outcome)
        material.release()
        return outcomes

    def _settle(self, future, submission: Submission, version: str) -> run.Outcome:
        from distributed import KilledWorker

        if future.status == "error":
            error = future.exception()
            if isinstance(error, KilledWorker):
                last = error.last_worker
                reason = (f"the Dask workers grading it died {error.allowed_failures + 1} times (the last: "
                          f"{last.name if last is not None else 'unknown'})")
                return run.record_ungraded(self.assignment.name, submission, reason, self.gradebook, version)
            return run.Outcome(submission.student, "failed", detail=f"the cluster could not grade it: {type(error).__name__}: {error}")
        result, seconds, worker = future.result()
        outcome = run.settle(self.assignment.name, submission, (result, seconds), self.gradebook, version)
        outcome.worker, outcome.sandbox = worker, result.get("sandbox", "")
        return outcome

    def _workers(self) -> dict:
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except OSError as exc:
            raise ClusterUnavailable(f"lost the Dask scheduler at {self.address} ({exc}); every result shown so far is "
                                     f"saved: run the same command again to go on") from None
        if workers:
            return workers
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except (TimeoutError, OSError):
            raise ClusterUnavailable(f"no worker joined the Dask scheduler at {self.address} in {WORKERS_SECONDS:g} s: "
                                     f"start some with `autograder worker {self.address}`") from None
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def _tell(self, outcome: run.Outcome) -> None:
        if self.on_outcome:
            self.on_outcome(outcome)


def _slots(workers: dict, gpu: bool) -> int:
    """Submissions the cluster grades at once: its workers' threads, or its GPUs for tasks that need one."""
    if gpu:
        return int(sum(w.get("resources", {}).get(GPU, 0) for w in workers.values()))
    return sum(int(w.get("nthreads", 1)) for w in workers.values())
