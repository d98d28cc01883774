"""The host's live processes, read from /proc, for tests that look for what grading left running."""

from __future__ import annotations

import os
from pathlib import Path


def live_processes(matches) -> list[int]:
    """Pids of the processes, zombies left out, whose /proc/PID/status text `matches` accepts."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue  # it ended while we looked
        if "\nState:\tZ" not in status and matches(status):
            found.append(int(entry))
    return found


def uid_of(status: str) -> int:
    return int(status.split("\nUid:")[1].split()[0])
