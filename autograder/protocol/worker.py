"""The worker: the untrusted side of the trust boundary.

Process model (the one place it is written down):

  grader ══socket══> template (one per slot: torch imported once, student code never)
    ║                   └─ zygote (one per submission, forked; never runs student code)
    ║                        │ ──socketpair──> child (one per check)
    ║                        │  <──output pipe─── child's fd 1 and 2
    ╚═ the zygote's socket ══╝
    ╚═══════ direct: the child's socket, handed to the grader ═══╝

* The template is started by a sandbox (`--template`), once for many
  submissions one after the other, on a socket on its stdin and stdout or one
  it connects to (`--connect PATH`: the docker sandbox binds the grader's
  listening socket into the container). It imports torch (one thread, so forked
  children don't hang) and the worker's own modules, then only forks: for each
  `open` it makes a zygote in a session of its own, with the socket and log the
  grader passed along. The sandbox's `enter` then gives the zygote its
  submission (the process sandbox: the folder, and the slot's uid when the
  template is root's; the namespace sandbox: a mount namespace holding that
  submission alone, jail.py; docker: the folder bound at /submission).
  Nothing of one submission reaches the next: each zygote is a fresh copy of
  a template that never saw a submission, and `close` kills it and its
  process group before the grader stages the next. A template that is pid 1
  (a jail's, a container's) then kills every other process in its pid
  namespace, and runs its sandbox's `scrub` (docker: what checks could leave
  in the container, protocol/container.py).
* A worker started with the submission directory as its argument is that
  submission's zygote itself: over a socket on its stdin and stdout (the
  process sandbox's link="socket"), or plain pipes (link="pipes").
* For each check the grader sends the zygote a `fork` frame. The zygote forks a
  child in a process group of its own, connected by a fresh socketpair; the
  child's stdout/stderr go to a pipe the zygote reads and caps. The child
  installs the run-time guard for the check's forbidden APIs, seeds its RNGs,
  then serves requests (import, get, set, call, put, fetch, fixture,
  violations, repeat: a timed race's program, plan.py), importing student
  modules on demand. Once the guard has refused something, every reply
  carries its first findings (`violations`). A request may carry `put`
  (values to hold under handle numbers the grader chose, placed before it
  is handled) and `fetch` (handles whose values its answer brings back).
  The zygote, which never runs student code, wraps the
  forbidden APIs each `fork` names (guard.cover), so that the children it
  forks next only turn on their own; the worker has built the guard's
  caches (guard.warm), and a template has collapsed its heap into 2 MB
  pages, which makes each fork and exit copy and drop 512 times fewer
  page-table entries.
* Two ways to carry the child's frames. Direct, when the sandbox connects
  grader and zygote by a Unix socket (process, namespace): the zygote passes
  the child's end of the socketpair to the grader (SCM_RIGHTS) with a `forked`
  frame and stays out of the data path. Relay, over plain pipes:
  the zygote relays frames both ways, parsing each with the protocol's caps, so
  a child that sends garbage or too much is killed without corrupting the
  stream. Either way the zygote's own frames carry a "zygote" key, and a child
  frame with that key is a protocol violation.
* A sandbox may confine each child further before it serves its check
  (`main(confine=...)`; its `before_fork`, if it has one, runs in the zygote
  just before the fork): the namespace sandbox gives every check namespaces
  of its own there (sandboxes/namespace.py has that process model).
* A child may serve several checks of one group in turn (engine/runner.py
  says which): the grader asks the zygote for the `output` of the check that
  ended, then sends the child `begin` with the next check's seed, which
  reseeds its RNGs and clears what the guard saw. Between two runs of its
  group (a unit's public checks, other units' public checks, then its hidden
  ones) a child is `park`ed: its process group stopped (SIGSTOP: none of its
  threads runs, whatever it had set up), and kept only where it stopped
  within STOP_WAIT, is alone, no process of its own left (`alone`), and the
  parked children's own memory stays within PARKED_BYTES; else it is killed.
  `resume` continues it.
* `end` makes the zygote kill the child's whole process group and report
  `exited` with the captured output: at once with status `ended`, reaping
  later, or, when the grader says the child died on its own (`wait`), after
  reaping, with the real exit status. A child that dies or breaks the protocol
  in relay mode is reported the same way. Meanwhile the zygote has forked a
  spare child, ready for the next check.
* The grader trusts none of this: it re-checks every frame, times every call,
  and kills the zygote if it stops answering.

Only the standard library, torch, and the protocol's own modules are imported
here, so a sandbox needs to expose nothing else of the package.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import select
import shutil
import signal
import socket
import stat
import sys
import threading
import time
import traceback
import types

# One thread in every library, as torch in main(), set before numpy and torch load (wire imports them):
# numpy's BLAS would start a thread per core whose spinning the check's CPU time would count.
os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")

import torch  # noqa: E402

from autograder.protocol import CONNECT_FLAG, TEMPLATE_FLAG, guard, plan, wire  # noqa: E402

OUTPUT_CAP = 64 << 10
PARKED_CAP = 64  # stopped children a zygote keeps at most
PARKED_BYTES = 512 << 20  # and their memory beyond the zygote's, together (private_bytes)
STOP_WAIT = 1.0  # seconds for a child to stop before it is killed instead of parked
EXIT_GRACE = 0.5  # for a child whose connection closed to finish exiting, so its real status is known
READ_CHUNK = 1 << 20
DEFINITIONS = (types.ModuleType, type, types.FunctionType)  # what a check's `begin` leaves handles to


def main(argv: list[str], confine=None, enter=None, scrub=None) -> None:
    """argv: [SUBMISSION], one zygote for that submission; or [TEMPLATE_FLAG], a template that forks a
    zygote per submission it is sent (a Unix socket on stdin and stdout), or [TEMPLATE_FLAG,
    CONNECT_FLAG, PATH], the same over the Unix socket at PATH.

    confine: called in every check's process before it serves the check (a sandbox's last word).
    enter: called in each new zygote of a template with the submission it was sent and the
    identity the grader asked for; returns the submission's path as the zygote sees it.
    scrub: called by a template that is pid 1 with the uid its last zygote was given, once a
    submission's processes are all dead, before it answers that the submission is closed (what its
    checks could have left elsewhere)."""
    # Keep the protocol pipes on private fds; stray prints go to stderr.
    to_grader = os.dup(1)
    from_grader = os.dup(0)
    os.dup2(2, 1)
    stdin_from_devnull()
    if argv[1:2] == [CONNECT_FLAG]:
        os.close(to_grader)
        os.close(from_grader)
        from_grader = connect_to_grader(argv[2])
        to_grader = os.dup(from_grader)

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    preload()
    if argv[0] == TEMPLATE_FLAG:
        back_with_huge_pages()  # ~0.5 s, once a slot: not for a worker that serves one submission
        die_with_parent(os.getppid())  # its zygotes die with it in turn
        os.close(from_grader)  # one socket both ways: its other descriptor must not reach a zygote
        Template(socket.socket(fileno=to_grader), enter or enter_folder, confine, scrub).run()
    else:
        direct = stat.S_ISSOCK(os.fstat(to_grader).st_mode)
        serve_submission(os.path.realpath(argv[0]), from_grader, to_grader, direct, confine)


def connect_to_grader(path: str) -> int:
    """The socket the grader listens on at path, for this worker alone (the docker sandbox), as a descriptor.
    First the worker stops being dumpable: its checks run as its uid, and Docker's seccomp allows
    ptrace; so nothing of that uid may attach to it or read its memory (its children inherit this)."""
    import ctypes

    PR_SET_DUMPABLE = 4
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    link.connect(path)
    return link.detach()


def serve_submission(submission: str, from_grader: int, to_grader: int, direct: bool, confine) -> None:
    """Be the zygote of one submission until the grader closes its input."""
    import tempfile

    # Student files are compiled once per zygote, into a private cache, never beside them.
    sys.pycache_prefix = tempfile.mkdtemp(prefix=f"autograder-pycache-{os.getpid()}-")  # the pid: a batch sweeps those of dead workers
    sys.dont_write_bytecode = False
    try:
        Zygote(submission, from_grader, to_grader, direct, confine).run()
    finally:
        shutil.rmtree(sys.pycache_prefix, ignore_errors=True)


def preload() -> None:
    """Import here, once, what every child needs: a child then starts in a few milliseconds."""
    import ctypes  # noqa: F401  (die_with_parent)
    import tokenize  # noqa: F401  (check_encoding)

    from autograder.protocol import fixtures  # noqa: F401

    seed_everything(0)  # a first call imports and builds lazily (15 ms in numpy.random)
    guard.warm()
    # What is loaded now is shared with every child: the cyclic collector then never scans it, so a
    # child's collections do not write to (and copy) the pages of torch's objects.
    gc.collect()
    gc.freeze()


def back_with_huge_pages() -> None:
    """Collapse the process's anonymous memory (torch's heap: ~150 MB) into 2 MB pages, once.

    A fork copies one page-table entry per page a process holds and an exit drops each again: ~37,000
    4 kB pages made every check's fork and exit cost 20 ms of CPU; 2 MB pages make it a few. A child that
    writes to one gets a 4 kB copy of what it wrote (the kernel splits the page), as before. MADV_COLLAPSE
    (Linux 6.1) works whatever the host's THP setting; where it is missing, or a mapping cannot be
    collapsed, the memory simply stays as it was."""
    import ctypes

    huge = 2 << 20
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madv_collapse = 25
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split()
        if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue  # only the heap and anonymous mappings: files and stacks are not collapsed
        low, high = (int(address, 16) for address in fields[0].split("-"))
        low = -(-low // huge) * huge
        high = high // huge * huge
        if high > low:
            madvise(low, high - low, madv_collapse)  # an error leaves the range as it was


def restore_torch_settings() -> None:
    """torch's global settings as a fresh process has them (what a check's code may have changed)."""
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    torch.set_num_threads(1)
    torch.set_flush_denormal(False)
    if torch.are_deterministic_algorithms_enabled():  # its setter's first call imports for 1.5 s
        torch.use_deterministic_algorithms(False)


def start_cuda() -> None:
    """A CUDA check's process, before its check and guard: the CUDA context, cuBLAS and cuDNN, which a
    fresh process loads on first use. That takes seconds (over the 3 s limit per call, on a GPU
    virtual machine), and a check's time limits are for the student's code. Never in a zygote or
    template: a process forked after CUDA started cannot use it."""
    if not torch.cuda.is_available():
        return  # the check says so itself, at its first CUDA tensor
    x = torch.ones(1, 1, 8, 8, device="cuda")
    w = torch.ones(1, 1, 3, 3, device="cuda", requires_grad=True)
    torch.nn.functional.conv2d(x, w).sum().backward()
    (x[0, 0] @ x[0, 0]).sum().item()
    torch.cuda.synchronize()


def seed_everything(seed: int) -> None:
    import random

    import numpy

    # torch.manual_seed's own path (every backend it knows, each looked up anew) costs 2 ms in a fresh
    # process; the CPU generator, and CUDA's once a CUDA check's process has started it (start_cuda).
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():  # never is_available(): it starts the driver, and a fork then loses CUDA
        torch.cuda.manual_seed_all(seed)
    # Full float32 precision on CUDA (TF32 is ~1e-3 off): a flag, it does not initialize CUDA.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    random.seed(seed)
    numpy.random.seed(seed % (1 << 32))


class Template:
    """Torch imported once, student code never: forks a zygote for each submission it is sent.

    Its frames carry a "template" key. From the grader: `open` (the submission,
    the uid to run as, and two descriptors passed with it: the zygote's socket
    and its log), answered `opened` with the zygote's pid; `close` (a pid and
    seconds of grace for the zygote to end on its own, then it and its process
    group are killed and reaped), answered `closed`. When the grader's socket
    closes, every zygote is killed and the template exits."""

    def __init__(self, control: socket.socket, enter, confine=None, scrub=None):
        self.control = control
        self.enter = enter
        self.confine = confine
        self.scrub = scrub
        self.uid = None  # the identity the last zygote was given
        self.frames = wire.FrameReader()
        self.passed: list[int] = []  # descriptors received, in order, not yet given to a zygote
        self.zygotes: set[int] = set()  # alive
        self.opened: set[int] = set()  # not closed yet, alive or not

    def run(self) -> None:
        if os.getpid() == 1:
            # pid 1 gets only the signals it handles, and Python handles SIGINT: where checks share its
            # pid namespace (a container), one could otherwise end it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.say("ready", pid=os.getpid())
        while True:
            readable, _, _ = select.select([self.control], [], [], 1.0)
            self.reap()
            if not readable:
                continue
            data, fds, _, _ = socket.recv_fds(self.control, READ_CHUNK, 2)
            self.passed += fds
            if not data:  # the grader is gone
                for pid in self.zygotes:
                    kill_group(pid)
                return
            for frame in self.frames.feed(data):
                self.on_frame(frame.header)

    def on_frame(self, header: dict) -> None:
        command = header.get("template")
        if command == "open" and len(self.passed) >= 2 and self.opened:  # one submission at a time
            for fd in self.passed[:2]:
                os.close(fd)
            del self.passed[:2]
            self.say("error", message="a submission is still open")
        elif command == "open" and len(self.passed) >= 2:
            sock, log = self.passed[:2]
            del self.passed[:2]
            self.uid = header.get("uid")
            pid = self.fork_zygote(str(header.get("submission")), self.uid, sock, log)
            self.opened.add(pid)
            self.say("opened", pid=pid)
        elif command == "close" and header.get("pid") in self.opened:  # its zygote may be reaped already
            pid = header["pid"]
            self.opened.discard(pid)
            deadline = time.monotonic() + min(float(header.get("grace") or 0), 10.0)
            while True:
                self.reap()
                if pid not in self.zygotes:
                    break
                if time.monotonic() >= deadline:
                    kill_group(pid)
                time.sleep(0.002)
            if os.getpid() == 1 and not self.zygotes:
                self.kill_the_rest()
                if self.scrub:
                    self.scrub(self.uid)  # raising, it ends the template: the grader then starts a fresh one
            self.say("closed", pid=pid)
        else:
            self.say("error", message=f"cannot {command!r:.40} (pid {header.get('pid')!r:.20})")

    def fork_zygote(self, submission: str, uid, sock: int, log: int) -> int:
        """The zygote's pid, once it has entered its submission (or died trying: its log says why)."""
        template = os.getpid()
        entered_r, entered_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                die_with_parent(template)
                signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any Python process
                stdin_from_devnull()  # a stdin of its own: its flags are not the template's
                os.setsid()  # a process group of its own: what close kills
                self.control.close()  # the grader's line to the template is never a zygote's (nor its checks')
                os.close(entered_r)
                os.dup2(log, 2)
                os.dup2(log, 1)
                os.close(log)
                path = self.enter(submission, uid)
                os.write(entered_w, b"e")
                os.close(entered_w)
                serve_submission(path, sock, sock, True, self.confine)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        for fd in (sock, log, entered_w):
            os.close(fd)
        os.read(entered_r, 1)  # so that, once opened, the zygote is what enter made it (its uid, its mounts)
        os.close(entered_r)
        self.zygotes.add(pid)
        return pid

    def kill_the_rest(self) -> None:
        """As pid 1 of a jail's pid namespace, with no zygote left: kill and reap every other process in
        it, checks that outlived their zygote (one that cleared its death signal) included, before the
        next submission's zygote starts."""
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return  # nothing else runs
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return

    def reap(self) -> None:
        """Reap every child that ended: zygotes, and (pid 1 in a jail) orphans of any depth."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.zygotes.discard(pid)

    def say(self, event: str, **fields) -> None:
        self.control.sendall(wire.encode_frame({"template": event, **fields}))


def enter_folder(submission: str, uid) -> str:
    """A zygote on the submission folder itself (the process and docker sandboxes); as the slot's uid
    when one is given (the template runs as root then), with a umask keeping its files its own."""
    if uid is not None:
        become(uid)
        os.umask(0o077)
    os.chdir(submission)
    return os.path.realpath(submission)


def become(uid: int) -> None:
    """uid, and the group of the same number, alone: no supplementary group, no capability left."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def stdin_from_devnull() -> None:
    """A fresh /dev/null as stdin: an open file of our own, whose flags nobody else shares."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def kill_group(pid: int) -> None:
    signal_group(pid, signal.SIGKILL)


def signal_group(pid: int, number: int) -> None:
    """number to pid's process group, and to pid itself (should it have left the group)."""
    for send in (lambda: os.killpg(pid, number), lambda: os.kill(pid, number)):
        try:
            send()
        except OSError:
            pass


