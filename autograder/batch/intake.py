"""Find the submissions of a class and take a clean copy of each.

Accepted layouts (one submission per student, the student id is the name):
    DIR/<student>/...                 a folder per student
    DIR/<student>.zip                 a zip per student (an upload form; `autograder submit` writes <student>-<hw>.zip)
    DIR.zip  holding <student>/...    an LMS bulk download (one wrapper folder is fine)
    DIR/submitted/<student>/<hw>/...  nbgrader's exchange layout (DIR may be `submitted` itself)

Inside a submission, the assignment's files are looked for at its top, or in the
one folder that holds most of them (students zip a folder as often as its
contents); a student who uploaded a single zip is read from inside it. Where
no folder holds every one of them, a notebook's cells marked `# file: <name>.py`
stand for the missing files (autograder/submission/notebook.py).

The copy holds Python sources only, each a regular file of at most SOURCE_CAP
bytes: links, special files, paths that climb out of the submission (zip slip),
oversized and unreadable files are left out, and each omission becomes a note
in the student's result. The grader grades the copy, never the original, and
never follows a link the student made. A submission with none of the
assignment's files is broken: it is recorded with the reason, scoring 0.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from autograder.engine.runner import SOURCE_CAP, read_student_file
from autograder.submission.manifest import MANIFEST_CAP, MANIFEST_NAME, TOO_LARGE, ManifestError, utc_stamp
from autograder.submission.manifest import load as load_manifest
from autograder.submission.manifest import verify as verify_manifest
from autograder.submission.notebook import NOTEBOOK_CAP, NotebookError
from autograder.submission.notebook import extract as extract_notebook

FILES_CAP = 200  # Python files kept per submission
DEPTH_CAP = 6  # folders below the submission's top
INNER_ZIP_CAP = 64 << 20  # a zip a student uploaded, inside the class folder or bulk zip
READ_CAP = max(SOURCE_CAP, INNER_ZIP_CAP) + 1  # enough to tell that a file is over its cap
SKIPPED_NAMES = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}
STUDENT_ID = re.compile(r"[^\x00-\x1f/\\]{1,200}")


class IntakeError(Exception):
    """The class folder itself cannot be read: nothing to grade."""


@dataclass
class Submission:
    student: str
    origin: str  # where it came from, for messages
    files: dict[str, bytes] = field(default_factory=dict)  # path inside the submission -> content
    notes: list[str] = field(default_factory=list)  # what was left out or found wrong, for the student
    broken: str = ""  # why nothing can be graded; "" when gradable
    submitted_at: str = ""  # ISO 8601 UTC, as in SubmissionResult; "" when unknown
    submitted_at_source: str = ""  # "manifest" or "newest file"

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(f"{name}\0{len(self.files[name])}\0".encode())
            digest.update(self.files[name])
        return digest.hexdigest()

    def write(self, folder: Path) -> Path:
        """The clean copy, written under folder (made here); returns folder."""
        for name, content in self.files.items():
            target = folder.joinpath(*PurePosixPath(name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


@dataclass
class _Entry:
    """One thing found in a submission, before it is read."""

    path: PurePosixPath
    kind: str  # "file", "link", "special", "unsafe", "encrypted", "unreadable"
    size: int
    read: object = None  # "file": () -> its bytes, capped; raises OSError. "unreadable": why
    modified: float | None = None  # "file": when it was last changed, POSIX seconds


def discover(source: Path, assignment: str, modules: list[str], others: tuple[str, ...] = ()) -> tuple[list[Submission], list[str]]:
    """The submissions found in source, sorted by student, and warnings about what was passed over.

    others: the course's other assignments. A student whose work holds a folder named after one of
    them and nothing of this assignment has not submitted it (a class folder of <student>/<hw>/)."""
    source = Path(source)
    warnings: list[str] = []
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise IntakeError(f"{source} is neither a folder nor a zip file; pass the folder that holds one folder per student")
        found = _from_bulk_zip(source, warnings)
    elif source.is_dir():
        found = _from_folder(source, assignment, warnings)
    else:
        raise IntakeError(f"{source} does not exist")
    submissions = []
    for student, origin, entries in found:
        submission = Submission(student, origin)
        entries = list(entries)
        _collect(submission, entries, modules, assignment)
        folders = {e.path.parts[0] for e in entries if len(e.path.parts) > 1}
        if submission.broken and not submission.files and folders & set(others):
            warnings.append(f"{student} has no {assignment} (only {', '.join(sorted(folders & set(others)))}/): not submitted")
            continue
        submissions.append(submission)
    return sorted(submissions, key=lambda s: s.student), warnings


def take(folder: Path, student: str, assignment: str, modules: list[str]) -> Submission:
    """One student's submission folder, read as a batch reads each (for `check` and `grade`)."""
    submission = Submission(student, str(folder))
    _collect(submission, list(_folder_entries(Path(folder))), modules, assignment)
    return submission


