"""What the namespace and docker sandboxes share: slots (host uids no other
running worker has) and a staged copy of the submission those uids can read."""

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


def stage(submission: Path, log) -> Path:
    """A copy of the submission the jail's uids can read, whatever its owner and modes.

    Symbolic links are copied as links, never followed (inside the jail they
    point into the jail); files over the caps are left out, and the log says so."""
    staged = Path(tempfile.mkdtemp(prefix="autograder-submission-"))
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

    copy(submission, staged, 0)
    return staged


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)