class Zygote:
    def __init__(self, submission: str, from_grader: int, to_grader: int, direct: bool, confine=None):
        self.submission = submission
        self.confine = confine
        self.from_grader = from_grader
        self.to_grader = to_grader
        self.grader_socket = socket.socket(fileno=to_grader) if direct else None
        self.grader_frames = wire.FrameReader()
        self.to_grader_buffer = bytearray()
        self.child: Child | None = None  # serving the current check
        self.spare: Child | None = None  # forked ahead of time, waiting for the next check
        self.dying: list[Child] = []  # killed after a normal end, reaped when the kernel is done
        self.parked: dict[int, Child] = {}  # stopped between two runs of their group, by pid
        self.parked_bytes: dict[int, int] = {}  # the memory each holds alone (keeps)

    def run(self) -> None:
        self.spare = self.fork()
        self.say("ready", pid=os.getpid())
        while True:
            readable, writable = [self.from_grader], []
            if self.to_grader_buffer:
                writable.append(self.to_grader)
            if self.child:
                readable += self.child.readable()
                writable += self.child.writable()
            ready_r, ready_w, _ = select.select(readable, writable, [], 0.05 if self.dying else None)
            self.dying = [child for child in self.dying if not child.reaped()]
            if self.to_grader in ready_w:
                sent = os.write(self.to_grader, self.to_grader_buffer[:READ_CHUNK])
                del self.to_grader_buffer[:sent]
            if self.from_grader in ready_r:
                data = os.read(self.from_grader, READ_CHUNK)
                if not data:  # the grader is gone
                    for child in (self.child, self.spare, *self.parked.values()):
                        if child:
                            child.kill()
                    return
                for frame in self.grader_frames.feed(data):
                    self.on_grader_frame(frame)
            if self.child:
                problem = self.child.pump(ready_r, ready_w, self.to_grader_buffer)
                if problem:
                    self.reap(problem)

    def fork(self) -> "Child":
        for pause in (0.01, 0.05, 0.2, 1.0, None):  # a fork bomb's processes may take a moment to go
            try:
                return Child.fork(self.submission, [self.from_grader, self.to_grader], self.confine)
            except BlockingIOError:
                if pause is None:
                    raise
                time.sleep(pause)

    def on_grader_frame(self, frame: wire.Frame) -> None:
        command = frame.header.get("zygote")
        if command == "fork":
            if self.child:
                self.reap("a new check started")
            self.child, self.spare = self.spare or self.fork(), None
            if self.grader_socket:
                self.hand_over(self.child, frame.raw)
            else:
                self.child.send(frame.raw)  # the child's first frame: the check's seed and forbidden APIs
            # Wrapped here, they are wrapped in the spare forked next: its check only turns them on.
            try:
                guard.cover([str(name) for name in frame.header.get("forbid") or []])
            except Exception:  # the next check's process covers them itself, and its check says what failed
                pass
        elif command == "end":
            self.reap(None, wait=bool(frame.header.get("wait")))
        elif command == "output":  # the check is over, its process kept for the next: what it printed
            output = self.child.collect_output() if self.child else ""
            if self.child:
                self.child.output.clear()
                self.child.output_dropped = 0
            self.say("output", output=output)
        elif command == "park":
            self.park()
        elif command == "resume":
            self.resume(frame.header.get("pid"))
        elif command is None and self.child:
            self.child.send(frame.raw)
        elif command is None:
            self.say("error", message="no check is running")
        else:
            self.say("error", message=f"unknown command {command!r:.40}")

    def park(self) -> None:
        """Stop the current child until its group's next check; kill it where it cannot be kept."""
        child, self.child = self.child, None
        if child is None:
            self.say("exited", status="none", problem=None, output="")
            return
        output = child.collect_output()
        signal_group(child.pid, signal.SIGSTOP)  # its group: what it started stops too, where it is still there
        raw_status = wait_stopped(child.pid, STOP_WAIT)
        if raw_status is not None and not os.WIFSTOPPED(raw_status):  # it died meanwhile
            child.close()
            self.say("exited", status=describe_status(raw_status), problem=None, output=output)
        elif raw_status is not None and len(self.parked) < PARKED_CAP and self.keeps(child.pid):
            child.output.clear()
            child.output_dropped = 0
            self.parked[child.pid] = child
            self.say("parked", pid=child.pid, output=output)
        else:  # a process it started would run on while it waits, in other checks' time
            status, more = child.kill()
            self.say("exited", status="ended", problem=None, output=output + more)
        self.flush()  # the answer first: the grader moves on while the spare is forked (~4 ms)
        if self.spare is None:
            self.spare = self.fork()

    def keeps(self, pid: int) -> bool:
        """Whether the stopped child pid can wait parked: it is alone, and the parked children's own memory
        stays within PARKED_BYTES with its (every process of the worker shares one memory limit, and what
        waits must not crowd out the check that runs; a stopped child's memory stays as it was)."""
        number = _proc_number(pid)
        if number is None or not alone(number):
            return False
        size = private_bytes(number)
        if size is None or size + sum(self.parked_bytes.values()) > PARKED_BYTES:
            return False
        self.parked_bytes[pid] = size
        return True

    def resume(self, pid) -> None:
        """Continue a parked child as the current one."""
        if self.child:
            self.reap("a parked check resumed")
        child = self.parked.pop(pid, None) if type(pid) is int else None
        self.parked_bytes.pop(pid, None)
        if child is None:
            self.say("exited", status="none", problem="no such parked check", output="")
            return
        found, raw_status = os.waitpid(child.pid, os.WNOHANG)
        if found:  # killed while it waited (the memory killer)
            output = child.collect_output()
            child.close()
            self.say("exited", status=describe_status(raw_status), problem="it died while parked", output=output)
            return
        signal_group(child.pid, signal.SIGCONT)
        self.child = child
        self.say("resumed", pid=child.pid)

    def hand_over(self, child: "Child", setup: bytes) -> None:
        """Give the grader the child's socket, its setup frame already queued on it."""
        child.sock.setblocking(True)
        child.sock.sendall(setup)
        self.flush()
        forked = wire.encode_frame({"zygote": "forked", "pid": child.pid})  # for the grader's CPU-time clock
        socket.send_fds(self.grader_socket, [forked], [child.sock.fileno()])
        child.sock.close()
        child.closed = True

    def reap(self, problem: str | None, wait: bool = False) -> None:
        """End the current child and report; then fork the next one while the grader moves on."""
        child, self.child = self.child, None
        if child is None:
            self.say("exited", status="none", problem=problem, output="")
        elif problem is None and not wait:  # a normal end: its status is of no interest, answer at once
            child.signal_group()
            self.say("exited", status="ended", problem=None, output=child.collect_output())
            self.flush()
            child.close()
            self.dying.append(child)
        else:  # the grader says it died on its own: let its end reach us, to report its real status
            status, output = child.kill(grace=EXIT_GRACE if wait else 0.0)
            self.say("exited", status=status, problem=problem, output=output)
        if self.spare is None:
            self.spare = self.fork()

    def say(self, event: str, **fields) -> None:
        self.to_grader_buffer += wire.encode_frame({"zygote": event, **fields})

    def flush(self) -> None:
        while self.to_grader_buffer:
            sent = os.write(self.to_grader, self.to_grader_buffer[:READ_CHUNK])
            del self.to_grader_buffer[:sent]


