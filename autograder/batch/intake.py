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

An upload is hostile input: whatever it holds becomes notes on its student, or
the reason its submission is broken, never an exception that stops the class.
Every cost is bounded before it is paid: entries read (ENTRIES_CAP, without
walking a zip's directory past it), bytes read (the caps below), names
(NAME_PART_CAP, NAME_CAP; names must be UTF-8), notes kept (NOTES_CAP), and
notebooks and the parsing of their code (submission/notebook.py, checks/parsing.py).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from autograder.batch.bounded_zip import open_zip
from autograder.engine.runner import SOURCE_CAP, read_student_file
from autograder.submission.manifest import MANIFEST_CAP, MANIFEST_NAME, TOO_LARGE, ManifestError, utc_stamp
from autograder.submission.manifest import load as load_manifest
from autograder.submission.manifest import verify as verify_manifest
from autograder.submission.names import misnamed
from autograder.submission.notebook import NOTEBOOK_CAP, NoFileCells, NotebookError, cells_named
from autograder.submission.notebook import extract as extract_notebook

log = logging.getLogger("autograder")

FILES_CAP = 200  # Python files kept per submission
DEPTH_CAP = 6  # folders below the submission's top
INNER_ZIP_CAP = 64 << 20  # a zip a student uploaded, inside the class folder or bulk zip
# Entries (files and folders) read per submission; a homework is a dozen, one zipped with its virtualenv a few
# thousand. Past it the rest is not read (a zip's directory is not even walked) and one note says so.
ENTRIES_CAP = 10_000
BULK_ENTRIES_CAP = 200_000  # entries read from an LMS bulk zip, all students together; past it a warning says so
READ_BUDGET = 64 << 20  # bytes of sources, notebooks and manifests read per submission; past it the rest is left out
NAME_PART_CAP = 255  # bytes (UTF-8) in one file or folder name: Linux's NAME_MAX, the most a file system holds
NAME_CAP = 1024  # bytes in a path inside a submission: far under PATH_MAX (4096) with the grader's work folder in front
NOTES_CAP = 20  # notes kept per student on what was left out or found wrong; past it one note counts the rest
SHOWN_CAP = 80  # characters of a name or error quoted in a note; a longer one is shortened in the middle
SKIPPED_NAMES = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}
STUDENT_ID = re.compile(r"[^\x00-\x1f/\\\ud800-\udfff]{1,200}")  # lone surrogates: a folder name that is not UTF-8
USED_SUFFIXES = {".py", ".ipynb", ".zip"}  # what intake reads: a name problem of anything else is not worth a note
ZIP_AGAIN = "zip the files again (e.g. with `autograder submit`)"
HAND_IN_LESS = "hand in only the homework's files"


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
    kind: str  # "file", "link", "special", "unsafe", "encrypted", "unreadable", "misnamed", "too many"
    size: int
    read: object = None  # "file": (limit) -> at most limit of its bytes; raises OSError
    modified: float | None = None  # "file": when it was last changed, POSIX seconds
    reason: str = ""  # "unreadable", "misnamed", "too many": what is wrong


@dataclass
class _Notes:
    """A submission's notes: the few about the whole upload, and those per file or cell, which are capped."""

    head: list[str] = field(default_factory=list)  # how the upload was read (entries cap, a zip read from inside)
    details: list[str] = field(default_factory=list)  # per file, cell or manifest line
    tail: list[str] = field(default_factory=list)  # which folder was graded, what is missing

    def all(self) -> list[str]:
        shown = self.details[:NOTES_CAP]
        if len(self.details) > NOTES_CAP:
            shown.append(f"and {len(self.details) - NOTES_CAP:,} more notes like these (the first {NOTES_CAP} are shown)")
        return self.head + shown + self.tail


class _OverBudget(Exception):
    """READ_BUDGET is spent: nothing more of the submission is read."""


