"""Hostile uploads in a class: each becomes a note on its student (or the reason its submission is
broken), never an exception that stops the batch, and costs bounded memory and CPU.

Each offender is put in a class beside two well-formed students (a folder and a zip) and read by
`discover`, under a memory ceiling; then the whole class goes through the real `autograder batch`
command: everyone else is graded, the offender has a clear note or reason."""

import ast
import io
import json
import os
import resource
import sqlite3
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from autograder.batch.bounded_zip import open_zip
from autograder.batch.intake import ENTRIES_CAP, NAME_PART_CAP, NOTES_CAP, discover, take
from autograder.checks.forbidden import scan_source
from autograder.checks.parsing import PARSE_UNITS_CAP, TooLargeToParse, parse, syntax_units
from autograder.engine.assignment import load_bundle
from autograder.submission.validate import validate
from autograder.submission.notebook import NOTEBOOK_CAP

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tinycourse"
RIGHT = b"def double(x):\n    return x + x\n"
MEMORY_HEADROOM = 1 << 30  # what reading one class may add to this process's address space
BATCH_ADDRESS_SPACE = 3 << 30  # the batch command's address space in the test (torch reserves about 0.7 GiB)
BATCH_PEAK_RSS = 800 << 20  # the batch process's peak RSS with the notebook of millions of statements


# Zips built byte by byte: stored entries, any name bytes and flags, as many as wanted, quickly.

def raw_zip(members: list[tuple[bytes, bytes, int]]) -> bytes:
    """A zip of (name bytes, content, general purpose flags) members, stored uncompressed."""
    local, directory = bytearray(), bytearray()
    for name, content, flags in members:
        crc = zlib.crc32(content)
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, flags, 0, 0, 0x21, crc, len(content),
                                 len(content), len(name), 0, 0, 0, 0, 0o100644 << 16, len(local)) + name
        local += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, flags, 0, 0, 0x21, crc, len(content), len(content),
                             len(name), 0) + name + content
    count = len(members)
    if count < 0xFFFF:
        end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(local), 0)
    else:  # zip64 end records: the plain one cannot count that far
        end = (struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory), len(local))
               + struct.pack("<4sLQL", b"PK\x06\x07", 0, len(local) + len(directory), 1)
               + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    return bytes(local + directory + end)


def statement_bomb(path: Path) -> str:
    """A small zip holding a notebook just under NOTEBOOK_CAP whose one cell is millions of `a;` statements."""
    head = b'{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, "source": "# file: scale.py\\n'
    tail = b'"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    statements = (NOTEBOOK_CAP - len(head) - len(tail) - 64) // 2
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hw.ipynb", head + b"a;" * statements + tail)
    assert path.stat().st_size < 64 << 10 and statements > 8_000_000
    return "notebook hw.ipynb: cell 1 (scale.py) is 16.0 MiB of code, over the 1 MiB a cell may hold: hand in the code, not data;"


def long_name(path: Path) -> str:
    """scale.py, and a Python file whose name is 300 characters long."""
    name = "x" * 297 + ".py"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scale.py", RIGHT)
        archive.writestr(name, b"y = 1\n")
    return f"{name[:50]}…{name[-25:]} (300 characters): a name in its path is 300 bytes long, over the {NAME_PART_CAP}"


def undecodable_name(path: Path) -> str:
    """scale.py, and an entry flagged UTF-8 (bit 0x800) whose name is not UTF-8."""
    path.write_bytes(raw_zip([(b"scale.py", RIGHT, 0), (b"helper\xff\xfe.py", b"y = 1\n", 0x800)]))
    return "left out helper\ufffd\ufffd.py: its name is not valid UTF-8, though the zip says it is"