class Child:
    """The zygote's view of one forked child."""

    def __init__(self, pid: int, sock: socket.socket, output_fd: int):
        self.pid = pid
        self.sock = sock
        self.output_fd = output_fd
        self.frames = wire.FrameReader()
        self.outbox = bytearray()
        self.output = bytearray()
        self.output_dropped = 0
        self.output_open = True
        self.closed = False

    @classmethod
    def fork(cls, submission: str, zygote_fds: list[int], confine=None) -> "Child":
        ours, theirs = socket.socketpair()
        output_r, output_w = os.pipe()
        zygote = os.getpid()
        if hasattr(confine, "before_fork"):  # e.g. a pid namespace the child will be pid 1 of
            confine.before_fork()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                die_with_parent(zygote)
                os.setpgid(0, 0)
                ours.close()
                os.close(output_r)
                for fd in set(zygote_fds):  # one socket both ways, or two pipes
                    os.close(fd)
                os.dup2(output_w, 1)
                os.dup2(output_w, 2)
                os.close(output_w)
                if confine:
                    confine()
                serve(theirs, submission)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                flush_student_output()
                os._exit(code)
        theirs.close()
        os.close(output_w)
        try:
            os.setpgid(pid, pid)  # also here: whichever runs first wins the race
        except OSError:
            pass
        ours.setblocking(False)
        os.set_blocking(output_r, False)
        return cls(pid, ours, output_r)

    def readable(self) -> list:
        fds = [self.output_fd] if self.output_open else []
        if not self.closed:
            fds.append(self.sock)
        return fds

    def writable(self) -> list:
        return [self.sock] if self.outbox and not self.closed else []

    def send(self, raw: bytes) -> None:
        self.outbox += raw

    def pump(self, ready_r, ready_w, to_grader: bytearray) -> str | None:
        """Move bytes; a non-None result is why the child must die."""
        if self.output_fd in ready_r:
            self.capture()
        if self.sock in ready_w:
            try:
                sent = self.sock.send(self.outbox[:READ_CHUNK])
                del self.outbox[:sent]
            except OSError:
                self.closed = True
        if self.sock in ready_r:
            try:
                data = self.sock.recv(READ_CHUNK)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return "the check's process closed its connection or exited"
            try:
                for frame in self.frames.feed(data):
                    if "zygote" in frame.header:
                        return "protocol error: the check's process forged a control frame"
                    to_grader += frame.raw
            except wire.ProtocolError as exc:
                return f"protocol error: {exc}"
        return None

    def capture(self) -> None:
        try:
            while data := os.read(self.output_fd, READ_CHUNK):
                room = OUTPUT_CAP - len(self.output)
                self.output += data[:room]
                self.output_dropped += max(0, len(data) - room)
            self.output_open = False  # end of file: the child closed its stdout and stderr
        except BlockingIOError:
            pass

    def signal_group(self) -> None:
        kill_group(self.pid)

    def collect_output(self) -> str:
        self.capture()
        output = self.output.decode("utf-8", errors="replace")
        if self.output_dropped:
            output += f"\n... ({self.output_dropped} more bytes of output dropped)"
        return output

    def reaped(self) -> bool:
        return os.waitpid(self.pid, os.WNOHANG)[0] != 0

    def close(self) -> None:
        self.sock.close()
        os.close(self.output_fd)

    def kill(self, grace: float = 0.0) -> tuple[str, str]:
        """Kill the child and its group and reap it; given grace seconds first to end on its own."""
        deadline = time.monotonic() + grace
        while True:
            pid, raw_status = os.waitpid(self.pid, os.WNOHANG)
            if pid or time.monotonic() >= deadline:
                break
            time.sleep(0.002)
        self.signal_group()  # also what it started
        if not pid:
            _, raw_status = os.waitpid(self.pid, 0)
        output = self.collect_output()
        self.close()
        return describe_status(raw_status), output


