"""The grader's side of the worker protocol: start a worker, open one session
per check, send requests under the check's time limits (limits.py), and turn
every way a worker can fail into one of a few exceptions. Nothing read from the
worker is trusted."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

from autograder.protocol import plan, wire
from autograder.protocol.limits import END_TIMEOUT, START_TIMEOUT, CheckLimits, WallLimit
from autograder.protocol.proxy import Remote, StudentModules, describe_call, describe_value

CLOSE_GRACE = 2.0  # for a worker to kill its children and remove its cache when grading is over


class WorkerFailure(Exception):
    """Base of everything that ends a check because of the worker."""

    status = "error"


class StudentError(WorkerFailure):
    """The student's code raised an exception."""

    def __init__(self, error: dict, call: str):
        self.type = str(error.get("type", "Exception"))[:100]
        self.text = str(error.get("message", ""))[:2000]
        self.where = str(error.get("where", ""))[:200]
        self.traceback = str(error.get("traceback", ""))[:4000]
        self.call = call
        at = f" at {self.where}" if self.where else ""
        super().__init__(f"{call} raised {self.type}{at}: {self.text}")

    @property
    def summary(self) -> str:
        at = f" at {self.where}" if self.where else ""
        return f"{self.call} raised {self.type}{at}"


class CallTimeout(WorkerFailure):
    status = "timeout"


class WorkerDied(WorkerFailure):
    """The check's process exited, was killed, or broke the protocol."""


class WorkerUnavailable(Exception):
    """The worker could not be started at all: grading cannot run."""


class Connection:
    """Frames over a socket or a pair of pipes, every read and write bounded by a limit
    (limits.py: anything whose next_wait() says how long to wait next, None once it is spent).

    On a Unix socket, file descriptors that arrive with the bytes (SCM_RIGHTS)
    are kept in `passed`, in order.
    """

    def __init__(self, read_fd: int, write_fd: int, sock: socket.socket | None = None):
        self.read_fd, self.write_fd, self.sock = read_fd, write_fd, sock
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.reader = wire.FrameReader()
        self.frames: list[wire.Frame] = []
        self.passed: list[int] = []

    def send(self, header: dict, buffers: list, limit) -> None:
        data = memoryview(wire.encode_frame(header, buffers))
        while data:
            if not _ready(self.write_fd, limit, writing=True):
                raise CallTimeout("the worker stopped reading its input")
            try:
                data = data[os.write(self.write_fd, data[: 1 << 20]) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as exc:
                raise WorkerDied(f"the worker is gone ({exc.strerror or exc})") from None

    def receive(self, limit) -> wire.Frame:
        while not self.frames:
            if not _ready(self.read_fd, limit, writing=False):
                raise CallTimeout("no answer in time")
            try:
                data = self._read()
            except BlockingIOError:
                continue
            except OSError as exc:
                raise WorkerDied(f"the connection broke ({exc.strerror or exc})") from None
            if not data:
                raise WorkerDied("the worker exited")
            try:
                self.frames += self.reader.feed(data)
            except wire.ProtocolError as exc:
                raise WorkerDied(f"protocol error: {exc}") from None
        return self.frames.pop(0)

    def _read(self) -> bytes:
        if self.sock is None:
            return os.read(self.read_fd, 1 << 20)
        data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 4)
        self.passed += fds
        return data

    def close_passed(self) -> None:
        for fd in self.passed:
            os.close(fd)
        self.passed = []

    def close(self) -> None:
        """Close both ends, once: a descriptor number closed twice may by then be another file's."""
        self.close_passed()
        for fd in {self.read_fd, self.write_fd} - {-1}:
            try:
                os.close(fd)
            except OSError:
                pass
        self.read_fd = self.write_fd = -1


def _ready(fd: int, limit, writing: bool) -> bool:
    """Wait until fd can be read (or written); False once the limit is reached first."""
    if fd < 0:
        raise WorkerDied("the connection is closed")
    while (wait := limit.next_wait()) is not None:
        if any(select.select([] if writing else [fd], [fd] if writing else [], [], wait)[:2]):
            return True
    return False


