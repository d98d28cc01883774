"""Bounded decoding (protocol/wire.py): what a frame may decode to is checked before anything is
allocated, and a frame outside the bounds is the sender's protocol error.

The end-to-end tests grade hostile hw1 submissions whose unit writes its own reply on the check's
connection (or whose file answers its own import), in a grading process of their own, under an address-space limit (so a regression
cannot take this machine down), and read that process's peak resident memory.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autograder.protocol import wire
from sandboxing import CHOSEN
from test_attacks import ATTACKS, REFERENCE, build, load

GROWTH_BOUND = 300 << 20  # the grading process's peak resident memory may grow by this much at most
ADDRESS_HEADROOM = 2 << 30  # address space the grading process (and its worker) may take beyond its start
GRADING_SECONDS = 240

# A hostile unit that answers with an empty tensor whose shape torch cannot even describe.
ABSURD_EMPTY_TENSOR = '''# file: neurons.py
# unit: neurons.perceptron_fit
# stops: namespace docker process-root
import json, os, stat, struct, time


def perceptron_fit(X, y, lr=1.0, epochs=10):
    tensor = {"$tensor": 0, "dtype": "float64", "shape": [0, 2**62, 2**62]}
    header = json.dumps({"ok": tensor, "buffers": [0]}).encode()
    fd = next(fd for fd in range(3, 1024) if _is_socket(fd))
    os.write(fd, struct.pack(">I", len(header)) + header)
    time.sleep(60)


def _is_socket(fd):
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False
'''

# A file that, while it is imported, answers the import itself: with a number, not a module.
FORGED_IMPORT_REPLY = '''# file: optimizers.py
# unit: optimizers
# stops: namespace docker process-root
import json, os, stat, struct

_header = json.dumps({"ok": 5, "buffers": []}).encode()
for _fd in range(3, 1024):
    try:
        if stat.S_ISSOCK(os.fstat(_fd).st_mode):
            os.write(_fd, struct.pack(">I", len(_header)) + _header)
            break
    except OSError:
        pass
'''

# Grades one submission on the checks of some hw1 files, in a sandbox (process unless the tests are
# told otherwise), and prints the result and the process's peak resident memory (KiB) before and
# after grading, as JSON.
GRADER = """
import json, re, resource, sys
from pathlib import Path
from autograder.engine.assignment import load_reference
from autograder.engine.runner import grade
from autograder.sandboxes import get_sandbox

reference, submission, modules, headroom, sandbox = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
assignment = load_reference("hw1", Path(reference))
assignment.checks = [spec for spec in assignment.checks if spec.module in modules.split(",")]
assignment.reference_root(assignment.tape_for(assignment.checks[0].id))  # imported before the baseline
with open("/proc/self/status") as status:
    address_space = int(re.search(r"VmSize:\\s+(\\d+)", status.read()).group(1)) << 10
