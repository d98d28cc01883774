"""A Dask worker that grades: the worker's side of `autograder batch --cluster`.

Process model (one host; `autograder worker` starts it, batch/cluster.py feeds it):
    autograder worker (this host's launcher: the nannies; no student code)
      ├─ nanny 1 ── grader 1   a Dask worker process, one task at a time (one thread),
      ├─ ...                    torch imported once (dask_setup); it grades as a local
      └─ nanny N ── grader N   batch's grader does (batch/run.py grade_copy), its
                                sandbox's warm template kept across tasks
A grader is trusted: it holds the assignment's checks, reference and course secret,
which reach it from the batch inside the task graph (Material), are unpacked into a
folder only its user can read, and never enter a sandbox's view. Student code runs
only in the sandbox's workers, as in a local batch. A nanny restarts its grader when
it dies; Dask reschedules the tasks the dead grader held.

A task is a pure function of (material, submission, student id): the same result
wherever and however often it runs, so a task Dask runs twice costs time only; the
batch records each submission once. The grader refuses material whose checks version
(batch/run.py checks_version, computed here from this host's autograder and CUDA) is
not the one the batch expects: another autograder release on a worker, or a CUDA
device the scheduler was not told of, would grade otherwise than the batch believes.

Dask's own traffic (tasks and results, pickled) is trusted: run the scheduler and
workers on a network only the course's hosts reach, or with Dask's TLS. In the
namespace and docker sandboxes student code has no network; in the process
sandbox it has the host's, so grade with it only what you would run yourself.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import signal
import socket
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import autograder

GPU = "GPU"  # the Dask worker resource a CUDA device is declared as; tasks of assignments with CUDA checks ask for one
MATERIAL_FOLDER = "material"  # under a folder named by run.WORKDIR_PREFIX and this process's pid: swept when it is gone


class CannotGrade(Exception):
    """This worker cannot grade as the batch expects (other grading code, CUDA, no isolating sandbox)."""


@dataclass(frozen=True)
class Material:
    """What a grader grades with, sent by the batch: the assignment's reference folder (checks and solutions, as
    a tar without bytecode), the course secret that keys hidden inputs, the course, and the checks version the
    batch expects of them."""

    name: str
    archive: bytes
    secret: bytes
    course: object  # engine.course.Course
    version: str
    cuda: bool  # whether the batch expects a CUDA device: tasks then run where the GPU resource is

    @classmethod
    def pack(cls, assignment, course, version: str, cuda: bool) -> Material:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for path in sorted(Path(assignment.reference_dir).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and not path.is_symlink():
                    archive.add(path, arcname=str(path.relative_to(assignment.reference_dir)), recursive=False)
        return cls(assignment.name, buffer.getvalue(), assignment.secret or b"", course, version, cuda)


def hold(material: Material) -> Material:
    """The task whose result is the material: workers fetch it from each other once, and the scheduler can run it
    again from the graph should every copy be lost."""
    return material


def grade_task(material: Material, submission, sandbox_name: str) -> dict:
    """Grade one submission (batch/intake.py's Submission): {"result": result dict (or {"failure": why}: not
    recorded), "seconds"} and this grader's name and address; {"refused": why} where this grader cannot grade."""
    from autograder.batch import run

    where = _whereabouts()
    try:
        assignment, course, sandbox = _prepared(material, sandbox_name)
    except Exception as exc:  # this host's trouble, not the student's: the batch sends the task elsewhere
        return {"refused": str(exc), **where}
    copy = submission.write(Path(tempfile.mkdtemp(prefix=f"{run.WORKDIR_PREFIX}{os.getpid()}-")))
    try:
        result, seconds = run.grade_copy(assignment, sandbox, course, submission.student, str(copy), submission.notes)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return {"result": result, "seconds": seconds, **where}


_lock = threading.Lock()  # a worker started with several threads grades several tasks at once
_prepared_material: dict[tuple[str, str], tuple] = {}  # (checks version, sandbox name) -> (assignment, course, sandbox)


def _prepared(material: Material, sandbox_name: str):
    """The assignment loaded from material (once per version in this process), and the sandbox (once per name)."""
    key = (material.version, sandbox_name)
    with _lock:
        if key not in _prepared_material:
            _prepared_material[key] = _prepare(material, sandbox_name)
        return _prepared_material[key]


