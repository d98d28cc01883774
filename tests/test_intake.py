"""Finding a class's submissions: folders, zips, an LMS bulk zip, nbgrader's layout, and what is left out."""

import hashlib
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from autograder.batch.intake import SOURCE_CAP, IntakeError, discover
from autograder.submission.manifest import build, write_zip

MODULES = ["neurons", "activations"]
SOURCE = b"def f():\n    return 1\n"


def write(folder: Path, names=("neurons.py", "activations.py"), content=SOURCE):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(content)
    return folder


def found(source, assignment="hw1"):
    submissions, warnings = discover(source, assignment, MODULES)
    return {s.student: s for s in submissions}, warnings


def test_a_folder_per_student(tmp_path):
    write(tmp_path / "alice")
    write(tmp_path / "bob", ["neurons.py"])
    (tmp_path / "grades.xlsx").write_bytes(b"x")
    subs, warnings = found(tmp_path)
    assert sorted(subs) == ["alice", "bob"]
    assert sorted(subs["alice"].files) == ["activations.py", "neurons.py"] and not subs["alice"].notes
    assert subs["bob"].notes == ["missing: activations.py (the checks of its units score 0)"]
    assert warnings == ["passed over grades.xlsx: not a student's folder or zip"]


def test_several_missing_files_are_named_in_one_note(tmp_path):
    write(tmp_path / "cy", ["neurons.py"])
    (cy,), _ = discover(tmp_path, "hw1", ["neurons", "activations", "backprop"])
    assert cy.notes == ["missing: activations.py, backprop.py (the checks of their units score 0)"]


def test_files_inside_one_folder_of_the_submission_are_found_there(tmp_path):
    write(tmp_path / "alice" / "my hw1")
    (tmp_path / "alice" / "scratch.py").write_bytes(b"x = 1\n")
    subs, _ = found(tmp_path)
    assert sorted(subs["alice"].files) == ["activations.py", "neurons.py"]
    assert "graded the files in my hw1/" in subs["alice"].notes[0]


def test_an_empty_or_unrelated_submission_is_broken_with_the_reason(tmp_path):
    (tmp_path / "carl").mkdir()
    write(tmp_path / "dora", ["notes.py"])
    subs, _ = found(tmp_path)
    assert "none of the assignment's files" in subs["carl"].broken and "no Python files at all" in subs["carl"].broken
    assert "found: notes.py" in subs["dora"].broken


def test_links_special_huge_and_unreadable_files_are_left_out_with_a_note(tmp_path):
    alice = write(tmp_path / "alice", ["neurons.py"])
    (alice / "activations.py").symlink_to("/etc/shadow")
    os.mkfifo(alice / "backprop.py")
    (alice / "optimizers.py").write_bytes(b"#" * (SOURCE_CAP + 1))
    (alice / "data.bin").write_bytes(b"\0" * (SOURCE_CAP + 1))  # not Python: ignored, no note
    subs, _ = found(tmp_path)
    notes = "\n".join(subs["alice"].notes)
    assert sorted(subs["alice"].files) == ["neurons.py"]
    assert "left out activations.py: a symbolic link" in notes
    assert "left out backprop.py: not a regular file" in notes
    assert "left out optimizers.py: 1.0 MiB, over the 1 MiB limit" in notes
    assert "data.bin" not in notes


def test_a_zip_per_student_and_a_zip_uploaded_inside_a_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "alice.zip", "w") as archive:
        archive.writestr("hw1/neurons.py", SOURCE)
        archive.writestr("hw1/activations.py", SOURCE)
    (tmp_path / "bob").mkdir()
    with zipfile.ZipFile(tmp_path / "bob" / "upload.zip", "w") as archive:
        archive.writestr("neurons.py", SOURCE)
        archive.writestr("activations.py", SOURCE)
    (tmp_path / "carl.zip").write_bytes(b"not a zip")
    subs, _ = found(tmp_path)
    assert sorted(subs["alice"].files) == ["activations.py", "neurons.py"]
    assert sorted(subs["bob"].files) == ["activations.py", "neurons.py"] and "read from inside upload.zip" in subs["bob"].notes
    assert "not a readable zip file" in subs["carl"].broken