@dataclass
class _Taking:
    """What one submission's intake has found so far."""

    submission: Submission
    modules: list[str]
    assignment: str
    notes: _Notes = field(default_factory=_Notes)
    budget: int = READ_BUDGET

    def read(self, entry: _Entry, cap: int) -> bytes:
        """At most cap + 1 bytes of entry (enough to tell that it is over cap), charged to the budget."""
        if self.budget <= 0:
            raise _OverBudget
        content = entry.read(cap + 1)
        self.budget -= len(content)
        return content


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
    for student, origin, list_entries in found:
        submission, entries = _take(Submission(student, origin), list_entries, modules, assignment)
        folders = {e.path.parts[0] for e in entries if len(e.path.parts) > 1}
        if submission.broken and not submission.files and folders & set(others):
            warnings.append(f"{student} has no {assignment} (only {', '.join(sorted(folders & set(others)))}/): not submitted")
            continue
        submissions.append(submission)
    return sorted(submissions, key=lambda s: s.student), list(dict.fromkeys(warnings))  # once each, in order


def take(folder: Path, student: str, assignment: str, modules: list[str]) -> Submission:
    """One student's submission folder, read as a batch reads each (for `check` and `grade`)."""
    return _take(Submission(student, str(folder)), lambda: _folder_entries(Path(folder)), modules, assignment)[0]


def _take(submission: Submission, list_entries, modules: list[str], assignment: str) -> tuple[Submission, list[_Entry]]:
    """submission with its files, notes or the reason it is broken, and the entries found in it (list_entries()):
    never an exception for what an upload holds."""
    taking, entries = _Taking(submission, modules, assignment), []
    try:
        entries = list_entries()
        _collect(taking, entries)
    except Exception as exc:  # a case the rules above missed: this student's result says so, the class goes on
        log.warning("intake of %s failed", submission.student, exc_info=True)
        submission.files = {}
        submission.broken = (f"the upload could not be read ({_error(exc)}); "
                             "hand in the assignment's .py files in a folder or a plain zip")
    submission.notes = taking.notes.all()
    return submission, entries


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
            warnings.append(f"passed over {_shown(child.name)}: not a student's folder or zip")
            continue
        if not STUDENT_ID.fullmatch(student):
            warnings.append(f"passed over {_shown(child.name)!r}: not usable as a student id")
            continue
        if student in seen:
            warnings.append(f"passed over {child.name}: {student} already has a submission ({seen[student]})")
            continue
        if nbgrader:
            child = child / assignment
            if not child.is_dir() or child.is_symlink():
                continue  # this student has not submitted this assignment
        seen[student] = child.name
        yield student, str(child), (lambda c=child: _student_zip_entries(c)) if is_zip else (lambda c=child: _folder_entries(c))


def _student_zip_entries(path: Path) -> list[_Entry]:
    try:
        if path.stat().st_size > INNER_ZIP_CAP:
            return [_Entry(PurePosixPath(path.name), "unreadable", 0, reason=f"over the {INNER_ZIP_CAP >> 20} MiB limit of a zip")]
        return _zip_entries(io.BytesIO(path.read_bytes()), ENTRIES_CAP, path.name, HAND_IN_LESS)
    except Exception as exc:  # zipfile raises many kinds on a damaged zip, none of them is ours to let through
        return [_Entry(PurePosixPath(path.name), "unreadable", 0, reason=f"not a readable zip file: {_error(exc)}; {ZIP_AGAIN}")]