def _prepare(material: Material, sandbox_name: str):
    import torch

    from autograder.batch import run
    from autograder.engine.assignment import load_reference
    from autograder.sandboxes import choose
    from autograder.sandboxes.process import ProcessSandbox

    torch.set_num_threads(1)  # as dask_setup does, for a worker started without it
    sandbox, _notes = choose(sandbox_name)
    if sandbox_name == "auto" and isinstance(sandbox, ProcessSandbox):
        raise CannotGrade(f"no isolating sandbox here ({'; '.join(_notes)}). On a cluster `auto` never takes the "
                               f"process sandbox: student code there could reach the scheduler, and through it every "
                               f"worker and the batch; `--sandbox process` takes it knowingly")
    folder = Path(tempfile.mkdtemp(prefix=f"{run.WORKDIR_PREFIX}{os.getpid()}-{MATERIAL_FOLDER}-"))  # mode 0700
    try:
        reference = folder / "reference" / material.name
        reference.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(material.archive)) as archive:
            archive.extractall(reference, filter="data")
        assignment = load_reference(material.name, reference)
        assignment.secret = material.secret or None  # the batch's: this host's $AUTOGRADER_SECRET does not count
        version = run.checks_version(assignment, material.course)
        if version != material.version:
            if run.checks_version(assignment, material.course, cuda=material.cuda) == material.version:
                raise CannotGrade(
                    f"the batch expected {'a' if material.cuda else 'no'} CUDA device on the worker, and torch sees "
                    f"{torch.cuda.device_count()} here: start workers with `autograder worker`, which declares a {GPU} "
                    f"resource for each CUDA device and hides the devices from the other workers")
            raise CannotGrade(
                f"its grading code differs from the batch's (checks version {version} here, {material.version} there; "
                f"autograder {autograder.__version__} here): install on every worker the autograder the batch runs")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    atexit.register(shutil.rmtree, folder, True)
    return assignment, material.course, sandbox


def _whereabouts() -> dict:
    """This grader's name (what the batch's summary shows) and address (how the batch tells graders apart)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return {"worker": socket.gethostname(), "address": socket.gethostname()}
    return {"worker": str(worker.name) if worker.name is not None else worker.address, "address": worker.address}


def dask_setup(worker=None) -> None:
    """Dask's preload hook (`dask worker --preload autograder.batch.cluster_worker`): torch imported once, before
    the first task, single-threaded as in a local grader; what dead graders of this host left is removed. Ctrl-C or
    SIGTERM sent to the whole process group is the nanny's to act on: it closes this grader, which then removes
    its copies of the material, rather than the grader dying mid-task with them on disk."""
    import torch

    from autograder.batch import run

    torch.set_num_threads(1)  # the templates this grader starts, and the reference's values, as in a local batch
    run.sweep_leftovers()
    if worker is not None and threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)


def serve(address: str, slots: int, gpus: int, memory_limit: int, name: str) -> None:
    """Grade for the scheduler at address until SIGINT or SIGTERM: `slots` graders (Dask workers of one thread,
    each restarted by its nanny when it dies), the first `gpus` of them each with one CUDA device and the GPU
    resource, the others with none visible."""
    import asyncio

    from distributed import Nanny
    from distributed._signals import wait_for_signals

    # The devices this host gives us: those CUDA_VISIBLE_DEVICES lists (a Slurm job's, a MIG UUID), else all.
    inherited = [device for device in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if device.strip()]
    devices = inherited if "CUDA_VISIBLE_DEVICES" in os.environ else [str(index) for index in range(gpus)]
    devices = (devices + ["none"] * gpus)[:gpus]  # past the devices there are: a slot that refuses GPU tasks

    async def graders() -> None:
        nannies = [
            Nanny(address, nthreads=1, name=f"{name}-{index}", memory_limit=memory_limit,
                  resources={GPU: 1} if index < gpus else None,
                  env={"CUDA_VISIBLE_DEVICES": devices[index] if index < gpus else ""},
                  preload=[__name__])
            for index in range(slots)
        ]

        async def run_until_closed() -> None:
            await asyncio.gather(*nannies)
            await asyncio.gather(*(nanny.finished() for nanny in nannies))

        async def close_on_signal() -> None:
            await wait_for_signals()
            await asyncio.gather(*(nanny.close(timeout=10, reason="autograder worker stopped") for nanny in nannies))

        done, pending = await asyncio.wait([asyncio.create_task(run_until_closed()), asyncio.create_task(close_on_signal())],
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()

    try:
        asyncio.run(graders())
    finally:
        from autograder.batch import run

        run.sweep_leftovers()  # what graders killed on the way out left (their pids are gone by now)
