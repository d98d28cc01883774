"""Warm templates: the grader's side of protocol/worker.py's `Template`.

A sandbox starts a template once per slot (Python, `import torch`, the jail or
the uid around it) and asks it for a zygote per submission, one submission at
a time; starting a submission then costs a fork, not an interpreter. The
templates of one sandbox configuration wait in a pool shared by every sandbox
object of that configuration in this process (a batch grader, a test session),
and are stopped when the process exits (or die with it: they are its children,
killed when it dies). A forked process (a batch's grader) starts its own: it
never touches its parent's.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import threading

from autograder.protocol import wire
from autograder.protocol.client import Connection, WorkerFailure
from autograder.protocol.limits import END_TIMEOUT, START_TIMEOUT, WallLimit
from autograder.sandboxes.base import SandboxUnavailable

STOP_SECONDS = 10.0  # for a template to kill its zygotes and exit once its socket is closed


class TemplateProcess:
    """One running template: its process, its control socket, and what its sandbox set up around it.

    cleanup: called once the template is dead (its cgroup, slot, staging folder);
    cpu_seconds: the kernel's count of CPU time of every process in it, where known."""

    def __init__(self, proc: subprocess.Popen, channel: socket.socket, log, cleanup=None, cpu_seconds=None, **extra):
        self.proc, self.channel, self.log = proc, channel, log
        self.cleanup, self.cpu_seconds = cleanup, cpu_seconds
        self.control = Connection(channel.fileno(), channel.fileno(), channel)
        self.__dict__.update(extra)  # what the sandbox keeps per template: its slot, its staging folder
        self.broken = False
        self.stopped = False

    def wait_ready(self) -> None:
        frame = self._receive(WallLimit(START_TIMEOUT), "ready")
        if frame is None:
            raise SandboxUnavailable(f"the worker template did not start{self.log_tail()}")

    def open(self, submission: str, uid: int | None, log) -> "Zygote":
        """A zygote for submission (a path as the template sees it), its stderr going to log."""
        ours, theirs = socket.socketpair()
        try:
            frame = wire.encode_frame({"template": "open", "submission": submission, "uid": uid})
            socket.send_fds(self.channel, [frame], [theirs.fileno(), log.fileno()])
        except OSError:
            self.broken = True
            ours.close()
            return None
        finally:
            theirs.close()
        opened = self._receive(WallLimit(END_TIMEOUT), "opened")
        pid = opened.header.get("pid") if opened else None
        if type(pid) is not int:
            ours.close()
            return None
        return Zygote(self, pid, ours, log)

    def close_zygote(self, pid: int, grace: float) -> None:
        """Wait up to grace seconds for the zygote to end on its own, then have it killed; return once reaped."""
        if self.broken:
            return
        try:
            self.control.send({"template": "close", "pid": pid, "grace": grace}, [], WallLimit(END_TIMEOUT))
        except WorkerFailure:
            self.broken = True
            return
        if self._receive(WallLimit(grace + END_TIMEOUT), "closed") is None:
            self.broken = True

    def _receive(self, limit, expected: str) -> wire.Frame | None:
        """The template's next frame if it is `expected`; None (and the template is broken) otherwise."""
        try:
            frame = self.control.receive(limit)
        except WorkerFailure:
            frame = None
        self.control.close_passed()
        if frame is None or frame.header.get("template") != expected:
            self.broken = True
            return None
        return frame

    def stop(self) -> None:
        """Close its socket: it kills its zygotes and exits; killed if it takes longer than STOP_SECONDS."""
        if self.stopped:
            return
        self.stopped = self.broken = True
        self.channel.close()
        try:
            self.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.cleanup:
            self.cleanup()

    def log_tail(self) -> str:
        self.log.seek(0)
        text = self.log.read()[-2000:].decode("utf-8", errors="replace").strip()
        return f"\nworker log:\n{text}" if text else ""


