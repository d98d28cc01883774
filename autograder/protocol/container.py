"""The docker sandbox's worker inside its container (sandboxes/docker.py has the process model).

A worker template as the container's pid 1, linked to the grader by the socket it connects to. It
runs as the container's root with three capabilities (setuid, setgid, kill) and no other, so that
no check can change it: each zygote it forks becomes the slot's check uid (worker.enter_folder) and
works on /submission, the slot's staging folder, bound read-only, which holds one submission at a
time. Once a submission is closed, the template kills every other process in the container, then
`scrub` removes, as the check uid, what that submission's checks could have left for the next one.
On a read-only root they can write nowhere but in WRITABLE and the container's System V IPC
objects; their TCP connections outlive them on the loopback (TIME_WAIT). A unix socket's name goes
with its last descriptor, or is a file in WRITABLE. Docker's seccomp profile refuses them keyrings.
"""

from __future__ import annotations

import ctypes
import os
import sys
import traceback

from autograder.protocol import TEMPLATE_FLAG, worker

WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")  # tmpfs, tmpfs, POSIX message queues
IPC_KINDS = ("shm", "msg", "sem")  # /proc/sysvipc/<kind>: shared memory, message queues, semaphore sets
IPC_RMID = 0
SOCKET_TABLES = ("tcp", "tcp6", "udp", "udp6", "raw", "raw6")  # /proc/net/<table>: the container's own


def main(argv: list[str]) -> None:
    """argv: [CONNECT_FLAG, PATH], the grader's socket."""
    worker.main([TEMPLATE_FLAG, *argv], scrub=scrub)


def scrub(uid: int | None) -> None:
    """What the last submission left, removed by a child running as its checks' uid (the owner of all
    of it); raises where anything is left: the template then ends, and the grader starts a fresh
    container for the next submission."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the template's line to the grader among them
            if uid is not None:
                worker.become(uid)
            left = remove_what_is_left()
            if left:
                print(f"the container still holds what a submission left: {', '.join(left)}", file=sys.stderr)
            else:
                code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError("the container could not be scrubbed (its log says why)")


def remove_what_is_left() -> list[str]:
    """Empty WRITABLE, remove every IPC object; what is still there after that."""
    for folder in WRITABLE:
        if os.path.isdir(folder):
            empty(folder)
    libc = ctypes.CDLL(None, use_errno=True)
    remove = {"shm": lambda ident: libc.shmctl(ident, IPC_RMID, None),
              "msg": lambda ident: libc.msgctl(ident, IPC_RMID, None),
              "sem": lambda ident: libc.semctl(ident, 0, IPC_RMID)}
    for kind in IPC_KINDS:
        for ident in table_rows(f"/proc/sysvipc/{kind}"):
            remove[kind](int(ident[1]))
    left = [folder for folder in WRITABLE if os.path.isdir(folder) and os.listdir(folder)]
    left += [f"System V {kind} {row[1]}" for kind in IPC_KINDS for row in table_rows(f"/proc/sysvipc/{kind}")]
    left += [f"a {table} socket" for table in SOCKET_TABLES if table_rows(f"/proc/net/{table}")]
    return left


def empty(folder: str) -> None:
    """Remove everything in folder, keeping folder itself, however deep (no recursion). A check may
    have closed a folder of its own to everyone: as its owner, we open it up again."""
    stack, folders = [folder], []
    while stack:
        current = stack.pop()
        folders.append(current)
        for entry in os.scandir(current):
            if entry.is_dir(follow_symlinks=False):
                os.chmod(entry.path, 0o700)
                stack.append(entry.path)
            else:
                os.unlink(entry.path)
    for inner in reversed(folders[1:]):  # each after every folder inside it
        os.rmdir(inner)


def table_rows(path: str) -> list[list[str]]:
    """The rows of a /proc table, its heading left out. Raises where the kernel does not show it:
    what cannot be seen cannot be known to be gone."""
    with open(path) as table:
        return [row.split() for row in table.read().splitlines()[1:] if row.strip()]


if __name__ == "__main__":
    main(sys.argv[1:])
