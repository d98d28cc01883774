"""What the namespace, docker and process (as root) sandboxes share: slots (host
uids no other running worker has) and a staged copy of the submission that only
root and those uids can read."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from autograder.sandboxes.base import SandboxUnavailable

SLOT_UIDS = 2_000_000_000  # host uids Z = base + 2 * slot, C = Z + 1: far above any real user
SLOTS = 4096
STAGE_FILES, STAGE_BYTES, STAGE_DEPTH = 1000, 64 << 20, 8  # what of a submission a sandbox sees at most
STAGED_PREFIX = "autograder-submission-"  # then the stager's pid: a batch sweeps the copies of dead graders
STAGE_MODE = 0o750  # a staged copy's top folder, root's and the slot's check group's: no other user enters


class Slot:
    """A slot number held by a lock on a file, so graders running side by side never share uids."""

    directory = Path(tempfile.gettempdir()) / "autograder-slots"

    def __init__(self, number: int, lock: int):
        self.number, self.lock = number, lock
        self.uids = (SLOT_UIDS + 2 * number, SLOT_UIDS + 2 * number + 1)

    @classmethod
    def take(cls) -> "Slot":
        cls.directory.mkdir(mode=0o700, exist_ok=True)
        for number in range(SLOTS):
            lock = os.open(cls.directory / str(number), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(number, lock)
            except BlockingIOError:
                os.close(lock)
        raise SandboxUnavailable(f"all {SLOTS} sandbox slots are in use")

    def release(self) -> None:
        os.close(self.lock)


def staging_folder(slot: Slot | None) -> Path:
    """A folder to stage submissions in, one after the other, that only root and the slot's uids can
    enter (as root: root's and the slot's check group's, 0750; otherwise ours alone, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{STAGED_PREFIX}{os.getpid()}-"))  # 0700, ours: nobody else between here and the chown
    if slot is not None and os.geteuid() == 0:
        os.chown(folder, 0, slot.uids[1])
        folder.chmod(STAGE_MODE)
    return folder


def stage(submission: Path, log, slot: Slot | None, into: Path | None = None, fill: Path | None = None) -> Path:
    """A copy of the submission that only root and the slot's uids can read, whatever its owner and modes.

    Its top folder is the lock on it: as root, owned by root and the slot's
    check gid C (slot.uids[1]), mode 0750, so a process whose gid or a
    supplementary group is C can read it (the namespace jail's zygote and
    checks, the docker container, the process sandbox's worker) and no other
    local user can enter it. Without root (or without a slot) it is ours
    alone, 0700: the unprivileged namespace jail runs as our own uid. Below
    it, modes are 0755/0644 (the top folder alone keeps others out).

    With into (a staging_folder), the copy is a folder inside it, 0755: the
    staging folder keeps others out. With fill (an empty staging_folder), the
    copy is that folder itself.

    Symbolic links are copied as links, never followed (inside the jail they
    point into the jail); files over the caps are left out, and the log says so."""
    if fill is not None:
        if any(os.scandir(fill)):
            raise SandboxUnavailable(f"{fill} still holds a staged submission")
        staged = fill
    elif into is None:
        staged = staging_folder(slot)
    else:
        staged = Path(tempfile.mkdtemp(dir=into))
        staged.chmod(0o755)
    budget = [STAGE_FILES, STAGE_BYTES]

    def copy(source: Path, target: Path, depth: int) -> None:
        for entry in sorted(os.scandir(source), key=lambda e: e.name):
            destination = target / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), destination)
            elif entry.is_dir(follow_symlinks=False) and depth < STAGE_DEPTH:
                destination.mkdir(mode=0o755)
                copy(Path(entry.path), destination, depth + 1)
            elif entry.is_file(follow_symlinks=False):
                size = entry.stat(follow_symlinks=False).st_size
                if budget[0] == 0 or size > budget[1]:
                    log.write(f"autograder: {entry.name} was left out of the sandbox: over the size caps\n".encode())
                    continue
                budget[0] -= 1
                budget[1] -= size
                with open(entry.path, "rb", opener=_no_follow) as original, open(destination, "xb") as copied:
                    shutil.copyfileobj(original, copied)
                destination.chmod(0o644)

    try:
        copy(submission, staged, 0)
    except BaseException:
        empty(staged) if fill is not None else shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def empty(folder: Path) -> None:
    """Remove what folder holds (a staged copy), keeping folder itself."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)