def _from_folder(source: Path, assignment: str, warnings: list[str]):
    nbgrader = source.name == "submitted" or (source / "submitted").is_dir()
    base = source / "submitted" if (source / "submitted").is_dir() else source
    seen: dict[str, str] = {}
    for child in sorted(base.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or child.name in SKIPPED_NAMES:
            continue
        is_zip = child.suffix.lower() == ".zip" and child.is_file() and not child.is_symlink()
        # `autograder submit` names its zip <student>-<hw>.zip
        student = child.stem.removesuffix(f"-{assignment}") if is_zip else child.name
        if child.is_symlink() or not (child.is_dir() or is_zip):
            warnings.append(f"passed over {child.name}: not a student's folder or zip")
            continue
        if not STUDENT_ID.fullmatch(student):
            warnings.append(f"passed over {child.name!r}: not usable as a student id")
            continue
        if student in seen:
            warnings.append(f"passed over {child.name}: {student} already has a submission ({seen[student]})")
            continue
        if nbgrader:
            child = child / assignment
            if not child.is_dir() or child.is_symlink():
                continue  # this student has not submitted this assignment
        seen[student] = child.name
        yield student, str(child), _student_zip_entries(child) if is_zip else _folder_entries(child)


def _student_zip_entries(path: Path) -> list[_Entry]:
    try:
        if path.stat().st_size > INNER_ZIP_CAP:
            return [_Entry(PurePosixPath(path.name), "unreadable", 0, f"over the {INNER_ZIP_CAP >> 20} MiB limit of a zip")]
        return list(_zip_entries(zipfile.ZipFile(io.BytesIO(path.read_bytes()))))
    except (OSError, zipfile.BadZipFile) as exc:
        return [_Entry(PurePosixPath(path.name), "unreadable", 0, f"not a readable zip file: {exc}")]


def _from_bulk_zip(source: Path, warnings: list[str]):
    with zipfile.ZipFile(source) as bulk:
        entries = []
        for entry in _zip_entries(bulk):
            if entry.kind == "unsafe":  # it belongs to no student for sure
                warnings.append(f"passed over {entry.path}: its path leads outside the archive (zip slip)")
            else:
                entries.append(entry)
        tops = {e.path.parts[0] for e in entries if len(e.path.parts) > 1}
        # One wrapper folder around the student folders: look inside it.
        if len(tops) == 1 and all(len(e.path.parts) > 2 for e in entries if e.kind == "file"):
            entries = [replace(e, path=PurePosixPath(*e.path.parts[1:])) for e in entries if len(e.path.parts) > 1]
        by_student: dict[str, list[_Entry]] = {}
        for entry in entries:
            if len(entry.path.parts) < 2:
                warnings.append(f"passed over {entry.path}: not inside a student's folder")
                continue
            student = entry.path.parts[0]
            if student.startswith(".") or student in SKIPPED_NAMES:
                continue
            if not STUDENT_ID.fullmatch(student):
                warnings.append(f"passed over {student!r}: not usable as a student id")
                continue
            by_student.setdefault(student, []).append(replace(entry, path=PurePosixPath(*entry.path.parts[1:])))
        for student, student_entries in sorted(by_student.items()):
            yield student, f"{source.name}:{student}/", student_entries


def _folder_entries(root: Path, depth: int = 0, prefix: PurePosixPath = PurePosixPath()):
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        yield _Entry(prefix, "unreadable", 0, exc.strerror)
        return
    for child in children:
        path = prefix / child.name
        if child.name.startswith(".") or child.name in SKIPPED_NAMES:
            continue
        if child.is_symlink():
            yield _Entry(path, "link", 0)
        elif child.is_dir(follow_symlinks=False):
            if depth < DEPTH_CAP:
                yield from _folder_entries(Path(child.path), depth + 1, path)
        elif child.is_file(follow_symlinks=False):
            status = child.stat(follow_symlinks=False)
            yield _Entry(path, "file", status.st_size, lambda p=child.path: read_student_file(p, READ_CAP), status.st_mtime)
        else:
            yield _Entry(path, "special", 0)


def _zip_entries(archive: zipfile.ZipFile):
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or not parts:
            yield _Entry(PurePosixPath(name.lstrip("/") or "?"), "unsafe", 0)
            continue
        path = PurePosixPath(*parts)
        if any(p.startswith(".") or p in SKIPPED_NAMES for p in parts):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            yield _Entry(path, "link", 0)
        elif info.flag_bits & 0x1:
            yield _Entry(path, "encrypted", 0)
        else:
            yield _Entry(path, "file", info.file_size, lambda i=info: _read_member(archive, i), _zip_time(info))


def _zip_time(info: zipfile.ZipInfo) -> float | None:
    """A zip entry's time as POSIX seconds. Zip keeps local time with no zone: it is taken as UTC,
    off by the zipper's UTC offset (`autograder submit` writes UTC); None for an impossible date."""
    try:
        return datetime(*info.date_time, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        with archive.open(info) as member:  # read no more than the cap, whatever the header claims
            return member.read(READ_CAP)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
        raise OSError(0, f"damaged zip entry ({exc})") from None


LEFT_OUT = {
    "link": "a symbolic link (submit the file itself)",
    "special": "not a regular file",
    "unsafe": "its path leads outside the submission (zip slip)",
    "encrypted": "encrypted in the zip",
}


def _collect(submission: Submission, entries, modules: list[str], assignment: str, inner: bool = False) -> None:
    """Read entries into submission.files under the caps, noting what is left out and why."""
    notes, files, zips, notebooks = submission.notes, {}, [], []
    manifests, modified = {}, {}  # folder -> the manifest.json in it; file -> when it was changed
    for entry in entries:
        name = str(entry.path)
        if entry.kind == "unreadable":
            submission.broken = f"{name} cannot be read ({entry.read})"
            return
        if entry.kind in LEFT_OUT:
            if entry.path.suffix == ".py" or entry.kind == "unsafe":
                notes.append(f"left out {name}: {LEFT_OUT[entry.kind]}")
            continue
        if entry.path.suffix.lower() == ".zip" and not inner:
            zips.append(entry)
            continue
        if entry.path.suffix == ".ipynb":
            notebooks.append(entry)
            continue
        if entry.path.name == MANIFEST_NAME and entry.kind == "file":
            manifests[entry.path.parent] = entry
            continue
        if entry.path.suffix != ".py":
            continue
        if entry.size > SOURCE_CAP:
            notes.append(f"left out {name}: {entry.size / 2**20:.1f} MiB, over the {SOURCE_CAP >> 20} MiB limit of a source file")
            continue
        if len(files) >= FILES_CAP:
            notes.append(f"left out {name} and the rest: more than {FILES_CAP} Python files")
            break
        try:
            content = entry.read()
        except OSError as exc:
            notes.append(f"left out {name}: it cannot be read ({exc.strerror or exc})")
            continue
        if len(content) > SOURCE_CAP:
            notes.append(f"left out {name}: over the {SOURCE_CAP >> 20} MiB limit of a source file")
            continue
        files[entry.path] = content
        modified[entry.path] = entry.modified
    if not files and not notebooks and len(zips) == 1:
        _collect_inner_zip(submission, zips[0], modules, assignment)
        return
    expected = {f"{m}.py" for m in modules}
    top, unusable_notebooks = _top_folder(files, expected), []
    if notebooks and (top is None or not expected <= {p.name for p in files if p.parent == top}):
        unusable_notebooks = _add_notebook_files(files, modified, notebooks, notes)
        top = _top_folder(files, expected)
    if top is None:
        found = ", ".join(sorted(str(p) for p in files)[:8]) or "no Python files at all"
        submission.broken = (unusable_notebooks.pop(0) if unusable_notebooks else
                             f"none of the assignment's files ({', '.join(sorted(expected))}) was found; found: {found}")
        notes.extend(unusable_notebooks)
        return
    notes.extend(unusable_notebooks)
    if top.parts and top.name != assignment:  # a folder named after the assignment is what anyone would expect
        notes.append(f"graded the files in {top}/, the folder that holds the assignment's files")
    submission.files = {str(p.relative_to(top)): c for p, c in files.items() if p.is_relative_to(top)}
    missing = sorted(expected - set(submission.files))
    if missing:
        notes.append(f"missing: {', '.join(missing)} (the checks of its units score 0)")
    times = [modified[p] for p in files if p.is_relative_to(top) and modified.get(p) is not None]
    _stamp(submission, manifests.get(top), times, assignment)


def _stamp(submission: Submission, manifest: _Entry | None, times: list[float], assignment: str) -> None:
    """When it was handed in: the time in the manifest of `autograder submit` when that verifies against
    the files taken, else the newest file's time. A manifest that does not verify becomes notes."""
    if manifest is not None:
        try:
            if manifest.size > MANIFEST_CAP:  # said before reading it
                raise ManifestError(TOO_LARGE)
            loaded = load_manifest(manifest.read())
            problems = verify_manifest(loaded, submission.files, submission.student, assignment)
        except OSError as exc:
            problems = [f"it cannot be read ({exc.strerror or exc})"]
        except ManifestError as exc:
            problems = [str(exc)]
        if not problems:
            submission.submitted_at, submission.submitted_at_source = loaded["submitted_at"], "manifest"
            return
        submission.notes += [f"{manifest.path} does not verify: {problem}" for problem in problems]
    if times:
        submission.submitted_at, submission.submitted_at_source = utc_stamp(max(times)), "newest file"


def _add_notebook_files(files: dict[PurePosixPath, bytes], modified: dict, notebooks: list[_Entry], notes: list[str]) -> list[str]:
    """Add the files the notebooks define (next to each notebook, changed when the notebook was) that were
    not handed in as files; returns why each unusable notebook could not be used."""
    unusable = []
    for entry in notebooks:
        try:
            if entry.size > NOTEBOOK_CAP:
                raise NotebookError(f"{entry.path} is over the {NOTEBOOK_CAP >> 20} MiB limit of a notebook; clear its outputs and save it again")
            extracted = extract_notebook(entry.read(), str(entry.path))
        except OSError as exc:
            unusable.append(f"{entry.path} cannot be read ({exc.strerror or exc})")
            continue
        except NotebookError as exc:
            unusable.append(str(exc))
            continue
        notes.extend(extracted.notes)
        for name, code in extracted.files.items():
            cells = ", ".join(map(str, extracted.cells[name]))
            path = entry.path.parent / name
            if path in files:
                notes.append(f"{name} was handed in as a file and in {entry.path} (cells {cells}): the file is graded")
                continue
            files[path], modified[path] = code.encode(), entry.modified
            notes.append(f"{path}: taken from {entry.path}, cells {cells}")
    return unusable


def _collect_inner_zip(submission: Submission, entry: _Entry, modules: list[str], assignment: str) -> None:
    if entry.size > INNER_ZIP_CAP:
        submission.broken = f"{entry.path} is over the {INNER_ZIP_CAP >> 20} MiB limit of an uploaded zip"
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(entry.read()))
    except (OSError, zipfile.BadZipFile) as exc:
        submission.broken = f"{entry.path} is not a readable zip file ({exc})"
        return
    submission.notes.append(f"read from inside {entry.path}")
    _collect(submission, list(_zip_entries(archive)), modules, assignment, inner=True)


def _top_folder(files: dict[PurePosixPath, bytes], expected: set[str]) -> PurePosixPath | None:
    """The folder holding most of the expected files (the shallowest on a tie); None when none is anywhere."""
    counts: dict[PurePosixPath, int] = {}
    for path in files:
        if path.name in expected:
            counts[path.parent] = counts.get(path.parent, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda folder: (-counts[folder], len(folder.parts), str(folder)))
