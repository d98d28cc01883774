"""Grade a class on a Dask distributed cluster: `autograder batch --cluster ADDRESS`.

Process model:
    batch (this process: the gradebook's only writer; it runs no student code)
      └─ Dask client ── scheduler ── graders: Dask workers on any host (batch/cluster_worker.py)
The batch decides what needs grading exactly as a local batch does (run.triage), sends
the assignment's material once (a task whose result every grader gets a copy of) and
one task per submission, and commits each result the moment it arrives, so resume,
idempotence and --force keep their meaning: a batch killed at any point loses only the
results in flight. It keeps as many tasks out as the usable graders have slots.

Failures:
- a grader dies (killed, out of memory, its host gone): Dask runs its tasks again
  elsewhere. Dask counts a death against every task the dead grader held, queued ones
  too, and gives up on a task past `distributed.scheduler.allowed-failures` deaths (3
  by default) with KilledWorker. The batch takes that for suspicion only: the
  submission is graded again at the end, alone on the cluster, and recorded as not
  graded (with the reason) only if graders die on it there too. The class goes on;
- a grader that cannot grade (another autograder, no isolating sandbox, a GPU it does
  not have) refuses the task, saying why: the batch says so once, sends that
  grader's tasks to the others and no more to it, and ends when no grader can grade;
- the scheduler unreachable, or no usable grader for WORKERS_SECONDS (all gone, or
  the GPU slots gone): the batch says so and ends, every result so far committed.
"""

from __future__ import annotations

import collections
import logging
import time
from concurrent.futures import CancelledError

from autograder.batch import run
from autograder.batch.cluster_worker import GPU, Material, grade_task, hold
from autograder.batch.intake import Submission
from autograder.engine.assignment import Assignment
from autograder.engine.course import Course
from autograder.gradebook.store import Gradebook

CONNECT_SECONDS = 10.0  # to reach the scheduler
WORKERS_SECONDS = 60.0  # for a usable worker to join a scheduler that has none (a nanny restarts a dead one in seconds)
POLL_SECONDS = 5.0  # between looks at the workers while no task returns
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
    on_note=None,
) -> list[run.Outcome]:
    """run.run_batch's contract on the cluster at address; sandbox: the name each grader chooses its sandbox by;
    on_note(text): what the user should know meanwhile (a grader that refuses, none left)."""
    try:
        from distributed import Client
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.security import Security
    except ImportError:
        raise ClusterUnavailable(f"grading on a cluster needs Dask's distributed on this host: {INSTALL}") from None

    for name in [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "distributed"] + ["distributed"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # its reconnection chatter: the batch says what failed
    try:
        protocol, location = parse_address(address)
        if protocol in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise ClusterUnavailable(f"{address!r} is not a Dask scheduler's address ({exc}): give one like tcp://host:8786") from None
    if protocol == "tls" and Security().get_connection_args("client")["ssl_context"] is None:
        raise ClusterUnavailable("a tls:// address needs Dask's TLS settings: set distributed.comm.tls (ca-file, "
                                 "client.cert, client.key) in Dask's configuration, or use tcp:// on a private network")
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address} ({exc}): start one with "
                                 f"`dask scheduler`, or check the address") from None
    try:
        with client.as_current():  # for distributed.wait, which finds its client so
            return _Batch(client, address, assignment, gradebook, sandbox, course, on_outcome, on_busy, on_note).grade(
                submissions, force, on_start)
    finally:
        client.close(timeout=CONNECT_SECONDS)


