"""Grade one submission: the checks in children of one warm worker, a fresh child per unit.

Before any check runs, each student file is imported once on its own (a broken
file then costs its units a single clear error, not one time-out per check) and
scanned statically for forbidden APIs. A check's verdict comes from the first
thing that went wrong: the file did not import, the unit uses a forbidden API,
the check's assertions failed, the student's code raised, hung, or killed its
process. The checks of one unit run one after the other in one child
(`check_group`) as long as each ends cleanly; after anything else the next
check gets a fresh child. Between its public and its hidden checks, the unit's
child waits stopped (parked, protocol/worker.py). Nothing a check does can
touch another unit's result.

Timed checks race the student's process against one of the reference
solution, started by the same sandbox (a second worker, started on first use).
CUDA checks run where this host has a CUDA device; elsewhere they are skipped
and scored as course.toml says.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from autograder.checks import forbidden
from autograder.checks.failures import CheckFailed
from autograder.checks.registry import CheckSpec
from autograder.checks.seeds import PUBLIC_STUDENT, check_seed, process_seed
from autograder.checks.trial import Trial
from autograder.engine.assignment import Assignment
from autograder.engine.course import Course
from autograder.engine.results import CheckResult, SubmissionResult
from autograder.protocol.client import CallTimeout, StudentError, Worker, WorkerFailure
from autograder.protocol.wire import ProtocolError
from autograder.sandboxes.slots import STAGED_PREFIX

log = logging.getLogger("autograder")

IMPORT_TIMEOUT = 10.0  # seconds of CPU time (protocol/limits.py) to import one student file alone
OUTPUT_SHOWN = 1500
SOURCE_CAP = 1 << 20


@dataclass
class Verdict:
    status: str
    message: str  # may show values: public checks and instructors
    summary: str  # value-free: what students see of a hidden check
    races: list = field(default_factory=list)  # what the check's timed races measured (checks/timing.py)
    credit: float = 0.0  # the fraction of its points a check that did not pass still earns (PartialCredit)

    def score(self, points: float) -> float:
        return points if self.status == "passed" else points * self.credit


def grade(
    assignment: Assignment,
    submission: Path,
    sandbox,
    student: str,
    *,
    visibilities=("public", "hidden"),
    reveal_hidden: bool = False,
    on_result=None,
    course: Course = Course(),
) -> SubmissionResult:
    submission = Path(submission).resolve()
    result = SubmissionResult(assignment.name, student, sandbox=sandbox.name)
    specs = [spec for spec in assignment.checks if spec.visibility in visibilities]
    cuda = torch.cuda.is_available()
    if cuda:  # expected values at full float32 precision (the workers turn TF32 off too)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    uses_cuda = cuda and any(spec.device == "cuda" for spec in specs)
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(Worker(sandbox, submission, cuda=uses_cuda))
        # Started on first use only: the reference, for timed checks to race against.
        racing = assignment.reference_dir and any(spec.timed for spec in specs)
        pacer = stack.enter_context(Worker(sandbox, solutions_only(assignment, stack), cuda=uses_cuda)) if racing else None
        order = execution_order(specs)
        later = runs_again(assignment, order)
        first_checks = {}
        for spec in order:
            first_checks.setdefault(spec.module, spec)
        broken_files = {m: probe_import(worker, m, assignment, first_checks[m]) for m in assignment.modules if m in first_checks}
        banned = scan_forbidden(assignment, submission, specs)
        graded: dict[str, CheckResult] = {}
        for spec in order:
            if spec.device == "cuda" and not cuda:
                check = cuda_skipped(spec, graded.get(spec.twin), course)
            else:
                verdict = (
                    broken_files.get(spec.module)
                    or banned.get(spec.unit)
                    or run_check(assignment, spec, worker, student, pacer=pacer, again=later[spec.id])
                )
                shown = verdict.message if spec.visibility == "public" or reveal_hidden else verdict.summary
                check = CheckResult(
                    id=spec.id,
                    score=verdict.score(spec.points),
                    max_score=spec.points,
                    status=verdict.status,
                    message=shown,
                    visibility=spec.visibility,
                )
            graded[spec.id] = check
            if on_result:
                on_result(check)
    result.checks = [graded[spec.id] for spec in specs]
    return result


def execution_order(specs: list[CheckSpec]) -> list[CheckSpec]:
    """The order checks run in: every public check before every hidden one, each side unit by unit
    (as the units first appear), otherwise as listed. A unit's checks can then share a process
    (check_group), parked between its public and its hidden ones. No public check runs after a hidden one in a submission's zygote: what a
    hidden check printed passes through the zygote's memory, which every later check's process is a
    copy of. Results keep the listed order."""
    first = {}
    for position, spec in enumerate(specs):
        first.setdefault(spec.unit, position)
    return sorted(specs, key=lambda spec: (spec.visibility != "public", first[spec.unit]))


def runs_again(assignment: Assignment, order: list[CheckSpec]) -> dict[str, bool]:
    """check id -> whether a check of its group (check_group) runs later, after checks of other groups."""
    groups = [check_group(spec, assignment.forbidden_for(spec.unit)) for spec in order]
    return {
        spec.id: group is not None and group in groups[position + 1:] and groups[position + 1:][0] != group
        for position, (spec, group) in enumerate(zip(order, groups))
    }


def solutions_only(assignment: Assignment, stack: contextlib.ExitStack) -> Path:
    """A private copy of the reference's solution files alone (the files a student hands in), for
    the race worker: its sandbox never sees the checks, hidden checks or anything else there."""
    # Named as a staged copy is (with our pid), so a batch sweeps it up should this grader be killed.
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{STAGED_PREFIX}{os.getpid()}-solutions-")))
    for module in assignment.modules:
        shutil.copyfile(assignment.reference_dir / f"{module}.py", folder / f"{module}.py")
    return folder


def cuda_skipped(spec: CheckSpec, twin: CheckResult | None, course: Course) -> CheckResult:
    """A CUDA check on a host without CUDA: skipped, scored as the course says."""
    policy = course.cuda_absent
    reason = f'skipped: this grading host has no CUDA device (course.toml: cuda_absent = "{policy}")'
    score, max_score = 0.0, spec.points
    if policy == "cpu":
        passed = twin is not None and twin.status == "passed"
        score = spec.points if passed else 0.0
        reason += f"; scored as its CPU twin {spec.twin}, which {'passed' if passed else 'did not pass'}"
    elif policy == "exclude":
        max_score = 0.0
        reason += "; left out of the maximum"
    return CheckResult(spec.id, score, max_score, "skipped", reason, spec.visibility)


def probe_import(worker: Worker, module: str, assignment: Assignment, first: CheckSpec) -> Verdict | None:
    """Import module alone in a fresh child; a Verdict for its checks if that fails. Where it imports,
    the child is kept for the module's first check (under that check's guard, parked meanwhile)."""
    forbid = assignment.forbidden_for(first.unit)
    group = check_group(first, forbid)
    failed = import_failure(worker, module, forbid, group)
    if failed is not None and group is not None and not isinstance(failed[0], CallTimeout):
        failed = import_failure(worker, module)  # failed under that check's guard alone? Its checks say so, not the file's
    if failed is None:
        return None
    failure, report = failed
    verdict = failure_verdict(failure)
    message = f"{module}.py could not be imported, so none of its checks ran: {verdict.message}"
    return Verdict(verdict.status, with_output(message, report), f"{module}.py could not be imported: {verdict.summary}")


def import_failure(
    worker: Worker, module: str, forbid: list[str] = (), group=None
) -> tuple[WorkerFailure | ProtocolError, dict] | None:
    """Import module alone in a fresh child: None when it imports, else what went wrong and the child's report.
    forbid, group: those of the check to keep the child for, where it imports."""
    session = worker.session(seed=0, forbid=list(forbid), call_timeout=IMPORT_TIMEOUT, check_timeout=IMPORT_TIMEOUT, group=group)
    failure = None
    try:
        getattr(session.student, module)
    except (WorkerFailure, ProtocolError) as exc:  # a forged answer to the import is the file's failure too
        failure = exc
    if failure is None and group is not None and session.exit is None and not session.found_violations:
        session.keep(again=True)
        return None
    report = session.end()
    return None if failure is None else (failure, report)


def scan_forbidden(assignment: Assignment, submission: Path, specs: list[CheckSpec]) -> dict[str, Verdict]:
    """unit -> a failing Verdict for every unit whose source names a forbidden API."""
    verdicts = {}
    for module in {spec.module for spec in specs}:
        try:
            source = read_source(submission / f"{module}.py")
        except (OSError, UnicodeDecodeError):
            continue  # the import probe reports what is wrong with the file
        units = {spec.unit for spec in specs if spec.module == module}
        rules = {unit.split(".", 1)[1]: assignment.forbidden_in_source(unit) for unit in units}
        for name, violations in forbidden.scan_source(source, rules).items():
            if violations:
                listed = "; ".join(str(v) for v in violations[:5])
                text = f"{module}.{name} uses a forbidden API ({listed}); implement it with plain tensor operations"
                verdicts[f"{module}.{name}"] = Verdict("failed", text, text)
    return verdicts


def read_source(path: Path) -> str:
    """A student's source file as text, at most SOURCE_CAP bytes (see read_student_file)."""
    content = read_student_file(path, SOURCE_CAP + 1)
    if len(content) > SOURCE_CAP:
        raise OSError(f"{path.name} is over {SOURCE_CAP} bytes")
    return content.decode("utf-8")