def test_a_bulk_zip_with_a_wrapper_folder_and_a_zip_slip_entry(tmp_path):
    bulk = tmp_path / "download.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        for student in ("alice", "bob"):
            archive.writestr(f"hw1 submissions/{student}/neurons.py", SOURCE)
            archive.writestr(f"hw1 submissions/{student}/activations.py", SOURCE)
        archive.writestr("hw1 submissions/bob/../../../evil.py", b"import os\n")
        link = zipfile.ZipInfo("hw1 submissions/alice/secret.py")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/shadow")
    subs, warnings = found(bulk)
    assert sorted(subs) == ["alice", "bob"]
    assert "left out secret.py: a symbolic link" in subs["alice"].notes[0]
    assert any("zip slip" in w for w in warnings + subs["bob"].notes)
    assert all(".." not in name for s in subs.values() for name in s.files)
    assert not (tmp_path.parent / "evil.py").exists()


def test_a_bulk_zip_member_climbing_out_of_its_student_folder_is_noted(tmp_path):
    bulk = tmp_path / "download.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        archive.writestr("alice/neurons.py", SOURCE)
        archive.writestr("alice/activations.py", SOURCE)
        archive.writestr("/abs/neurons.py", SOURCE)
        archive.writestr("alice/../../x.py", SOURCE)
    subs, warnings = found(bulk)
    assert sorted(subs) == ["alice"] and sorted(subs["alice"].files) == ["activations.py", "neurons.py"]
    assert sum("zip slip" in w for w in warnings) == 2


def test_nbgrader_submitted_layout_takes_only_this_assignment(tmp_path):
    for student in ("alice", "bob"):
        write(tmp_path / "submitted" / student / "hw1")
        (tmp_path / "submitted" / student / "hw1" / "timestamp.txt").write_text("2026-11-01 10:00:00")
    write(tmp_path / "submitted" / "carl" / "hw2", ["neurons.py"])
    subs, _ = found(tmp_path)
    assert sorted(subs) == ["alice", "bob"]  # carl submitted hw2 only
    assert sorted(subs["bob"].files) == ["activations.py", "neurons.py"]
    assert sorted(found(tmp_path / "submitted")[0]) == ["alice", "bob"]


def test_the_content_hash_follows_the_content_only(tmp_path):
    write(tmp_path / "a" / "alice")
    write(tmp_path / "b" / "alice")
    first = found(tmp_path / "a")[0]["alice"].content_hash
    assert found(tmp_path / "b")[0]["alice"].content_hash == first
    (tmp_path / "b" / "alice" / "neurons.py").write_bytes(SOURCE + b"\n")
    assert found(tmp_path / "b")[0]["alice"].content_hash != first