class _Batch:
    def __init__(self, client, address, assignment, gradebook, sandbox, course, on_outcome, on_busy, on_note):
        self.client, self.address, self.assignment = client, address, assignment
        self.gradebook, self.sandbox, self.course = gradebook, sandbox, course
        self.on_outcome, self.on_busy, self.on_note = on_outcome, on_busy, on_note
        self.flying: dict = {}  # future -> (submission, sent alone)
        self.queue: collections.deque = collections.deque()
        self.suspects: collections.deque = collections.deque()  # KilledWorker among others: graded again, alone
        self.refusing: dict[str, str] = {}  # grader address -> why it cannot grade
        self.sent = collections.Counter()  # student -> tasks sent (a key per attempt)
        self.waiting_since: float | None = None  # since when no usable grader has been there

    def grade(self, submissions: list[Submission], force: bool, on_start) -> list[run.Outcome]:
        from distributed import wait

        workers = self._first_workers()
        self.gpu = run.has_cuda_checks(self.assignment) and any(w.get("resources", {}).get(GPU) for w in workers.values())
        self.version = run.checks_version(self.assignment, self.course, cuda=self.gpu)
        outcomes, pending = run.triage(self.assignment, submissions, self.gradebook, self.version, self.sandbox, force)
        if on_start:
            on_start(len(pending), _slots(workers, self.gpu))
        for outcome in outcomes:
            self._tell(outcome)
        if not pending:
            return outcomes
        self.material = self.client.submit(hold, Material.pack(self.assignment, self.course, self.version, self.gpu),
                                           pure=False, key=f"autograder-material-{self.assignment.name}-{self.version}")
        try:
            wait(self.material, timeout=WORKERS_SECONDS)
            self.client.replicate(self.material)  # on every grader: none is preferred for holding it
        except TimeoutError:
            raise ClusterUnavailable(f"the workers of the Dask scheduler at {self.address} did not take the "
                                     f"assignment's material in {WORKERS_SECONDS:g} s: are they busy, or gone?") from None
        except CancelledError:
            raise self._lost() from None
        self.queue.extend(pending)
        while self.queue or self.suspects or self.flying:
            self._send()
            for future in self._arrived():
                submission, alone = self.flying.pop(future)
                outcome = self._settle(future, submission, alone)
                future.release()
                if outcome is not None:
                    outcomes.append(outcome)
                    self._tell(outcome)
        self.material.release()
        return outcomes

    def _send(self) -> None:
        """Fill the usable graders' slots from the queue; once it is empty, the suspects one at a time, alone."""
        from dask.base import tokenize

        usable = self._usable()
        capacity = max(1, _slots(usable, self.gpu))
        sent = False
        while (self.queue and len(self.flying) < capacity) or (not self.queue and self.suspects and not self.flying):
            alone = not self.queue
            submission = (self.queue or self.suspects).popleft()
            self.sent[submission.student] += 1
            inputs = tokenize(self.version, submission.student, submission.content_hash, submission.notes, self.sandbox)
            future = self.client.submit(
                grade_task, self.material, submission, self.sandbox,
                key=f"autograder-grade-{self.assignment.name}-{submission.student}-{inputs}-{self.sent[submission.student]}",
                resources={GPU: 1} if self.gpu else None, pure=False,
                # Not to graders that refused: a preference, so that a task whose graders are all gone runs anywhere.
                **({"workers": sorted(usable), "allow_other_workers": True} if self.refusing and usable else {}))
            self.flying[future] = (submission, alone)
            sent = True
        if sent and self.on_busy:
            self.on_busy([submission.student for submission, _ in self.flying.values()])

    def _arrived(self) -> list:
        """The tasks done within POLL_SECONDS (maybe none); ClusterUnavailable after WORKERS_SECONDS without a usable grader."""
        from distributed import wait

        try:
            return list(wait(list(self.flying), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done)
        except TimeoutError:
            pass
        except CancelledError:  # Dask cancels every future when the scheduler goes away
            raise self._lost() from None
        if self._usable():
            self.waiting_since = None
        elif self.waiting_since is None:
            self.waiting_since = time.monotonic()
            self._note(f"no worker that can grade {self.assignment.name} is left on the Dask scheduler at {self.address}: "
                       f"waiting up to {WORKERS_SECONDS:g} s for one (`autograder worker {self.address}`)")
        elif time.monotonic() - self.waiting_since > WORKERS_SECONDS:
            raise ClusterUnavailable(f"no worker that can grade {self.assignment.name} came to the Dask scheduler at "
                                     f"{self.address} in {WORKERS_SECONDS:g} s{self._refusals()}; every result shown so far "
                                     f"is saved: start workers and run the same command again to go on")
        return []

    def _settle(self, future, submission: Submission, alone: bool) -> run.Outcome | None:
        """The outcome of a returned task, recorded; None where the submission goes back to be graded again."""
        from distributed import KilledWorker

        if future.status == "error":
            error = future.exception()
            if not isinstance(error, KilledWorker):
                return run.Outcome(submission.student, "failed", detail=f"the cluster could not grade it: {type(error).__name__}: {error}")
            if not alone:  # the grader may have died of another task it held
                self.suspects.append(submission)
                return None
            last = error.last_worker
            reason = (f"the Dask workers grading it died {error.allowed_failures + 1} times, with no other submission "
                      f"there (the last: {last.name if last is not None else 'unknown'})")
            return run.record_ungraded(self.assignment.name, submission, reason, self.gradebook, self.version)
        reply = future.result()
        if "refused" in reply:
            if reply["address"] not in self.refusing:
                self.refusing[reply["address"]] = f"{reply['worker']}: {reply['refused']}"
                self._note(f"worker {reply['worker']} cannot grade: {reply['refused']}; its submissions go to the others")
            (self.suspects if alone else self.queue).appendleft(submission)
            if not self._usable():
                raise ClusterUnavailable(f"no worker on the Dask scheduler at {self.address} can grade "
                                         f"{self.assignment.name}{self._refusals()}; every result shown so far is saved")
            return None
        outcome = run.settle(self.assignment.name, submission, (reply["result"], reply["seconds"]), self.gradebook, self.version)
        outcome.worker, outcome.sandbox = reply["worker"], reply["result"].get("sandbox", "")
        return outcome

    def _first_workers(self) -> dict:
        """The scheduler's workers, once there is one (waiting up to WORKERS_SECONDS)."""
        workers = self._workers()
        if workers:
            return workers
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except (TimeoutError, OSError):
            raise ClusterUnavailable(f"no worker joined the Dask scheduler at {self.address} in {WORKERS_SECONDS:g} s: "
                                     f"start some with `autograder worker {self.address}`") from None
        return self._workers()

    def _workers(self) -> dict:
        try:
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except OSError as exc:
            raise ClusterUnavailable(f"lost the Dask scheduler at {self.address} ({exc}); every result shown so far is "
                                     f"saved: run the same command again to go on") from None

    def _usable(self) -> dict:
        """The workers that may take this batch's tasks: not refusing, with a GPU where the tasks need one."""
        return {address: info for address, info in self._workers().items() if address not in self.refusing
                and (not self.gpu or info.get("resources", {}).get(GPU))}

    def _lost(self) -> ClusterUnavailable:
        return ClusterUnavailable(f"lost the Dask scheduler at {self.address} while grading; every result shown so far "
                                  f"is saved: run the same command again to go on")

    def _refusals(self) -> str:
        return f" (refusing: {'; '.join(self.refusing.values())})" if self.refusing else ""

    def _tell(self, outcome: run.Outcome) -> None:
        if self.on_outcome:
            self.on_outcome(outcome)

    def _note(self, text: str) -> None:
        if self.on_note:
            self.on_note(text)


def _slots(workers: dict, gpu: bool) -> int:
    """Submissions the cluster grades at once: its workers' threads, or its GPUs for tasks that need one."""
    if gpu:
        return int(sum(w.get("resources", {}).get(GPU, 0) for w in workers.values()))
    return sum(int(w.get("nthreads", 1)) for w in workers.values())