def read_student_file(path: Path | str, limit: int) -> bytes:
    """At most limit bytes of a file a student wrote, read by the grader: never through a
    symbolic link, and only from a regular file (a FIFO or device would block or never end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return handle.read(limit)


def run_check(
    assignment: Assignment, spec: CheckSpec, worker: Worker, student: str, tape=None, pacer: Worker | None = None,
    again: bool = False,
) -> Verdict:
    """again: a check of the same group runs later, after others (its process is then parked)."""
    hidden = spec.visibility == "hidden"
    seed = check_seed(student if hidden else PUBLIC_STUDENT, assignment.name, spec.id, assignment.secret if hidden else None)
    forbid = assignment.forbidden_for(spec.unit)
    # device: a CUDA check's process starts CUDA before its limits start
    limits = dict(seed=process_seed(seed), forbid=forbid, call_timeout=spec.call_timeout, check_timeout=spec.timeout,
                  device=spec.device)
    session = worker.session(**limits, group=check_group(spec, forbid), hidden=hidden)
    session.show_scalars = spec.visibility == "public"
    # The reference's process for a race: the same seed, guard and limits as the student's.
    reference_session = pacer.session(**limits) if spec.timed and pacer else None
    tape = tape or assignment.tape_for(spec.id)
    verdict, trial = None, None
    try:
        trial = Trial(session, assignment.reference_root(tape), tape, seed, spec.device, reference_session)
        spec.run(trial)
    except CheckFailed as exc:
        verdict = Verdict("failed", exc.message, exc.summary, credit=getattr(exc, "credit", 0.0))
    except (WorkerFailure, ProtocolError) as exc:
        verdict = failure_verdict(exc)
    except Exception as exc:  # a bug in the check itself: say so, never blame the student silently
        log.error("check %s crashed:\n%s", spec.id, traceback.format_exc())
        verdict = Verdict("error", f"internal error in check {spec.id}: {type(exc).__name__}: {exc}", "internal error")
    forbidden_use = forbidden_at_runtime(session, spec)
    notes = "\n".join(trial.notes) if trial else ""
    verdict = forbidden_use or verdict or Verdict("passed", notes, notes)
    verdict.races = trial.races if trial else []
    # Only a process whose check ended as checks should (passed, or failed an assertion) serves the next.
    clean = forbidden_use is None and verdict.status in ("passed", "failed") and session.exit is None
    report = session.keep(again) if clean and session.group else session.end()
    if reference_session:
        reference_session.end()
    if verdict.status != "passed":
        verdict.message = with_output(verdict.message, report)
    return verdict


def check_group(spec: CheckSpec, forbid: list[str]):
    """Which checks may share one process, one after the other; None: this one runs in a fresh one.

    The checks of one unit and forbidden APIs do, so a process never holds two units (one unit's
    state or crash never reaches another's checks). Its hidden checks run in it after its public
    ones, never the other way round (nothing a hidden check saw can come back in a public check's
    message; Worker.session refuses it). Timed and CUDA checks always get a fresh process: a race
    measures a process nothing else ran in."""
    if spec.timed or spec.device != "cpu":
        return None
    return (spec.unit, tuple(forbid))


def forbidden_at_runtime(session, spec: CheckSpec) -> Verdict | None:
    found = session.found_violations  # every reply carries them, once there are any
    if session.exit is not None or not found:
        return None
    text = f"{spec.unit} called a forbidden API: {'; '.join(found[:3])}"
    return Verdict("failed", text, f"{spec.unit} called a forbidden API")


def failure_verdict(exc: WorkerFailure | ProtocolError) -> Verdict:
    if isinstance(exc, ProtocolError):  # the student's process answered with something the protocol refuses
        return Verdict("error", f"protocol error: {exc}", "protocol error")
    if isinstance(exc, StudentError):
        detail = f"{exc}\n{exc.traceback}".rstrip()
        return Verdict("error", detail, exc.summary)
    if isinstance(exc, CallTimeout):
        return Verdict("timeout", str(exc), str(exc))
    return Verdict("error", str(exc), str(exc))


def with_output(message: str, report: dict) -> str:
    output = (report.get("output") or "").strip()
    if not output:
        return message
    if len(output) > OUTPUT_SHOWN:
        output = output[:OUTPUT_SHOWN] + f"\n... ({len(output) - OUTPUT_SHOWN} more characters)"
    return f"{message}\n--- output of your code ---\n{output}"