class Worker:
    """A zygote for one submission, restarted whenever it cannot be trusted to continue. cuda: its
    checks use CUDA (the sandbox gives it the GPUs)."""

    def __init__(self, sandbox, submission: Path, cuda: bool = False):
        self.sandbox = sandbox
        self.submission = Path(submission).resolve()
        self.cuda = cuda
        self.proc = None
        self.control: Connection | None = None
        self.direct = False  # children's sockets are handed to us (a Unix socket to the zygote)
        self.kept: Session | None = None  # the last check's process, kept for the next check of its group
        self.parked: dict = {}  # group -> a stopped process kept for that group's next run (Session.keep(again=True))

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close(grace=CLOSE_GRACE)

    def ensure_started(self) -> Connection:
        if self.control is None:
            self.proc = self.sandbox.start(self.submission, cuda=self.cuda)
            channel = getattr(self.proc, "channel", None)
            self.direct = channel is not None
            if self.direct:
                self.control = Connection(channel.fileno(), channel.fileno(), channel)
            else:
                self.control = Connection(self.proc.stdout.fileno(), self.proc.stdin.fileno())
            try:
                frame = self.control.receive(WallLimit(START_TIMEOUT))
            except WorkerFailure as exc:
                log = self.log_tail()
                self.close()
                raise WorkerUnavailable(f"the {self.sandbox.name} worker did not start ({exc}){log}") from None
            if frame.header.get("zygote") != "ready":
                self.close()
                raise WorkerUnavailable(f"the worker sent {str(frame.header)[:200]} instead of ready")
        return self.control

    def session(
        self, *, seed: int, forbid: list[str], call_timeout: float, check_timeout: float, group=None, hidden: bool = False,
        device: str = "cpu",
    ) -> "Session":
        """A check's process: the one the last check kept (Session.keep), or one parked since,
        when both are of the same group (not None) and, for a check that is not hidden, no hidden
        check ran in it; else a fresh one. Its limits (limits.py: seconds of CPU time where the kernel shows it, with a wall-clock
        backstop) start once it has started: starting the worker, or CUDA in a CUDA check's process
        (device "cuda": never a kept process), is never charged."""
        kept, self.kept = self.kept, None
        if kept is not None and kept.group != group:
            if kept.again and kept.group not in self.parked:
                kept.park()
            else:
                kept.end()
            kept = None
        if kept is None and group is not None and group in self.parked:
            kept = self.parked.pop(group).resume()
        if kept is not None and group is not None and (hidden or not kept.saw_hidden):
            try:
                return kept.next_check(seed, forbid, call_timeout, check_timeout, hidden)
            except WorkerFailure:  # it would not begin (a thread still runs, ...): a fresh process then
                kept.end()
                kept = None
        if kept is not None:
            kept.end()
        request = {"zygote": "fork", "seed": seed, "forbid": forbid, "device": device}
        for attempt in (1, 2):  # a zygote that died since the last check is restarted once
            control = self.ensure_started()
            try:
                control.send(request, [], WallLimit(END_TIMEOUT))
                data, pid = self._data_channel(control)
                session = Session(self, control, data, call_timeout, check_timeout, pid, group, hidden)
                if device == "cuda":
                    session.wait_started(START_TIMEOUT)
                return session
            except WorkerFailure:
                self.close()
                if attempt == 2:
                    raise

    def _data_channel(self, control: Connection) -> tuple[Connection, int | None]:
        """The child's connection, and its process id where the grader can see the child's process."""
        if not self.direct:
            return control, None
        frame = control.receive(WallLimit(END_TIMEOUT))
        if frame.header.get("zygote") != "forked" or not control.passed:
            raise WorkerDied(f"the worker sent {str(frame.header)[:200]} instead of forked")
        fd = control.passed.pop(0)
        control.close_passed()  # anything else the zygote sent along is not ours to keep
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            os.close(fd)
            raise WorkerDied("the worker handed over something that is not a socket")
        pid = frame.header.get("pid")
        visible = self.sandbox.shares_pids and type(pid) is int and pid > 0
        return Connection(fd, fd), pid if visible else None

    def log_tail(self) -> str:
        if self.proc is None or not hasattr(self.proc, "log"):
            return ""
        self.proc.log.seek(0)
        text = self.proc.log.read()[-2000:].decode("utf-8", errors="replace").strip()
        return f"\nworker log:\n{text}" if text else ""

    def close(self, grace: float = 0.0) -> None:
        """Stop the worker: after grace seconds to clean up on its own (it sees its input close), by force."""
        for session in [self.kept, *self.parked.values()]:
            if session is not None and not session.relayed:
                session.data.close()
        self.kept, self.parked = None, {}
        if self.proc is not None:
            if hasattr(self.proc, "stop"):  # a zygote of a warm template (sandboxes/template.py)
                self.proc.stop(grace)
            else:
                self._stop_process(grace)
            cleanup = getattr(self.proc, "cleanup", None)
            if cleanup:  # what the sandbox set up around the worker: its cgroup, its slot
                cleanup()
        self.proc = None
        self.control = None

    def _stop_process(self, grace: float) -> None:
        """A worker process of its own: closing its input ends it; after grace seconds, by force."""
        for stream in (self.proc.stdin, self.proc.stdout, getattr(self.proc, "channel", None)):
            if stream is not None:
                stream.close()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.kill()
        self.proc.wait()