class Zygote:
    """A submission's zygote, forked by a template: what a sandbox's start() returns (see base.Sandbox).

    Its pid is the template's to kill: in a jail it means nothing out here."""

    def __init__(self, template: TemplateProcess, pid: int, channel: socket.socket, log):
        self.template, self.pid, self.channel, self.log = template, pid, channel, log
        self.cpu_seconds = template.cpu_seconds
        self.cgroup = getattr(template, "cgroup", None)  # the template's, where its sandbox made one
        self.stdin = self.stdout = None
        self.ended = False  # the template was asked to close it
        self.cleanup = None  # set by its pool: unstaging, giving the template back
        self.folder = None  # the host folder it reads: the staged copy, or the submission itself

    def stop(self, grace: float) -> None:
        """End the zygote, which kills its checks: grace seconds to do so on its own, then by force."""
        self.channel.close()
        self.kill(grace)

    def kill(self, grace: float = 0.0) -> None:
        """Have the template kill it (its socket stays open: what reads it sees the end)."""
        if not self.ended:
            self.ended = True
            self.template.close_zygote(self.pid, grace)

    def wait(self) -> None:
        """Killed or stopped, it is already reaped: the template answers once it is."""


class Pool:
    """Idle templates of one sandbox configuration; launch() starts a new one (ready, or raising)."""

    def __init__(self, launch):
        self.launch = launch
        self.idle: list[TemplateProcess] = []
        self.lock = threading.Lock()

    def open(self, prepare, log) -> Zygote:
        """A zygote from an idle template, or a new one's; a template found broken is replaced once.

        prepare(template) readies the submission for that template and returns the folder the
        zygote reads (a staged copy, or the submission itself), its path as the template sees
        it, the uid the zygote runs as (or None), and what undoes it, called once the zygote is
        dead (before the template serves another submission)."""
        for attempt in (1, 2):
            template = self.take()
            try:
                folder, path, uid, undo = prepare(template)
            except BaseException:
                self.give_back(template)
                raise
            zygote = template.open(path, uid, log)
            if zygote is not None:
                zygote.cleanup = lambda: self._after(template, undo)
                zygote.folder = folder
                return zygote
            undo()
            self.discard(template)
        raise SandboxUnavailable(f"the worker template stopped answering{template.log_tail()}")

    def _after(self, template: TemplateProcess, undo) -> None:
        try:
            undo()
        except BaseException:
            self.discard(template)  # what it would serve next may still hold this submission
            raise
        self.give_back(template)

    def take(self) -> TemplateProcess:
        while True:
            with self.lock:
                template = self.idle.pop() if self.idle else None
            if template is None:
                break
            if template.proc.poll() is None and not template.broken:
                return template
            self.discard(template)
        template = self.launch()
        _started.append(template)
        try:
            template.wait_ready()
        except BaseException:
            self.discard(template)
            raise
        return template

    def give_back(self, template: TemplateProcess) -> None:
        if template.broken or template.proc.poll() is not None:
            self.discard(template)
            return
        with self.lock:
            self.idle.append(template)

    def discard(self, template: TemplateProcess) -> None:
        if template in _started:
            _started.remove(template)
            template.stop()


_pools: dict[tuple, Pool] = {}
_started: list[TemplateProcess] = []  # every live template of this process, stopped at exit


def pool(key: tuple, launch) -> Pool:
    """The pool of templates of one sandbox configuration (key), shared in this process."""
    if key not in _pools:
        _pools[key] = Pool(launch)
    return _pools[key]


def stop_all() -> None:
    """Stop every template of this process (at exit; or wherever a grader must leave nothing running)."""
    for templates in _pools.values():
        with templates.lock:
            templates.idle.clear()
    while _started:
        _started.pop().stop()


def _forget_in_child() -> None:
    """In a forked child: the parent's templates are the parent's; close our copies of their sockets."""
    for template in _started:
        template.channel.close()
    _started.clear()
    for templates in _pools.values():  # a sandbox may hold its pool: empty, not forgotten
        templates.idle.clear()
        templates.lock = threading.Lock()


atexit.register(stop_all)
os.register_at_fork(after_in_child=_forget_in_child)