def _from_bulk_zip(source: Path, warnings: list[str]):
    with open(source, "rb") as stream:
        try:
            entries = _zip_entries(stream, BULK_ENTRIES_CAP, source.name, "the students after them are not graded")
        except Exception as exc:
            raise IntakeError(f"{source} is not a readable zip file: {_error(exc)}") from None
        if entries and entries[0].kind == "too many":
            warnings.append(entries.pop(0).reason)
        kept = []
        for entry in entries:
            if entry.kind == "unsafe":  # it belongs to no student for sure
                warnings.append(f"passed over {_shown(str(entry.path))}: its path leads outside the archive (zip slip)")
            else:
                kept.append(entry)
        entries = kept
        tops = {e.path.parts[0] for e in entries if len(e.path.parts) > 1}
        # One wrapper folder around the student folders: look inside it.
        if len(tops) == 1 and all(len(e.path.parts) > 2 for e in entries if e.kind == "file"):
            entries = [replace(e, path=PurePosixPath(*e.path.parts[1:])) for e in entries if len(e.path.parts) > 1]
        by_student: dict[str, list[_Entry]] = {}
        for entry in entries:
            if len(entry.path.parts) < 2:
                warnings.append(f"passed over {_shown(str(entry.path))}: not inside a student's folder")
                continue
            student = entry.path.parts[0]
            if student.startswith(".") or student in SKIPPED_NAMES:
                continue
            if entry.kind == "misnamed" and "\ufffd" in student:  # the student's folder is what is misnamed
                warnings.append(f"passed over {_shown(student)}/: {entry.reason}")
                continue
            if not STUDENT_ID.fullmatch(student):
                warnings.append(f"passed over {_shown(student)!r}: not usable as a student id")
                continue
            listed = by_student.setdefault(student, [])
            if len(listed) < ENTRIES_CAP:
                listed.append(replace(entry, path=PurePosixPath(*entry.path.parts[1:])))
            elif len(listed) == ENTRIES_CAP:
                listed.insert(0, _Entry(PurePosixPath(student), "too many", 0, reason=f"{student}/ in {source.name} holds "
                                        f"more than {ENTRIES_CAP:,} entries; only the first {ENTRIES_CAP:,} were read: {HAND_IN_LESS}"))
        for student, student_entries in sorted(by_student.items()):  # read while the bulk zip is open
            yield student, f"{source.name}:{student}/", lambda e=student_entries: e


def _folder_entries(root: Path):
    """The entries of a folder, links not followed, at most ENTRIES_CAP of them (a folder listing is cut there too)."""
    count, cut = 0, False

    def walk(folder: Path, depth: int, prefix: PurePosixPath):
        nonlocal count, cut
        try:
            with os.scandir(folder) as listing:
                children = sorted(itertools.islice(listing, ENTRIES_CAP + 1 - count), key=lambda e: e.name)
        except OSError as exc:
            yield _Entry(prefix, "unreadable", 0, reason=exc.strerror)
            return
        for child in children:
            if count >= ENTRIES_CAP:
                cut = True
                return
            count += 1
            path = prefix / child.name
            if child.name.startswith(".") or child.name in SKIPPED_NAMES:
                continue
            if child.is_symlink():
                yield _Entry(path, "link", 0)
            elif child.is_dir(follow_symlinks=False):
                if depth < DEPTH_CAP:
                    yield from walk(Path(child.path), depth + 1, path)
            elif child.is_file(follow_symlinks=False):
                status = child.stat(follow_symlinks=False)
                yield _Entry(path, "file", status.st_size, lambda limit, p=child.path: read_student_file(p, limit), status.st_mtime)
            else:
                yield _Entry(path, "special", 0)

    entries = list(walk(root, 0, PurePosixPath()))
    if cut:
        entries.insert(0, _Entry(PurePosixPath(), "too many", 0, reason=f"the folder holds more than {ENTRIES_CAP:,} "
                                 f"files and folders; only the first {ENTRIES_CAP:,} were read: {HAND_IN_LESS}"))
    return entries


def _zip_entries(stream, cap: int, zip_name: str, consequence: str) -> list[_Entry]:
    """The entries of the zip in stream (kept open by the caller), at most cap of them; first, when the zip holds
    more, a "too many" entry whose reason ends with consequence. Raises what zipfile raises on a zip it cannot read."""
    archive, misnamed, unread = open_zip(stream, cap)
    entries = []
    if unread:
        entries.append(_Entry(PurePosixPath(zip_name), "too many", 0, reason=f"{zip_name} holds {unread:,} entries (its "
                              f"directory says); only the first {cap:,} were read: {consequence}"))
    for index, info in enumerate(archive.infolist()):
        if info.is_dir():
            continue
        name = misnamed.get(index, info.filename).replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or not parts:
            entries.append(_Entry(PurePosixPath(name.lstrip("/") or "?"), "unsafe", 0))
            continue
        path = PurePosixPath(*parts)
        if any(p.startswith(".") or p in SKIPPED_NAMES for p in parts):
            continue
        if index in misnamed:
            entries.append(_Entry(path, "misnamed", 0, reason=f"its name is not valid UTF-8, though the zip says it is: {ZIP_AGAIN}"))
        elif stat.S_ISLNK(info.external_attr >> 16):
            entries.append(_Entry(path, "link", 0))
        elif info.flag_bits & 0x1:
            entries.append(_Entry(path, "encrypted", 0))
        else:
            entries.append(_Entry(path, "file", info.file_size, lambda limit, i=info: _read_member(archive, i, limit), _zip_time(info)))
    return entries