class Session:
    """One check's conversation with its own forked child."""

    recording: plan.Calls | None = None  # while record_calls runs: requests go there, nothing is sent

    def __init__(
        self, worker, control: Connection, data: Connection, call_timeout: float, check_timeout: float,
        pid=None, group=None, saw_hidden: bool = False,
    ):
        self.worker = worker
        self.pid, self.group = pid, group
        self.saw_hidden = saw_hidden  # a hidden check ran in this process (this one, or one before it)
        self.again = False  # kept, and its group runs again later: parked in between (Worker.session)
        self.parked_pid: int | None = None  # the zygote's name for it while parked
        self.found_violations: list[str] = []  # what the guard refused in this check, as its last reply said
        self.fetch_along: Fetched | None = None  # handles whose values each call's reply carries (fetching)
        self.unsent_puts: list[tuple[int, object]] = []  # put_all's values, sent with the next request
        self.last_put = 0  # put handles are numbered -1, -2, ...: the worker numbers its own from 1
        self.control = control  # to the zygote
        self.data = data  # to the child: its own socket (direct), or the zygote's relay
        self.exit: dict | None = None  # the zygote's `exited` report, once the child is gone
        self.last_call = ""
        self.show_scalars = True  # call descriptions show scalar arguments (not in hidden checks)
        self.student = StudentModules(self)
        self.cpu_clock = _process_cpu_clock(pid)
        # Where the check's pid is not ours to see (a jail), the kernel's count for the worker's whole cgroup.
        self.group_cpu = getattr(worker.proc, "cpu_seconds", None) if self.cpu_clock is None else None
        self.limits = CheckLimits(call_timeout, check_timeout, self.cpu_time)

    def cpu_time(self) -> float | None:
        """Seconds of CPU the check's process has used, all its threads together; None where not visible.

        The kernel keeps this clock: nothing in the worker can change it. A pid
        that is not the child's, or a cgroup that also holds the idle zygote,
        can only make the check look slower.
        """
        if self.group_cpu is not None:
            return self.group_cpu()
        if self.cpu_clock is None:
            return None
        try:
            return time.clock_gettime(self.cpu_clock)
        except OSError:  # the process is gone
            return None

    @property
    def relayed(self) -> bool:
        return self.data is self.control

    def request(self, op: str, *, args=(), kwargs=None, describe: str = "", as_calls: int = 1, **fields):
        """Send one request to the child and return its decoded answer; raise on every failure.
        as_calls: the request makes that many calls (the per-call time limit is theirs together)."""
        what = describe or op
        if self.recording is not None:
            return self.recording.request(op, fields, args, what)
        if self.exit is not None:
            raise WorkerDied(f"{what}: the check's process has already ended")
        buffers: list = []
        header = {"op": op, **fields, "args": wire.encode_value(list(args), buffers, _handle)}
        if kwargs:
            header["kwargs"] = wire.encode_value(dict(kwargs), buffers, _handle)
        if self.unsent_puts:  # placed before the request is handled
            refs, values = zip(*self.unsent_puts)
            header["put"] = {"refs": list(refs), "values": wire.encode_value(list(values), buffers)}
            self.unsent_puts = []
        along = self.fetch_along
        if along is not None:
            along.values = None  # only the last request's reply counts, and only a call's
            if op in ("call", "callmethod"):
                header["fetch"] = along.refs
            else:
                along = None
        budget = self.limits.call(as_calls, fields.get("cpu_seconds"))
        try:
            self.data.send(header, buffers, budget)
            frame = self.data.receive(budget)
        except CallTimeout:
            self.end()
            raise CallTimeout(f"{what} {budget.exceeded()}") from None
        except WorkerDied as exc:
            raise WorkerDied(f"{what}: {self._died(str(exc))}") from None
        finally:
            self.limits.charge(budget)
        if "zygote" in frame.header:
            if self.relayed:  # the zygote reports the child's end
                self.exit = _report(frame.header)
                raise WorkerDied(f"{what}: {_death(self.exit)}")
            raise WorkerDied(f"{what}: {self._died('protocol error: the check process forged a control frame')}")
        found = frame.header.get("violations")
        if isinstance(found, list):
            self.found_violations = [str(v)[: wire.MAX_VIOLATION_CHARS] for v in found[: wire.MAX_VIOLATIONS]]
        if "error" in frame.header:
            error = frame.header["error"]
            raise StudentError(error if isinstance(error, dict) else {}, what)
        try:
            value = wire.decode_value(frame.header.get("ok"), frame.buffers, lambda ref: Remote(self, ref, describe))
            if along is not None:
                along.values = wire.decode_value(frame.header.get("fetched"), frame.buffers)
                if not (isinstance(along.values, list) and len(along.values) == len(along.refs)):
                    raise wire.ProtocolError(f"{len(along.refs)} values asked back, the reply carried {str(along.values):.80}")
            return value
        except wire.ProtocolError as exc:
            # What the student's process sent is refused: its check fails, and only that check (a fresh process per check).
            raise WorkerDied(f"{what}: {self._died(f'protocol error in the reply of the check process: {exc}')}") from None

    def _died(self, problem: str) -> str:
        """The child's connection broke: end it and say why, with its exit status when known."""
        if self.relayed and "protocol error" not in problem:  # the zygote itself is gone
            self.worker.close()
            self.exit = {"status": "unknown", "problem": problem, "output": ""}
        else:
            self.exit = dict(self._end(wait=True), problem=problem)
        return _death(self.exit)

    def call(self, target: Remote, method: str | None, args, kwargs, cpu_seconds: float | None = None):
        """target(*args, **kwargs), or target.method(...) in the same round trip; cpu_seconds: this call's
        limit instead of the check's per-call one."""
        path = f"{target._path}.{method}" if method else target._path
        self.last_call = describe_call(path, args, kwargs, scalars=self.show_scalars)
        if self.recording is not None:
            return self.recording.call(target._ref, method, args, kwargs, self.last_call)
        fields = {"op": "callmethod", "name": method} if method else {"op": "call"}
        if cpu_seconds is not None:
            fields["cpu_seconds"] = cpu_seconds
        return self.request(ref=target._ref.id, args=args, kwargs=kwargs, describe=self.last_call, **fields)

    def train(self, function: Remote, kwargs: dict, *, seed: int, cpu_seconds: float) -> Remote:
        """function(**kwargs) with up to cpu_seconds of CPU time (not the check's per-call limit), the
        process's RNGs seeded with seed just before; a handle to what it returns, whatever that is
        (a model-quality unit's trained model, checks/quality.py)."""
        self.last_call = describe_call(function._path, (), kwargs, scalars=self.show_scalars)
        value = self.request(
            "call", ref=function._ref.id, kwargs=kwargs, describe=self.last_call, keep=True, seed=seed,
            cpu_seconds=cpu_seconds,
        )
        if not isinstance(value, Remote):
            raise WorkerDied(f"{self.last_call}: {self._died('protocol error: a kept result came back as data')}")
        return value

    def put(self, value) -> Remote:
        return self.put_all([value])[0]

    def put_all(self, values: list) -> list[Remote]:
        """A handle to each value, placed in the check's process with the next request (no round trip
        of its own); only plain data (wire.is_plain) can be placed."""
        paths = [describe_value(value, scalars=self.show_scalars) for value in values]
        if self.recording is None and all(wire.is_plain(value) for value in values):
            handles = []
            for value, path in zip(values, paths):
                self.last_put -= 1
                self.unsent_puts.append((self.last_put, value))
                handles.append(Remote(self, wire.Ref(self.last_put, "object", wire.type_name(value)), path))
            return handles
        handles = self.request("put", args=list(values), describe=", ".join(paths))
        if not (isinstance(handles, list) and len(handles) == len(values) and all(isinstance(h, Remote) for h in handles)):
            raise WorkerDied(f"put {', '.join(paths)}: {self._died('protocol error: put did not answer a handle per value')}")
        for handle, path in zip(handles, paths):
            object.__setattr__(handle, "_path", path)
        return handles

    def fetch(self, handle: Remote):
        return self.fetch_all([handle])[0]

    def fetch_all(self, handles: list[Remote]) -> list:
        """The values the handles stand for, in one round trip."""
        paths = ", ".join(handle._path for handle in handles)
        values = self.request("fetch", refs=[handle._ref.id for handle in handles], describe=f"fetch {paths}")
        if not (isinstance(values, list) and len(values) == len(handles)):
            raise WorkerDied(f"fetch {paths}: {self._died('protocol error: fetch did not answer a value per handle')}")
        return values

    @contextlib.contextmanager
    def fetching(self, handles: list[Remote]):
        """Have the calls made inside bring back the values of handles (put_all's) as they are after
        each call: `.values` of what this yields, from the last request made inside where it was a
        call, else None (then fetch_all). One round trip instead of a call and a fetch."""
        along = Fetched([_handle(h).id for h in handles])
        self.fetch_along = along
        try:
            yield along
        finally:
            self.fetch_along = None

    def fixture(self, name: str) -> Remote:
        return self.request("fixture", name=name, describe=name)

    def repeat(self, plan, input_sets: list[dict], *, describe: str) -> list:
        """Run a recorded program (plan.py) once per input set, all in one request; the results, in order."""
        return self.request("repeat", args=[*plan.wire_form(), input_sets], describe=describe)

    def record_calls(self, function, inputs: dict) -> plan.Calls:
        """function(**inputs) recorded as calls on this check's objects (plan.Calls) to run with run_calls;
        nothing is sent. plan.PlanError where the function does more than set attributes and call them."""
        self.recording = plan.Calls(inputs, lambda value: value._ref if isinstance(value, Remote) and value._session is self else None)
        try:
            return self.recording.record(function)
        finally:
            self.recording = None

    def run_calls(self, calls: plan.Calls, argument_sets: list[dict], *, expect: dict | None = None):
        """Recorded calls once per argument set, in one request with the time limit of all its calls.

        Returns (results, raw, error): the results in order, up to the set whose call raised (error:
        its StudentError, named as that call's own request would be) or whose result is not what
        expect says (plan.run_calls); raw: the last result is not indexed yet (calls.index it).
        """
        reply = self.request(
            "repeat", args=[*calls.wire_form(), [calls.input_set(a) for a in argument_sets], expect], calls=True,
            describe=calls.describe, as_calls=len(calls.steps) * len(argument_sets),
        )
        results, raw, failed = (reply.get(key) for key in ("results", "raw", "failed")) if isinstance(reply, dict) else [None] * 3
        step = failed.get("step") if isinstance(failed, dict) else None
        error = failed.get("error") if isinstance(failed, dict) else None
        counted = isinstance(results, list) and (
            len(results) < len(argument_sets) if failed is not None else 1 <= len(results) <= len(argument_sets)
        )
        raised = failed is None or (type(step) is int and 0 <= step < len(calls.steps) and isinstance(error, dict))
        if not (counted and raised and type(raw) is bool and not (raw and failed is not None)):
            problem = f"protocol error: the check process answered {len(argument_sets)} sets of calls out of form"
            raise WorkerDied(f"{calls.describe}: {self._died(problem)}")
        return results, raw, None if failed is None else StudentError(error, calls.describes[step])

    def violations(self) -> list[str]:
        found = self.request("violations", describe="violations")
        return [str(v) for v in found] if isinstance(found, list) else []

    def keep(self, again: bool = False) -> dict:
        """The check is over; its process stays for the worker's next check of the same group, and
        is parked meanwhile if that check comes later (again), after checks of other groups.
        The zygote's report: status "kept", and what the check printed."""
        self.again = again
        try:
            self.control.send({"zygote": "output"}, [], WallLimit(END_TIMEOUT))
            while True:  # in relay mode, nothing else is in flight: the check is over
                frame = self.control.receive(WallLimit(END_TIMEOUT))
                if frame.header.get("zygote") == "output":
                    break
        except WorkerFailure:
            return self.end()
        self.worker.kept = self
        return {"status": "kept", "problem": None, "output": str(frame.header.get("output") or "")}

    def park(self) -> None:
        """Have the zygote stop this process until its group's next check (Worker.parked); where it
        cannot be kept, it is ended."""
        frame = self._to_zygote({"zygote": "park"}, ("parked", "exited"))
        if frame is not None and frame.header.get("zygote") == "parked" and type(frame.header.get("pid")) is int:
            self.parked_pid = frame.header["pid"]
            self.worker.parked[self.group] = self
            return
        if frame is not None:
            self.exit = _report(frame.header)
        if not self.relayed:
            self.data.close()

    def resume(self) -> "Session | None":
        """This parked process, continued; None where it is gone (the zygote ends what is left of it)."""
        frame = self._to_zygote({"zygote": "resume", "pid": self.parked_pid}, ("resumed", "exited"))
        if frame is not None and frame.header.get("zygote") == "resumed":
            return self
        self.exit = _report(frame.header) if frame is not None else self.exit
        if not self.relayed:
            self.data.close()
        return None

    def _to_zygote(self, command: dict, answers: tuple[str, ...]) -> wire.Frame | None:
        """Send the zygote a command about this process and return its answer; None (the worker is
        restarted) where it stops answering."""
        limit = WallLimit(END_TIMEOUT)
        try:
            self.control.send(command, [], limit)
            while True:  # nothing else is in flight between checks
                frame = self.control.receive(limit)
                if frame.header.get("zygote") in answers:
                    return frame
        except WorkerFailure:
            self.worker.close()
            return None

    def wait_started(self, seconds: float) -> None:
        """Wait up to seconds for the process to answer, uncharged: it starts CUDA before serving (worker.start_cuda)."""
        limit = WallLimit(seconds)
        try:
            self.data.send({"op": "ready", "args": []}, [], limit)
            frame = self.data.receive(limit)
        except CallTimeout:
            self.end()
            raise WorkerDied(f"the check's process did not start CUDA within {seconds:g} s") from None
        if "ok" not in frame.header:
            raise WorkerDied(f"the check's process sent {str(frame.header)[:200]} instead of starting")
        self.limits = CheckLimits(self.limits.call_seconds, self.limits.check_seconds, self.cpu_time)  # from now

    def next_check(self, seed: int, forbid: list[str], call_timeout: float, check_timeout: float, hidden: bool) -> "Session":
        """This process, begun anew for the next check of its group: reseeded, its guard's findings cleared."""
        session = Session(
            self.worker, self.control, self.data, call_timeout, check_timeout, self.pid, self.group, self.saw_hidden or hidden
        )
        session.request("begin", seed=seed, forbid=forbid, describe="the next check")
        session.student = self.student.carried_to(session)
        return session

    def end(self) -> dict:
        """Kill the child and return the zygote's report: status, problem, output."""
        if self.exit is None:
            self.exit = self._end(wait=False)
        return self.exit

    def _end(self, wait: bool) -> dict:
        if not self.relayed:
            self.data.close()
        limit = WallLimit(END_TIMEOUT)
        try:
            self.control.send({"zygote": "end", "wait": wait}, [], limit)
            while True:  # in relay mode, late replies of the killed child may come first
                frame = self.control.receive(limit)
                if frame.header.get("zygote") == "exited":
                    return _report(frame.header)
        except WorkerFailure as exc:
            self.worker.close()
            return {"status": "unknown", "problem": f"the worker stopped answering ({exc}); restarted", "output": ""}


class Fetched:
    """What Session.fetching yields: the handles asked back, and their values once a call answered."""

    def __init__(self, refs: list[int]):
        self.refs = refs
        self.values: list | None = None


def _process_cpu_clock(pid: int | None) -> int | None:
    """The clock id of another process's CPU time (Linux: what clock_getcpuclockid(3) computes)."""
    if pid is None or not hasattr(time, "clock_gettime"):
        return None
    clock = ((~pid) << 3) | 2  # CPUCLOCK_SCHED of the whole process
    try:
        time.clock_gettime(clock)
    except OSError:
        return None
    return clock


def _report(header: dict) -> dict:
    return {"status": header.get("status"), "problem": header.get("problem"), "output": str(header.get("output") or "")}


def _handle(value) -> wire.Ref:
    if isinstance(value, Remote):
        return value._ref
    raise wire.NotPlainData(f"cannot send an object of type {type(value).__name__} to the student's process")


def _death(report: dict) -> str:
    status = str(report.get("status", "unknown"))
    problem = report.get("problem")
    if problem and "protocol error" in str(problem):
        return f"{problem} ({status})"
    if status.startswith("signal"):
        return f"the check's process was killed ({status}); it may have crashed or run out of memory"
    return f"the student's code ended the check's process ({status})"