def alone(number: str) -> bool:
    """Whether our (stopped) child, `number` in /proc (_proc_number), has no child process. In a check's own pid namespace (the
    namespace sandbox) nothing of it then runs: orphans go to its pid 1, the child itself. Elsewhere
    an orphan goes to the sandbox's init; stopped with the child's process group, it waits too, unless
    it left the group, as it would outlive the check's end. False where /proc cannot say."""
    try:
        return not any(_children_of(number, thread) for thread in os.listdir(f"/proc/{number}/task"))
    except OSError:
        return False


def wait_stopped(pid: int, seconds: float) -> int | None:
    """pid's status once it has stopped or ended; None if neither within seconds (a vfork'd parent)."""
    deadline = time.monotonic() + seconds
    while True:
        found, raw_status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
        if found or time.monotonic() >= deadline:
            return raw_status if found else None
        time.sleep(0.0005)


def private_bytes(number: str) -> int | None:
    """The memory our child (`number` in /proc) holds beyond ours, its zygote's; None where unknown.

    Its anonymous resident memory less ours: counters the kernel keeps, where smaps_rollup's exact
    count of private pages walks every page table (5-8 ms for a process holding torch). It leaves out
    the pages of ours the child has written to (its copies replace pages it shared): a child holds
    at most our own size of those, and the worker's memory limit bounds every process anyway."""
    try:
        return max(0, _anon_bytes(number) - _anon_bytes("self"))
    except (OSError, ValueError):
        return None