def test_what_cannot_be_a_class_is_refused(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(IntakeError, match="neither a folder nor a zip"):
        discover(tmp_path / "file.txt", "hw1", MODULES)
    with pytest.raises(IntakeError, match="does not exist"):
        discover(tmp_path / "nothing", "hw1", MODULES)


def test_a_student_with_a_folder_and_a_zip_is_taken_once(tmp_path):
    write(tmp_path / "alice")
    with zipfile.ZipFile(tmp_path / "alice.zip", "w") as archive:
        archive.writestr("neurons.py", SOURCE)
    subs, warnings = found(tmp_path)
    assert sorted(subs["alice"].files) == ["activations.py", "neurons.py"]
    assert warnings == ["passed over alice.zip: alice already has a submission (alice)"]


def test_a_class_folder_by_homework_skips_who_has_not_submitted_this_one(tmp_path):
    write(tmp_path / "alice" / "hw1")
    write(tmp_path / "bob" / "hw2", ["other.py"])  # bob has done hw2 only
    (tmp_path / "carl" / "notes").mkdir(parents=True)  # not a homework folder: broken, with the reason
    submissions, warnings = discover(tmp_path, "hw1", MODULES, others=("hw2", "hw3"))
    assert [s.student for s in submissions] == ["alice", "carl"] and submissions[1].broken
    assert warnings == ["bob has no hw1 (only hw2/): not submitted"]


# -- the manifest of `autograder submit`: verified, and the hand-in time ---------------------------

FILES = {"neurons.py": SOURCE, "activations.py": b"def g():\n    return 2\n"}
HANDED_IN = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
ZIPPED = (2026, 11, 21, 8, 30, 0)  # a zip entry's time, read as UTC


def submit_zip(path: Path, manifest: dict | bytes, files=FILES, folder="") -> Path:
    """What `autograder submit` writes, with files (possibly changed since) and the given manifest, in folder/ of the zip."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(folder + name, ZIPPED), content)
        archive.writestr(zipfile.ZipInfo(folder + "manifest.json", ZIPPED),
                         manifest if isinstance(manifest, bytes) else json.dumps(manifest))
    return path


def manifest_of(student="alice", assignment="hw1", files=FILES) -> dict:
    return build(student, assignment, files, [], now=HANDED_IN.timestamp())


def test_a_submit_zip_verifies_and_gives_the_hand_in_time(tmp_path):
    write_zip(tmp_path / "alice-hw1.zip", manifest_of(), FILES)  # as `autograder submit` writes and names it
    submit_zip(tmp_path / "bob.zip", manifest_of("bob"), folder="bob-hw1/")  # unzipped, then zipped again as a folder
    subs, _ = found(tmp_path)
    for student in ("alice", "bob"):
        assert [n for n in subs[student].notes if "manifest" in n] == []
        assert (subs[student].submitted_at, subs[student].submitted_at_source) == ("2026-11-20T10:00:00Z", "manifest")
    assert sorted(subs["alice"].files) == sorted(FILES)  # manifest.json is not graded


def test_a_changed_file_is_noted_and_the_time_comes_from_the_zip(tmp_path):
    changed = {**FILES, "neurons.py": SOURCE + b"# after submit\n", "helper.py": b"x = 1\n"}
    submit_zip(tmp_path / "alice.zip", manifest_of(), changed)
    alice = found(tmp_path)[0]["alice"]
    assert alice.notes == [
        "manifest.json does not verify: helper.py is not in it (added after `autograder submit`?)",
        f"manifest.json does not verify: neurons.py changed after `autograder submit`: sha256 "
        f"{hashlib.sha256(changed['neurons.py']).hexdigest()[:12]}, the manifest says {hashlib.sha256(SOURCE).hexdigest()[:12]}",
    ]
    assert (alice.submitted_at, alice.submitted_at_source) == ("2026-11-21T08:30:00Z", "newest file")


def test_a_folder_without_manifest_gets_its_newest_files_time(tmp_path):
    alice = write(tmp_path / "alice")
    os.utime(alice / "neurons.py", (0, HANDED_IN.timestamp()))
    os.utime(alice / "activations.py", (0, HANDED_IN.timestamp() - 3600))
    sub = found(tmp_path)[0]["alice"]
    assert (sub.submitted_at, sub.submitted_at_source) == ("2026-11-20T10:00:00Z", "newest file") and not sub.notes


@pytest.mark.parametrize("manifest, note", [
    (manifest_of(student="bob"), "it was written for student 'bob', but this is the submission of 'alice'"),
    (manifest_of(assignment="hw2"), "it is for 'hw2', not 'hw1'"),
    (manifest_of(files={"neurons.py": SOURCE}), "activations.py is not in it (added after `autograder submit`?)"),
    (b"{not json", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    (b" " * (64 << 10) + b"{}", "over the 64 KiB limit of a manifest"),
    (json.dumps({**manifest_of(), "submitted_at": "yesterday"}).encode(),
     "its submitted_at 'yesterday' is not ISO 8601 UTC (2026-11-23T09:30:00Z)"),
    (json.dumps({**manifest_of(), "submitted_at": "2026-13-45T10:00:00Z"}).encode(),
     "its submitted_at '2026-13-45T10:00:00Z' is not ISO 8601 UTC (2026-11-23T09:30:00Z)"),
    (b"[]", "not a manifest of `autograder submit` (format 'list', expected 1)"),
])
def test_a_manifest_that_does_not_verify_is_a_note_and_grading_goes_on(tmp_path, manifest, note):
    submit_zip(tmp_path / "alice.zip", manifest)
    alice = found(tmp_path)[0]["alice"]
    assert alice.notes == [f"manifest.json does not verify: {note}"] and not alice.broken
    assert sorted(alice.files) == sorted(FILES)
    assert (alice.submitted_at, alice.submitted_at_source) == ("2026-11-21T08:30:00Z", "newest file")
