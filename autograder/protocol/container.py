"""The docker sandbox's worker inside its container (sandboxes/docker.py has the process model).

A worker template as the container's pid 1, linked to the grader by the socket it connects to. Each
zygote it forks works on /submission: the slot's staging folder, bound read-only, which holds one
submission at a time. Once a submission is closed, the template kills every other process in the
container, then `scrub` removes what that submission's checks could have left for the next one.
Running as the slot's uid on a read-only root, they can write nowhere but in WRITABLE and in the
container's System V IPC objects. Docker's seccomp profile refuses them keyrings.
"""

from __future__ import annotations

import ctypes
import os
import sys

from autograder.protocol import TEMPLATE_FLAG, worker

WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")  # tmpfs, tmpfs, POSIX message queues
IPC_KINDS = ("shm", "msg", "sem")  # /proc/sysvipc/<kind>: shared memory, message queues, semaphore sets
IPC_RMID = 0


def main(argv: list[str]) -> None:
    """argv: [CONNECT_FLAG, PATH], the grader's socket."""
    worker.main([TEMPLATE_FLAG, *argv], scrub=scrub)


def scrub() -> None:
    """Empty WRITABLE and remove every IPC object; raise where anything is left (the template then
    ends, and the grader starts a fresh container for the next submission)."""
    for folder in WRITABLE:
        if os.path.isdir(folder):
            empty(folder)
    libc = ctypes.CDLL(None, use_errno=True)
    remove = {"shm": lambda ident: libc.shmctl(ident, IPC_RMID, None),
              "msg": lambda ident: libc.msgctl(ident, IPC_RMID, None),
              "sem": lambda ident: libc.semctl(ident, 0, IPC_RMID)}
    for kind in IPC_KINDS:
        for ident in ipc_objects(kind):
            remove[kind](ident)
    left = [folder for folder in WRITABLE if os.path.isdir(folder) and os.listdir(folder)]
    left += [f"System V {kind} {ident}" for kind in IPC_KINDS for ident in ipc_objects(kind)]
    if left:
        raise RuntimeError(f"the container still holds what a submission left: {', '.join(left)}")


def empty(folder: str) -> None:
    """Remove everything in folder, keeping folder itself. A check may have closed a folder of its own
    to everyone: it is the template's uid, which may open it up again."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            empty(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def ipc_objects(kind: str) -> list[int]:
    """The ids of the container's System V IPC objects of kind (none where the kernel has no such IPC)."""
    try:
        with open(f"/proc/sysvipc/{kind}") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return []
    return [int(row.split()[1]) for row in rows if row.strip()]


if __name__ == "__main__":
    main(sys.argv[1:])