def _anon_bytes(number: str) -> int:
    with open(f"/proc/{number}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return 1024 * int(line.split()[1])
    raise ValueError("no RssAnon line")


def _proc_number(pid: int) -> str | None:
    """Our child pid as this /proc numbers it (the jail's /proc may belong to an outer pid namespace)."""
    try:
        level = len(_nspids("self")) - 1
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listed:
                for number in listed.read().split():
                    nspids = _nspids(number)
                    if len(nspids) > level and nspids[level] == pid:
                        return number
    except (OSError, ValueError):
        pass
    return None


def _nspids(number: str) -> list[int]:
    """A process's pid in each pid namespace it is in, outermost first (as /proc's namespace sees it)."""
    with open(f"/proc/{number}/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                return [int(field) for field in line.split()[1:]]
    raise ValueError("no NSpid line")


def _children_of(number: str, thread: str) -> str:
    with open(f"/proc/{number}/task/{thread}/children") as listed:
        return listed.read().strip()


def die_with_parent(parent: int) -> None:
    """A child must not outlive its zygote: nobody would be left to kill it (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The zygote died before the request took effect. (A child in a pid namespace of its own sees
    # no parent, 0: should the zygote be gone, the child's end of its socket closes and it ends.)
    if os.getppid() not in (parent, 0):
        os._exit(1)


def describe_status(raw_status: int) -> str:
    if os.WIFSIGNALED(raw_status):
        number = os.WTERMSIG(raw_status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return f"signal {name}"
    return f"exit {os.WEXITSTATUS(raw_status)}"


# --- the child: serves one check ---------------------------------------------


def serve(sock: socket.socket, submission: str) -> None:
    server = Server(sock, submission)
    setup = server.receive()  # the zygote forwards the grader's fork request as the first frame
    if setup is None:
        return
    request = setup.header
    if request.get("device") == "cuda":
        start_cuda()
    seed_everything(int(request.get("seed", 0)) % (1 << 63))
    server.guard = guard.Guard([str(n) for n in request.get("forbid", [])], submission)
    server.guard.install()
    server.loop()


class Server:
    def __init__(self, sock: socket.socket, submission: str):
        self.sock = sock
        self.submission = submission
        self.guard = None
        self.frames = wire.FrameReader()
        self.pending: list[wire.Frame] = []
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}  # id(object) -> ref id, so one object keeps one handle
        self.last_ref = 0
        sys.path.insert(0, submission)

    def loop(self) -> None:
        while True:
            frame = self.receive()
            if frame is None:
                return
            try:
                reply, buffers = self.handle(frame), []
                body = {"ok": wire.encode_value(reply, buffers, self.handle_for)}
                if "fetch" in frame.header:  # values the grader wants back after this call (Session.fetching)
                    body["fetched"] = wire.encode_value(self.fetch(frame.header["fetch"]), buffers)
            except BaseException as exc:  # student code may raise anything, SystemExit included
                body, buffers = {"error": self.describe_error(exc)}, []
            self.after_request()
            flush_student_output()
            if self.guard and self.guard.violations:  # so the grader's verdict needs no request of its own
                body["violations"] = [str(v)[: wire.MAX_VIOLATION_CHARS] for v in self.guard.violations[: wire.MAX_VIOLATIONS]]
            self.sock.sendall(wire.encode_frame(body, buffers))

    def after_request(self) -> None:
        """After each call into the student's code: the run-time guard must still be in place."""
        if self.guard:
            self.guard.check_dispatcher()

    def receive(self) -> wire.Frame | None:
        while not self.pending:
            data = self.sock.recv(READ_CHUNK)
            if not data:
                return None
            self.pending += self.frames.feed(data)
        return self.pending.pop(0)

    def handle(self, frame: wire.Frame):
        header = frame.header
        if "put" in header:  # values the grader placed before this request (Session.put_all)
            self.place(header["put"], frame.buffers)
        op = header.get("op")
        if op == "repeat":  # a recorded program once per input set (plan.py): a timed race's measurement,
            program = wire.decode_value(header.get("args", []), frame.buffers)
            if header.get("calls"):  # or a check's calls, each step run as its own request would be
                return plan.run_calls(
                    *program, modules=self.import_module, objects=self.resolve_id,
                    describe_error=self.describe_error, after_step=self.after_request,
                )
            return plan.run(*program, modules=self.import_module)
        args = wire.decode_value(header.get("args", []), frame.buffers, self.resolve)
        if op == "import":
            return self.import_module(header["module"])
        if op == "get":
            return getattr(self.resolve_id(header["ref"]), str(header["name"]))
        if op == "set":
            setattr(self.resolve_id(header["ref"]), str(header["name"]), args[0])
            return None
        if op in ("call", "callmethod"):
            kwargs = wire.decode_value(header.get("kwargs", {"$dict": {}}), frame.buffers, self.resolve)
            target = self.resolve_id(header["ref"])
            if op == "callmethod":
                target = getattr(target, str(header["name"]))
            if "seed" in header:  # a model's training: its RNGs from the seed it is given (Session.train)
                seed_everything(int(header["seed"]) % (1 << 63))
            result = target(*args, **kwargs)
            if header.get("keep"):  # whatever it returns stays here: the grader asked for a handle
                return self.handle_for(result)
            # Only a class call yields a handle; anything else must be plain data to mean something.
            return result if isinstance(target, type) or wire.is_plain(result) else wire.Opaque(type_name(result))
        if op == "put":  # a handle for each value: several in one round trip
            return [self.handle_for(value) for value in args]
        if op == "fetch":
            return self.fetch(header.get("refs"))
        if op == "fixture":
            from autograder.protocol import fixtures

            return getattr(fixtures, header["name"])
        if op == "violations":
            return list(self.guard.violations)
        if op == "ready":  # answered once the process has started (start_cuda)
            return None
        if op == "begin":  # the next check of the same group in this process (engine/runner.py: check_group)
            forbid = [str(n) for n in header.get("forbid", [])]
            if forbid != self.guard.names:
                raise ValueError("a check with other forbidden APIs needs a process of its own")
            if threading.active_count() > 1:
                raise RuntimeError("a thread of the last check still runs: the next check needs a process of its own")
            restore_torch_settings()
            seed_everything(int(header.get("seed", 0)) % (1 << 63))
            self.guard.violations.clear()
            # The check's objects go; the student's modules, functions and classes keep their handles,
            # which the grader carries to the next check (proxy.StudentModules.carried_to).
            self.objects = {ref: value for ref, value in self.objects.items() if isinstance(value, DEFINITIONS)}
            self.ids = {id(value): ref for ref, value in self.objects.items()}
            return None
        raise ValueError(f"unknown op {op!r:.40}")

    def place(self, put, buffers) -> None:
        refs = put.get("refs") if isinstance(put, dict) else None
        values = wire.decode_value(put.get("values"), buffers) if isinstance(put, dict) else None
        if not (isinstance(refs, list) and isinstance(values, list) and len(refs) == len(values)
                and all(type(ref) is int and ref < 0 and ref not in self.objects for ref in refs)):
            raise ValueError("'put' needs new negative handle numbers, one per value")
        for ref, value in zip(refs, values):
            self.objects[ref] = value
            self.ids.setdefault(id(value), ref)

    def fetch(self, refs) -> list:
        if not isinstance(refs, list):
            raise ValueError("fetch needs 'refs', a list of handles")
        return [self.resolve_id(ref) for ref in refs]

    def import_module(self, name: str) -> types.ModuleType:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"bad module name {name!r:.40}")
        if name in sys.modules and getattr(sys.modules[name], "__file__", "") == self.path_of(name):
            return sys.modules[name]
        path = self.path_of(name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}.py is missing: the submission must contain {name}.py")
        check_encoding(path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so the student's own `import activations` finds this one
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    def path_of(self, name: str) -> str:
        return os.path.join(self.submission, name + ".py")

    def handle_for(self, value) -> wire.Ref:
        key = id(value)
        if key not in self.ids:
            self.last_ref = ref = self.last_ref + 1  # never a kept handle's number (begin)
            self.objects[ref] = value
            self.ids[key] = ref
        ref, kind = self.ids[key], kind_of(value)
        # A tensor's handle (put) is fetched, not called: listing its ~250 methods cost more than the put.
        methods = methods_of(value) if kind == "object" and not isinstance(value, torch.Tensor) else ()
        return wire.Ref(ref, kind, type_name(value), methods)

    def resolve(self, ref: wire.Ref):
        return self.resolve_id(ref.id)

    def resolve_id(self, ref) -> object:
        if ref not in self.objects:
            raise ValueError(f"unknown object handle {ref!r:.20}")
        return self.objects[ref]

    def describe_error(self, exc: BaseException) -> dict:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if self.is_student_file(f.filename)]
        where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
        if isinstance(exc, SyntaxError) and exc.filename and self.is_student_file(exc.filename):
            where = f"{os.path.basename(exc.filename)}:{exc.lineno}"
        lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
        return {
            "type": type(exc).__name__,
            "message": safe_str(exc)[:2000],
            "where": where,
            "traceback": "".join(lines)[-4000:],
        }

    def is_student_file(self, filename: str) -> bool:
        return os.path.realpath(filename).startswith(self.submission + os.sep)


def check_encoding(path: str) -> None:
    """Say plainly when a file is not in its declared encoding (UTF-8 unless a coding cookie says otherwise)."""
    import tokenize

    with open(path, "rb") as source_file:
        source = source_file.read()
    try:
        encoding, _ = tokenize.detect_encoding(iter(source.splitlines(keepends=True)[:2]).__next__)
    except (SyntaxError, StopIteration):  # undecodable first lines: UTF-8 is what applies
        encoding = "utf-8"
    try:
        source.decode(encoding)
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        raise UnicodeError(
            f"{os.path.basename(path)} is not valid {encoding.upper()}: byte 0x{source[exc.start]:02x} on line {line}; "
            "save the file as UTF-8"
        ) from None


def kind_of(value) -> str:
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    return "callable" if callable(value) else "object"


def methods_of(value) -> tuple[str, ...]:
    """The public methods of an object's class: the grader calls them in one round trip."""
    names = []
    for name in dir(type(value))[: wire.MAX_METHODS * 4]:
        if not name.startswith("_") and callable(getattr(type(value), name, None)):
            names.append(name)
    return tuple(names[: wire.MAX_METHODS])


type_name = wire.type_name


def safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:
        return f"<{type(exc).__name__} whose message could not be printed>"


def flush_student_output() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


if __name__ == "__main__":
    main(sys.argv[1:])