resource.setrlimit(resource.RLIMIT_AS, (address_space + headroom, address_space + headroom))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = grade(assignment, submission, get_sandbox(sandbox), "mallory", reveal_hidden=True)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
checks = [dict(id=c.id, status=c.status, score=c.score, max_score=c.max_score, message=c.message) for c in result.checks]
print(json.dumps(dict(before_kib=before, after_kib=after, checks=checks)))
"""


def grade_hostile(code: str, directory: Path, modules: str) -> tuple[dict, str]:
    """Grade the reference with code appended to one of its files, on the checks of modules: (the report, the unit)."""
    source = directory / "attack.py"
    source.write_text(code)
    attack = load(source, "agbounds", 0, REFERENCE)
    submission = build(attack, directory / "submission")
    done = subprocess.run(
        [sys.executable, "-c", GRADER, str(REFERENCE), str(submission), modules, str(ADDRESS_HEADROOM),
         CHOSEN or "process"],
        capture_output=True, text=True, timeout=GRADING_SECONDS,
    )
    assert done.returncode == 0, f"the grading process ended with {done.returncode}:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), attack.unit


HOSTILE = {
    "amplified_reply": ((ATTACKS / "amplified_reply.py").read_text(), "neurons", "names buffer 0 for a second tensor"),
    "absurd_empty_tensor": (ABSURD_EMPTY_TENSOR, "neurons", "is over the 256 MiB cap"),
    "forged_import_reply": (FORGED_IMPORT_REPLY, "neurons,optimizers", "import optimizers returned 5"),
}


@pytest.mark.parametrize("attack", HOSTILE)
def test_a_hostile_reply_costs_its_unit_only_and_the_grader_little_memory(attack, tmp_path):
    code, modules, complaint = HOSTILE[attack]
    report, unit = grade_hostile(code, tmp_path, modules)
    growth = (report["after_kib"] - report["before_kib"]) << 10
    lost = {c["id"]: c["status"] for c in report["checks"] if c["score"] < c["max_score"]}
    ours = [c for c in report["checks"] if c["id"].startswith(unit + ".")]
    assert ours and set(lost) == {c["id"] for c in ours}, f"lost points: {lost}; the hostile unit's checks: {[c['id'] for c in ours]}"
    for check in ours:
        assert check["status"] == "error" and "internal error" not in check["message"], check
        assert "protocol error" in check["message"] and complaint in check["message"], check["message"]
    assert growth < GROWTH_BOUND, f"the grader's peak memory grew by {growth >> 20} MiB (bound {GROWTH_BOUND >> 20} MiB)"


def frame(header: dict, buffers: list = ()) -> wire.Frame:
    body = json.dumps(dict(header, buffers=[len(b) for b in buffers])).encode()
    (cut,) = wire.FrameReader().feed(struct.pack(">I", len(body)) + body + b"".join(buffers))
    return cut


def tensor(index: int, dtype: str, shape: list) -> dict:
    return {"$tensor": index, "dtype": dtype, "shape": shape}


def test_a_buffer_backs_one_tensor_of_a_frame():
    twice = frame({"ok": [tensor(0, "uint8", [4]), tensor(0, "uint8", [4])]}, [bytes(4)])
    with pytest.raises(wire.ProtocolError, match="names buffer 0 for a second tensor"):
        wire.decode_value(twice.header["ok"], twice.buffers)
    # The worker decodes a request's args and kwargs from one frame: the account spans both.
    split = frame({"args": [tensor(0, "uint8", [4])], "kwargs": {"$dict": {"x": tensor(0, "uint8", [4])}}}, [bytes(4)])
    assert wire.decode_value(split.header["args"], split.buffers)[0].shape == (4,)
    with pytest.raises(wire.ProtocolError, match="names buffer 0 for a second tensor"):
        wire.decode_value(split.header["kwargs"], split.buffers)


@pytest.mark.parametrize("shape", [[0, 2**62, 2**62], [0, 2**63], [0, 10**30], [1 << 20, 1 << 20, 0]])
def test_an_empty_tensor_of_an_impossible_shape_is_a_protocol_error(shape):
    with pytest.raises(wire.ProtocolError, match=r"is over the 256 MiB cap of one frame's tensors"):
        wire.decode_value(tensor(0, "float64", shape), [memoryview(b"")])


def test_a_shape_over_the_cap_is_refused_before_the_buffer_is_read():
    with pytest.raises(wire.ProtocolError, match=r"shape \(65536, 65536\) \(float32\) is over the 256 MiB cap"):
        wire.decode_value(tensor(0, "float32", [1 << 16, 1 << 16]), [memoryview(bytes(16))])


@pytest.mark.parametrize("bad, complaint", [
    (tensor(0, ["float64"], [1]), "dtype"),  # unhashable: once a TypeError out of the dtype table
    (tensor(0, "float64", [True]), "shape"),
    (tensor(0, "float64", [1.0]), "shape"),
    (tensor(0, "float64", [1] * (wire.MAX_NDIM + 1)), "shape"),
    (tensor(0, "bool", [8]), "bool tensor .* holds bytes other than 0 and 1"),
])
def test_malformed_tensor_metadata_is_a_protocol_error(bad, complaint):
    with pytest.raises(wire.ProtocolError, match=complaint):
        wire.decode_value(bad, [memoryview(bytes(7) + b"\x02")])


def test_header_depth_is_capped_and_leaves_room_for_the_deepest_value():
    deepest = torch.arange(3)  # inside the request's args list, at the deepest level encode_value allows
    for level in range(wire.MAX_NESTING - 1):
        deepest = (deepest,) if level % 2 else {"k": deepest}
    buffers: list = []
    request = {"args": wire.encode_value([deepest], buffers)}
    (cut,) = wire.FrameReader().feed(wire.encode_frame(request, buffers))
    back = wire.decode_value(cut.header["args"], cut.buffers)[0]
    for level in reversed(range(wire.MAX_NESTING - 1)):
        back = back[0] if level % 2 else back["k"]
    assert torch.equal(back, torch.arange(3))
    nested = {"x": 1}
    for _ in range(wire.MAX_HEADER_DEPTH):
        nested = {"x": nested}
    with pytest.raises(wire.ProtocolError, match=f"header nested deeper than {wire.MAX_HEADER_DEPTH} levels"):
        frame(nested)


def test_a_frame_arriving_in_pieces_has_its_header_parsed_once(monkeypatch):
    parsed = []
    parse = wire._parse_header
    monkeypatch.setattr(wire, "_parse_header", lambda body: parsed.append(len(body)) or parse(body))
    data = wire.encode_frame({"ok": list(range(1000))}, [bytes(1 << 20)])
    reader, frames = wire.FrameReader(), []
    for start in range(0, len(data), 4096):
        frames += reader.feed(data[start : start + 4096])
    assert len(frames) == 1 and len(parsed) == 1, f"{len(frames)} frames, header parsed {len(parsed)} times"


def test_a_flood_of_empty_frames_is_refused():
    """A megabyte of 6-byte frames: 174,762 frame objects (147 MiB) if all were cut."""
    empty = struct.pack(">I", 2) + b"{}"
    with pytest.raises(wire.ProtocolError, match=f"over {wire.MAX_FRAMES_AT_ONCE} frames arrived at once"):
        wire.FrameReader().feed(empty * ((1 << 20) // len(empty)))
    assert len(wire.FrameReader().feed(empty * wire.MAX_FRAMES_AT_ONCE)) == wire.MAX_FRAMES_AT_ONCE