def _zip_time(info: zipfile.ZipInfo) -> float | None:
    """A zip entry's time as POSIX seconds. Zip keeps local time with no zone: it is taken as UTC,
    off by the zipper's UTC offset (`autograder submit` writes UTC); None for an impossible date."""
    try:
        return datetime(*info.date_time, tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    try:
        with archive.open(info) as member:  # read no more than the limit, whatever the header claims
            return member.read(limit)
    except Exception as exc:  # damaged data, an unknown method, a bad local header: the entry's fault
        raise OSError(0, f"damaged zip entry ({_error(exc)})") from None


LEFT_OUT = {
    "link": "a symbolic link (submit the file itself)",
    "special": "not a regular file",
    "unsafe": "its path leads outside the submission (zip slip)",
    "encrypted": "encrypted in the zip",
}


def _collect(taking: _Taking, entries: list[_Entry], inner: bool = False) -> None:
    """Read entries into the submission's files under the caps, noting what is left out and why."""
    submission, notes = taking.submission, taking.notes
    files, zips, notebooks = {}, [], []
    manifests, modified = {}, {}  # folder -> the manifest.json in it; file -> when it was changed
    for entry in entries:
        name = _shown(str(entry.path))
        if entry.kind == "unreadable":
            submission.broken = f"{name} cannot be read ({entry.reason})"
            return
        if entry.kind == "too many":
            notes.head.append(entry.reason)
            continue
        if entry.kind in LEFT_OUT:
            if entry.path.suffix == ".py" or entry.kind == "unsafe":
                notes.details.append(f"left out {name}: {LEFT_OUT[entry.kind]}")
            continue
        problem = entry.reason if entry.kind == "misnamed" else _name_problem(entry.path)
        if problem:
            if entry.path.suffix.lower() in USED_SUFFIXES:
                notes.details.append(f"left out {name}: {problem}")
            continue
        if entry.path.suffix.lower() == ".zip":
            if inner:
                notes.details.append(f"left out {name}: a zip inside a zip is not opened; hand in one zip of your files")
            else:
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
            notes.details.append(f"left out {name}: {entry.size / 2**20:.1f} MiB, over the {SOURCE_CAP >> 20} MiB limit of a source file")
            continue
        if len(files) >= FILES_CAP:
            notes.details.append(f"left out {name} and the rest: more than {FILES_CAP} Python files")
            break
        try:
            content = taking.read(entry, SOURCE_CAP)
        except OSError as exc:
            notes.details.append(f"left out {name}: it cannot be read ({exc.strerror or exc})")
            continue
        except _OverBudget:
            notes.details.append(f"left out {name} and the rest: {_over_budget()}")
            break
        if len(content) > SOURCE_CAP:
            notes.details.append(f"left out {name}: over the {SOURCE_CAP >> 20} MiB limit of a source file")
            continue
        files[entry.path] = content
        modified[entry.path] = entry.modified
    if not files and not notebooks and len(zips) == 1:
        _collect_inner_zip(taking, zips[0])
        return
    modules, assignment = taking.modules, taking.assignment
    expected = {f"{m}.py" for m in modules}
    top, unusable_notebooks = _top_folder(files, expected), []
    if notebooks and (top is None or not expected <= {p.name for p in files if p.parent == top}):
        unusable_notebooks = _add_notebook_files(taking, files, modified, notebooks)
        top = _top_folder(files, expected)
    if top is None:
        found = ", ".join(sorted(_shown(str(p)) for p in files)[:8]) or "no Python files at all"
        submission.broken = (unusable_notebooks.pop(0) if unusable_notebooks else
                             f"none of the assignment's files ({', '.join(sorted(expected))}) was found; found: {found}")
        notes.details.extend(unusable_notebooks)
        return
    notes.details.extend(unusable_notebooks)
    if top.parts and top.name != assignment:  # a folder named after the assignment is what anyone would expect
        notes.tail.append(f"graded the files in {_shown(str(top))}/, the folder that holds the assignment's files")
    submission.files = _writable({p.relative_to(top): c for p, c in files.items() if p.is_relative_to(top)}, notes)
    missing = sorted(expected - set(submission.files))
    if missing:
        present = {p.name for p in files if p.parent == top}
        hints = "".join(f"; {hint}" for name in missing if (hint := misnamed(name, present)))
        whose = "its" if len(missing) == 1 else "their"
        notes.tail.append(f"missing: {', '.join(missing)} (the checks of {whose} units score 0){hints}")
    times = [modified[p] for p in files if p.is_relative_to(top) and modified.get(p) is not None]
    _stamp(taking, manifests.get(top), times)


def _name_problem(path: PurePosixPath) -> str:
    """Why a path cannot be part of the copy the grader writes, or ""."""
    try:
        encoded = [part.encode("utf-8") for part in path.parts]
    except UnicodeEncodeError:  # a name on disk that is not UTF-8 (Python keeps its bytes as lone surrogates)
        return "its name is not valid UTF-8 text: rename it with letters, digits, _ and ."
    longest = max(encoded, key=len, default=b"")
    if len(longest) > NAME_PART_CAP:
        return f"a name in its path is {len(longest)} bytes long, over the {NAME_PART_CAP} a file name may have: rename it"
    whole = sum(map(len, encoded)) + len(encoded) - 1
    if whole > NAME_CAP:
        return f"its path is {whole} bytes long, over the {NAME_CAP} a path may have: move it to a shallower folder"
    if any(b"\0" in part for part in encoded):
        return "its name holds a NUL byte, which no file name may hold: rename it"
    return ""


def _shown(name: str) -> str:
    """A name as notes show it: undecodable bytes replaced, a long one shortened in the middle."""
    if not name.isascii():
        try:  # a name read from disk keeps its undecodable bytes as lone surrogates: one U+FFFD each
            raw = name.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # other lone surrogates (text from JSON)
            raw = name.encode("utf-8", "surrogatepass")
        name = raw.decode("utf-8", "replace")
    return name if len(name) <= SHOWN_CAP else f"{name[:SHOWN_CAP * 5 // 8]}…{name[-SHOWN_CAP * 5 // 16:]} ({len(name)} characters)"


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {_shown(str(exc))}"


def _over_budget() -> str:
    return f"the submission's files add up to more than the {READ_BUDGET >> 20} MiB the grader reads: hand in only the homework"


def _writable(files: dict[PurePosixPath, bytes], notes: _Notes) -> dict[str, bytes]:
    """files by name, less any whose folder is also a file (x.py and x.py/y.py cannot both be written)."""
    kept = {}
    for path, content in files.items():
        clash = next((parent for parent in path.parents if parent in files), None)
        if clash is not None:
            notes.details.append(f"left out {_shown(str(path))}: {_shown(str(clash))} is a file too, so it cannot be a folder")
        else:
            kept[str(path)] = content
    return kept


def _stamp(taking: _Taking, manifest: _Entry | None, times: list[float]) -> None:
    """When it was handed in: the time in the manifest of `autograder submit` when that verifies against
    the files taken, else the newest file's time. A manifest that does not verify becomes notes."""
    submission = taking.submission
    if manifest is not None:
        try:
            if manifest.size > MANIFEST_CAP:  # said before reading it
                raise ManifestError(TOO_LARGE)
            loaded = load_manifest(taking.read(manifest, MANIFEST_CAP))
            problems = verify_manifest(loaded, submission.files, submission.student, taking.assignment)
        except OSError as exc:
            problems = [f"it cannot be read ({exc.strerror or exc})"]
        except ManifestError as exc:
            problems = [str(exc)]
        except _OverBudget:
            problems = [_over_budget()]
        if not problems:
            submission.submitted_at, submission.submitted_at_source = loaded["submitted_at"], "manifest"
            return
        taking.notes.details.extend(f"{manifest.path} does not verify: {problem}" for problem in problems)
    if times:
        submission.submitted_at, submission.submitted_at_source = utc_stamp(max(times)), "newest file"


def _add_notebook_files(taking: _Taking, files: dict[PurePosixPath, bytes], modified: dict, notebooks: list[_Entry]) -> list[str]:
    """Add the files the notebooks define (next to each notebook, changed when the notebook was) that were
    not handed in as files; returns why each unusable notebook could not be used."""
    unusable, notes = [], taking.notes.details
    for entry in notebooks:
        try:
            if entry.size > NOTEBOOK_CAP:
                raise NotebookError(f"{_shown(str(entry.path))} is over the {NOTEBOOK_CAP >> 20} MiB limit of a notebook; "
                                    "clear its outputs and save it again")
            extracted = extract_notebook(taking.read(entry, NOTEBOOK_CAP), _shown(str(entry.path)), [f"{m}.py" for m in taking.modules])
        except OSError as exc:
            unusable.append(f"{_shown(str(entry.path))} cannot be read ({exc.strerror or exc})")
            continue
        except NoFileCells as exc:  # the released notebook, say, beside files handed in: nothing to say about it
            if not any(path.stem in taking.modules for path in files):
                unusable.append(str(exc))
            continue
        except NotebookError as exc:
            unusable.append(str(exc))
            continue
        except _OverBudget:
            unusable.append(f"{_shown(str(entry.path))} was not read: {_over_budget()}")
            continue
        notes.extend(extracted.notes)
        for name, code in extracted.files.items():
            cells = cells_named(extracted.cells[name])
            path = entry.path.parent / name
            if _name_problem(path):
                notes.append(f"{name} in {_shown(str(entry.path))} ({cells}) is left out: {_name_problem(path)}")
                continue
            if path in files:
                notes.append(f"{name} was handed in as a file and in {entry.path} ({cells}): the file is graded")
                continue
            files[path], modified[path] = code.encode(), entry.modified
            notes.append(f"{path}: taken from {entry.path}, {cells}")
    return unusable


def _collect_inner_zip(taking: _Taking, entry: _Entry) -> None:
    submission, shown = taking.submission, _shown(str(entry.path))
    if entry.size > INNER_ZIP_CAP:
        submission.broken = f"{shown} is over the {INNER_ZIP_CAP >> 20} MiB limit of an uploaded zip"
        return
    try:
        content = entry.read(INNER_ZIP_CAP + 1)  # not charged to the budget: the files inside it are
        if len(content) > INNER_ZIP_CAP:
            submission.broken = f"{shown} is over the {INNER_ZIP_CAP >> 20} MiB limit of an uploaded zip"
            return
        inner = _zip_entries(io.BytesIO(content), ENTRIES_CAP, shown, HAND_IN_LESS)
    except Exception as exc:  # zipfile raises many kinds on a damaged zip
        submission.broken = f"{shown} is not a readable zip file ({_error(exc)}): {ZIP_AGAIN}"
        return
    taking.notes.head.append(f"read from inside {shown}")
    _collect(taking, inner, inner=True)


def _top_folder(files: dict[PurePosixPath, bytes], expected: set[str]) -> PurePosixPath | None:
    """The folder holding most of the expected files (the shallowest on a tie); None when none is anywhere."""
    counts: dict[PurePosixPath, int] = {}
    for path in files:
        if path.name in expected:
            counts[path.parent] = counts.get(path.parent, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda folder: (-counts[folder], len(folder.parts), str(folder)))
