"""The manifest `autograder submit` puts in a submission's zip, and its verification by the batch.

    {"format": 1, "student": "alice", "assignment": "hw1",
     "files": {"neurons.py": "<sha256 hex>", ...},
     "submitted_at": "2026-11-23T09:30:00Z", "autograder_version": "0.1.0",
     "problems": ["neurons.py:3: ...", ...]}

It says what was handed in and when. It proves nothing on its own (a student
can write one by hand); it lets the instructor see that the files graded are
the ones the student packed, and the batch takes the hand-in time from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import autograder

MANIFEST_NAME = "manifest.json"
FORMAT = 1
MANIFEST_CAP = 64 << 10  # a real one is a few hundred bytes
TOO_LARGE = f"over the {MANIFEST_CAP >> 10} KiB limit of a manifest"
UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


class ManifestError(Exception):
    """A manifest that cannot be read: the message says why."""


def utc_stamp(timestamp: float) -> str:
    """POSIX seconds as ISO 8601 UTC with a Z, to the second: 2026-11-23T09:30:00Z."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def build(student: str, assignment: str, files: dict[str, bytes], problems: list[str], now: float | None = None) -> dict:
    return {
        "format": FORMAT,
        "student": student,
        "assignment": assignment,
        "files": {name: sha256(content) for name, content in sorted(files.items())},
        "submitted_at": utc_stamp(time.time() if now is None else now),
        "autograder_version": autograder.__version__,
        "problems": list(problems),
    }


def write_zip(path: Path, manifest: dict, files: dict[str, bytes]) -> None:
    """files and manifest.json at the top of a zip at path, written whole or not at all."""
    # Entry times in UTC: the batch reads a zip's times as UTC (zip stores no time zone).
    stamp = datetime.strptime(manifest["submitted_at"][:19], "%Y-%m-%dT%H:%M:%S").timetuple()[:6]
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            entries = {**files, MANIFEST_NAME: (json.dumps(manifest, indent=1) + "\n").encode()}
            for name, content in entries.items():
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.external_attr = 0o644 << 16  # a plain file, readable by the grader
                archive.writestr(info, content, zipfile.ZIP_DEFLATED)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(content: bytes) -> dict:
    """A manifest read from bytes, its fields checked; ManifestError says what is wrong."""
    if len(content) > MANIFEST_CAP:
        raise ManifestError(TOO_LARGE)
    try:
        manifest = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ManifestError(f"not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ManifestError(f"not a manifest of `autograder submit` (format {found!r}, expected {FORMAT})")
    files = manifest.get("files")
    if not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())):
        raise ManifestError(f"its files are {str(files)[:80]!r}, expected an object of file name: sha256")
    for key in ("student", "assignment", "submitted_at"):
        if not isinstance(manifest.get(key), str):
            raise ManifestError(f"its {key} is {str(manifest.get(key))[:80]!r}, expected a string")
    if not UTC_STAMP.fullmatch(manifest["submitted_at"]) or not _is_date(manifest["submitted_at"]):
        raise ManifestError(f"its submitted_at {manifest['submitted_at'][:80]!r} is not ISO 8601 UTC (2026-11-23T09:30:00Z)")
    return manifest


def _is_date(stamp: str) -> bool:
    """Not 2026-13-45: a time the late policy could not read would count as on time."""
    try:
        datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return False
    return True


def verify(manifest: dict, files: dict[str, bytes], student: str, assignment: str) -> list[str]:
    """What does not match between a loaded manifest and the files taken from a submission; [] when all does."""
    found = []
    if manifest["assignment"] != assignment:
        found.append(f"it is for {manifest['assignment']!r}, not {assignment!r}")
    if manifest["student"] != student:
        found.append(f"it was written for student {manifest['student']!r}, but this is the submission of {student!r}")
    listed = manifest["files"]
    for name in sorted(set(listed) | set(files)):
        if name not in files:
            found.append(f"it lists {name}, which is not in the submission")
        elif name not in listed:
            found.append(f"{name} is not in it (added after `autograder submit`?)")
        elif sha256(files[name]) != listed[name]:
            found.append(f"{name} changed after `autograder submit`: sha256 {sha256(files[name])[:12]}, "
                         f"the manifest says {listed[name][:12]}")
    return found
