"""The grader's side of the worker protocol: start a worker, open one session
per check, send requests with deadlines, and turn every way a worker can fail
into one of a few exceptions. Nothing read from the worker is trusted."""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path

from autograder.protocol import wire
from autograder.protocol.proxy import Remote, StudentModules, describe_call, describe_value

START_TIMEOUT = 120.0  # importing torch on a loaded machine can take a while
END_TIMEOUT = 5.0


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
    """Frames over a pair of pipes, every read and write bounded by a deadline."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.reader = wire.FrameReader()
        self.frames: list[wire.Frame] = []

    def send(self, header: dict, buffers: list, deadline: float) -> None:
        data = memoryview(wire.encode_frame(header, buffers))
        while data:
            if not select.select([], [self.write_fd], [], _left(deadline))[1]:
                raise CallTimeout("the worker stopped reading its input")
            try:
                data = data[os.write(self.write_fd, data[: 1 << 20]) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as exc:
                raise WorkerDied(f"the worker is gone ({exc.strerror or exc})") from None

    def receive(self, deadline: float) -> wire.Frame:
        while not self.frames:
            if not select.select([self.read_fd], [], [], _left(deadline))[0]:
                raise CallTimeout("no answer in time")
            try:
                data = os.read(self.read_fd, 1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise WorkerDied("the worker exited")
            try:
                self.frames += self.reader.feed(data)
            except wire.ProtocolError as exc:
                raise WorkerDied(f"protocol error: {exc}") from None
        return self.frames.pop(0)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class Worker:
    """A zygote for one submission, restarted whenever it cannot be trusted to continue."""

    def __init__(self, sandbox, submission: Path):
        self.sandbox = sandbox
        self.submission = Path(submission).resolve()
        self.proc = None
        self.connection: Connection | None = None
        self.starts = 0

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ensure_started(self) -> Connection:
        if self.connection is None:
            self.proc = self.sandbox.start(self.submission)
            self.connection = Connection(self.proc.stdout.fileno(), self.proc.stdin.fileno())
            self.starts += 1
            try:
                frame = self.connection.receive(time.monotonic() + START_TIMEOUT)
            except WorkerFailure as exc:
                log = self.log_tail()
                self.close()
                raise WorkerUnavailable(f"the {self.sandbox.name} worker did not start ({exc}){log}") from None
            if frame.header.get("zygote") != "ready":
                self.close()
                raise WorkerUnavailable(f"the worker sent {str(frame.header)[:200]} instead of ready")
        return self.connection

    def session(self, *, seed: int, forbid: list[str], call_timeout: float, deadline: float) -> "Session":
        connection = self.ensure_started()
        try:
            connection.send({"zygote": "fork", "seed": seed, "forbid": forbid}, [], time.monotonic() + END_TIMEOUT)
        except WorkerFailure:
            self.close()
            connection = self.ensure_started()
            connection.send({"zygote": "fork", "seed": seed, "forbid": forbid}, [], time.monotonic() + END_TIMEOUT)
        return Session(self, connection, call_timeout, deadline)

    def log_tail(self) -> str:
        if self.proc is None or not hasattr(self.proc, "log"):
            return ""
        self.proc.log.seek(0)
        text = self.proc.log.read()[-2000:].decode("utf-8", errors="replace").strip()
        return f"\nworker log:\n{text}" if text else ""

    def close(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
        self.proc = None
        self.connection = None


class Session:
    """One check's conversation with its own forked child."""

    def __init__(self, worker: Worker, connection: Connection, call_timeout: float, deadline: float):
        self.worker = worker
        self.connection = connection
        self.call_timeout = call_timeout
        self.deadline = deadline
        self.exit: dict | None = None  # the zygote's `exited` report, once the child is gone
        self.last_call = ""
        self.student = StudentModules(self)

    def request(self, op: str, *, args=(), kwargs=None, describe: str = "", **fields):
        """Send one request to the child and return its decoded answer; raise on every failure."""
        if self.exit is not None:
            raise WorkerDied(f"{describe or op}: the check's process has already ended")
        buffers: list = []
        header = {"op": op, **fields, "args": wire.encode_value(list(args), buffers, _handle)}
        if kwargs:
            header["kwargs"] = wire.encode_value(dict(kwargs), buffers, _handle)
        start = time.monotonic()
        deadline = min(self.deadline, start + self.call_timeout)
        try:
            self.connection.send(header, buffers, deadline)
            frame = self.connection.receive(deadline)
        except CallTimeout:
            self.abandon()
            raise CallTimeout(f"{describe or op} did not return within {deadline - start:.3g} s") from None
        except WorkerDied as exc:
            self.worker.close()
            self.exit = {"status": "unknown", "problem": str(exc), "output": ""}
            raise WorkerDied(f"{describe or op}: {exc}") from None
        if "zygote" in frame.header:
            self.exit = frame.header
            raise WorkerDied(f"{describe or op}: {_death(frame.header)}")
        if "error" in frame.header:
            error = frame.header["error"]
            raise StudentError(error if isinstance(error, dict) else {}, describe or op)
        try:
            return wire.decode_value(frame.header.get("ok"), frame.buffers, lambda ref: Remote(self, ref, describe))
        except wire.ProtocolError as exc:
            self.abandon()
            raise WorkerDied(f"{describe or op}: protocol error: {exc}") from None

    def call(self, target: Remote, method: str | None, args, kwargs):
        """target(*args, **kwargs), or target.method(...) in the same round trip."""
        path = f"{target._path}.{method}" if method else target._path
        self.last_call = describe_call(path, args, kwargs)
        fields = {"op": "callmethod", "name": method} if method else {"op": "call"}
        return self.request(ref=target._ref.id, args=args, kwargs=kwargs, describe=self.last_call, **fields)

    def put(self, value) -> Remote:
        return self.request("put", args=[value], describe=describe_value(value))

    def fetch(self, handle: Remote):
        return self.request("fetch", ref=handle._ref.id, describe=f"fetch {handle._path}")

    def fixture(self, name: str) -> Remote:
        return self.request("fixture", name=name, describe=name)

    def violations(self) -> list[str]:
        found = self.request("violations", describe="violations")
        return [str(v) for v in found] if isinstance(found, list) else []

    def abandon(self) -> None:
        """Kill the child now; restart the whole worker if the zygote does not confirm."""
        if self.exit is None:
            self.exit = self._end()

    def end(self) -> dict:
        """Kill the child and return the zygote's report: status, problem, output."""
        if self.exit is None:
            self.exit = self._end()
        return self.exit

    def _end(self) -> dict:
        deadline = time.monotonic() + END_TIMEOUT
        try:
            self.connection.send({"zygote": "end"}, [], deadline)
            while True:  # late replies of the killed child may come first
                frame = self.connection.receive(deadline)
                if frame.header.get("zygote") == "exited":
                    return {k: frame.header.get(k) for k in ("status", "problem", "output")}
        except WorkerFailure as exc:
            self.worker.close()
            return {"status": "unknown", "problem": f"the worker stopped answering ({exc}); restarted", "output": ""}


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