def many_entries(path: Path) -> str:
    """scale.py, then 199,999 entries each of which, read, is a note (a path climbing out of the zip)."""
    members = [(b"scale.py", RIGHT, 0)] + [(b"../slip%d.py" % i, b"", 0) for i in range(199_999)]
    path.write_bytes(raw_zip(members))
    return f"{path.name} holds 200,000 entries (its directory says); only the first {ENTRIES_CAP:,} were read"


OFFENDERS = {"statement_bomb": statement_bomb, "long_name": long_name, "undecodable_name": undecodable_name,
             "many_entries": many_entries}


def make_class(folder: Path, offender: str) -> tuple[Path, str]:
    """ann (a folder) and bob (a zip), well formed, and mallory's hostile zip; returns the folder and what
    mallory's notes or reason must say."""
    (folder / "ann").mkdir(parents=True)
    (folder / "ann" / "scale.py").write_bytes(RIGHT)
    with zipfile.ZipFile(folder / "bob.zip", "w") as archive:
        archive.writestr("hw/scale.py", RIGHT)
    return folder, OFFENDERS[offender](folder / "mallory.zip")


class MemoryCeiling:
    """This process's address space limited to what it uses now plus headroom: an intake that would ask
    for gigabytes fails with MemoryError instead of taking the machine."""

    def __init__(self, headroom: int):
        self.headroom = headroom

    def __enter__(self):
        self.saved = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (in_use + self.headroom, self.saved[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_AS, self.saved)


def assert_well_formed_students_taken(submissions):
    by_student = {s.student: s for s in submissions}
    assert sorted(by_student) == ["ann", "bob", "mallory"], sorted(by_student)
    for student in ("ann", "bob"):
        assert (by_student[student].files, by_student[student].broken) == ({"scale.py": RIGHT}, ""), by_student[student]
    return by_student["mallory"]


@pytest.mark.parametrize("offender", sorted(OFFENDERS))
def test_discover_turns_a_hostile_upload_into_a_note_and_takes_the_others(tmp_path, offender):
    source, says = make_class(tmp_path / "class", offender)
    started = time.process_time()
    with MemoryCeiling(MEMORY_HEADROOM):
        submissions, warnings = discover(source, "tiny", ["scale"])
    cpu = time.process_time() - started
    mallory = assert_well_formed_students_taken(submissions)
    told = "\n".join([mallory.broken, *mallory.notes])
    assert says in told, f"expected {says!r} in mallory's notes, got:\n{told[:2000]}"
    assert len(mallory.notes) <= NOTES_CAP + 3, f"{len(mallory.notes)} notes:\n{told[:2000]}"
    assert cpu < 3.0, f"reading the class took {cpu:.1f} s of CPU"
    assert warnings == []
    if offender == "statement_bomb":
        assert mallory.broken.startswith(says) and mallory.files == {}
    else:  # the offender's well-formed file is graded
        assert mallory.files == {"scale.py": RIGHT} and not mallory.broken


def test_many_entries_cost_little_and_their_notes_are_capped(tmp_path):
    source, _ = make_class(tmp_path / "class", "many_entries")
    started = time.process_time()
    submissions, _ = discover(source, "tiny", ["scale"])
    cpu = time.process_time() - started
    notes = next(s for s in submissions if s.student == "mallory").notes
    assert cpu < 1.5, f"200,000 entries cost {cpu:.2f} s of CPU"
    slips = [note for note in notes if "(zip slip)" in note]
    assert len(slips) == NOTES_CAP and notes[NOTES_CAP + 1] == f"and {ENTRIES_CAP - 1 - NOTES_CAP:,} more notes like these " \
                                                                 f"(the first {NOTES_CAP} are shown)", notes


def test_names_a_folder_on_disk_cannot_give_the_grader(tmp_path):
    """`autograder check`/`grade` read a folder: a name that is not UTF-8 is left out with a note, and a file
    x.py beside a folder x.py/ holding y.py cannot both be copied (one is left out)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "scale.py").write_bytes(RIGHT)
    (folder / os.fsdecode(b"helper\xff.py")).write_bytes(b"y = 1\n")
    taken = take(folder, "local", "tiny", ["scale"])
    assert taken.files == {"scale.py": RIGHT} and not taken.broken
    assert taken.notes == ["left out helper\ufffd.py: its name is not valid UTF-8 text: rename it with letters, digits, _ and ."]


def test_a_zip_whose_file_is_also_a_folder_keeps_one_of_them(tmp_path):
    (tmp_path / "class").mkdir()
    with zipfile.ZipFile(tmp_path / "class" / "mallory.zip", "w") as archive:
        archive.writestr("scale.py", RIGHT)
        archive.writestr("x.py", b"")
        archive.writestr("x.py/y.py", b"")
    (mallory,), _ = discover(tmp_path / "class", "tiny", ["scale"])
    assert sorted(mallory.files) == ["scale.py", "x.py"]
    assert mallory.notes == ["left out x.py/y.py: x.py is a file too, so it cannot be a folder"]
    mallory.write(tmp_path / "copy")


def zipfile_made(count: int, comment: bytes = b"") -> bytes:
    with io.BytesIO() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for index in range(count):
                archive.writestr(f"f{index}.py", f"x = {index}\n" if index < 25 else "")
            archive.comment = comment
        return buffer.getvalue()


@pytest.mark.parametrize("made", ["zipfile's", "commented", "zip64 (66,000 entries)", "after a shell script", "by hand"])
def test_a_zip_cut_at_the_cap_reads_as_its_first_entries(made):
    """open_zip's view of a zip cut at 10 entries: zipfile reads the same 10 entries, names and contents, as
    it does in the whole zip, whatever end records the zip has and whatever comes before it."""
    data = {"zipfile's": lambda: zipfile_made(25), "commented": lambda: zipfile_made(25, b"a comment"),
            "zip64 (66,000 entries)": lambda: zipfile_made(66_000),
            "after a shell script": lambda: b"#!/bin/sh\nexit 0\n" + zipfile_made(25),
            "by hand": lambda: raw_zip([(b"f%d.py" % i, b"x = %d\n" % i, 0) for i in range(25)])}[made]()
    whole = zipfile.ZipFile(io.BytesIO(data))
    cut, misnamed, unread = open_zip(io.BytesIO(data), 10)
    assert (misnamed, unread) == ({}, len(whole.infolist()))
    assert [(i.filename, cut.read(i)) for i in cut.infolist()] == [(i.filename, whole.read(i)) for i in whole.infolist()[:10]]


@pytest.mark.parametrize("shape", [b"a;", b"1\n", b"f(*a)\n", b"lambda:0\n", b"a\r", b"1or 1\n"])
def test_parsing_is_refused_past_the_cap_and_bounded_under_it(shape):
    """At the cap, the costliest shapes measured stay within about 100 MiB; one unit more is refused unparsed."""
    units_per_copy = syntax_units(shape)
    under = shape * (PARSE_UNITS_CAP // units_per_copy)
    with MemoryCeiling(160 << 20), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        tree = parse(under)
    assert isinstance(tree, ast.Module)
    assert shown == [], f"{len(shown)} warnings shown, e.g. {shown[0].message}"  # one per `1or` took seconds
    with pytest.raises(TooLargeToParse, match=r"has [\d,]+ syntax units .* over the 100,000 the grader parses"):
        parse(under + shape, "scale.py")


def test_the_graders_forbidden_api_scan_does_not_start_parsing_past_the_cap(monkeypatch):
    """engine.runner.scan_forbidden scans each file the grader grades: 120,000 statements are not parsed
    (110 MiB in the grader), a small file still is, and its forbidden call is found."""
    parsed, real_parse = [], ast.parse
    monkeypatch.setattr(ast, "parse", lambda source, *args, **kwargs: parsed.append(len(source)) or real_parse(source, *args, **kwargs))
    rules = {"double": ["torch.sigmoid"]}
    assert scan_source("a;" * 60_000, rules) == {} and parsed == []
    found = scan_source("import torch\ndef double(x):\n    return torch.sigmoid(x)\n", rules)
    assert [str(v) for v in found["double"]] == ["line 3: double uses torch.sigmoid"] and len(parsed) == 1


def test_submit_says_a_file_is_too_large_to_parse_without_parsing_it(tmp_path):
    """`autograder submit` checks the student's files in the student's process: the same cap holds there."""
    (tmp_path / "neurons.py").write_bytes(b"a;" * 60_000)  # 117 KiB, 120,000 statements: 110 MiB to parse
    bundle = load_bundle("hw1", ROOT / "assignments" / "hw1" / "public_checks")
    with MemoryCeiling(64 << 20):
        problems = validate(bundle, tmp_path, sandbox=None).problems  # no file to import: no sandbox needed
    assert str(problems[0]) == ("neurons.py: neurons.py has 120,000 syntax units (names, numbers, operators, line ends), "
                                "over the 100,000 the grader parses (a homework file has a few thousand): hand in the code, not data")


def test_a_notebook_of_tiny_objects_is_refused_before_it_is_loaded(tmp_path):
    """JSON costs memory per value: 14 MiB of `{}` would be 320 MiB loaded (2.4 GiB through nbformat)."""
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    (tmp_path / "class" / "mallory" / "hw.ipynb").write_bytes(b'{"cells": [], "metadata": {"x": [' + b"{}," * 5_000_000 + b"{}]}}")
    with MemoryCeiling(MEMORY_HEADROOM):
        (mallory,), _ = discover(tmp_path / "class", "tiny", ["scale"])
    assert mallory.broken.startswith("hw.ipynb holds about 10,000,00") and "clear its outputs" in mallory.broken, mallory.broken


BATCH = f"""
import atexit, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({BATCH_ADDRESS_SPACE}, resource.getrlimit(resource.RLIMIT_AS)[1]))
atexit.register(lambda: print("peak RSS KiB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
from autograder.cli import main
main(sys.argv[1:], prog_name="autograder")
"""


def test_the_batch_grades_everyone_and_notes_each_hostile_upload(tmp_path):
    """All four offenders in one class (a batch costs a torch import): the real command, in a process
    of its own whose address space is limited, grades everyone and records each offender's note."""
    source = tmp_path / "class"
    source.mkdir()
    expected = {f"mallory_{offender}": build(source / f"mallory_{offender}.zip") for offender, build in OFFENDERS.items()}
    (source / "ann").mkdir()
    (source / "ann" / "scale.py").write_bytes(RIGHT)
    with zipfile.ZipFile(source / "bob.zip", "w") as archive:
        archive.writestr("hw/scale.py", RIGHT)
    db = tmp_path / "gradebook.sqlite"
    run = subprocess.run([sys.executable, "-c", BATCH, "batch", "tiny", str(source), "--db", str(db), "--root", str(TINY),
                          "--sandbox", "process", "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT student, score, result FROM submissions WHERE assignment = 'tiny'").fetchall()
    scores = {student: score for student, score, _ in rows}
    assert scores == {"ann": 3.0, "bob": 3.0, "mallory_long_name": 3.0, "mallory_undecodable_name": 3.0,
                      "mallory_many_entries": 3.0, "mallory_statement_bomb": 0.0}, scores
    notes = {student: "\n".join(json.loads(result)["notes"]) for student, _, result in rows}
    for student, says in expected.items():
        assert says in notes[student], f"expected {says!r} in {student}'s notes, got:\n{notes[student][:2000]}"
    peak = int(run.stderr.rsplit("peak RSS KiB", 1)[1].split()[0]) << 10
    print(f"batch peak RSS {peak / 2**20:.0f} MiB")
    assert peak < BATCH_PEAK_RSS, f"the batch process peaked at {peak / 2**20:.0f} MiB"
