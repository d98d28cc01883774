"""Fuzzing the wire decoder (FrameReader.feed, then decode_value) under a memory ceiling.

Frames start as valid encodings of random plain data (tensors of every allowed dtype, empty ones
included, nested lists, tuples and dicts, handles), then get mutated: a tensor's buffer named
again, many times over; shapes, dtypes and indices replaced by hostile ones; nesting deepened;
bytes flipped, cut or inserted. Whatever comes in, the only exception that may leave the decoder
is ProtocolError, and its memory stays bounded.

Each run happens in a process of its own, under an address-space limit (RLIMIT_AS): a decoder that
multiplies what it is sent meets it. What the decoder allocates for one frame at its peak is traced
(tracemalloc: every copy it makes of a frame's bytes is a Python allocation); hypothesis's own
memory, which grows with the examples it has seen (340 MiB over 3,000), is not the decoder's.
The costliest headers are measured as the process's peak resident memory (ru_maxrss), read there
so that the test process's own history cannot mask it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from autograder.protocol import wire

TESTS = Path(__file__).resolve().parent
ADDRESS_HEADROOM = 1 << 30  # the fuzzing process's address space beyond what it had at the start
FRAME_BOUND = 32 << 20  # what decoding one fuzzed frame (at most ~1.5 MiB) may allocate at its peak
HEADER_BOUND = 100 << 20  # the process's peak resident memory may grow by this much decoding the costliest header
BIG_BUFFER = 256 << 10  # the largest buffer a fuzzed frame holds: aliased MENTIONS times, over the headroom
MENTIONS = 5000
HOSTILE_SHAPES = [[0, 2**62, 2**62], [0, 2**63], [2**64], [-1], [True], [1.5], [0] * 17, [1 << 16, 1 << 16],
                  [1 << 40, 0, 1 << 40], "3", None]
HOSTILE_DTYPES = [["float32"], {"x": 1}, "complex64", "object", None, 3]

# The measured part, in a process of its own: prints what it measured as JSON on its last line.
MEASURED = """
import json, re, resource, sys
sys.path.insert(0, {tests!r})
import test_wire_fuzz
with open("/proc/self/status") as status:
    address_space = int(re.search(r"VmSize:\\s+(\\d+)", status.read()).group(1)) << 10
resource.setrlimit(resource.RLIMIT_AS, (address_space + {headroom}, address_space + {headroom}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
found = test_wire_fuzz.{function}(*{args!r})
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(growth=(after - before) << 10, found=found)))
"""


def measured(function: str, *args, timeout: float = 300) -> dict:
    """function(*args) of this module in a fresh process under the address-space limit: its result and memory growth."""
    code = MEASURED.format(tests=str(TESTS), headroom=ADDRESS_HEADROOM, function=function, args=args)
    # Hypothesis keeps a cache (its unicode tables): in the temporary folder, not in the checkout.
    env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=os.path.join(tempfile.gettempdir(), "autograder-hypothesis"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    shown = "\n".join(line[:300] for line in done.stderr.splitlines()[-60:])  # a failing frame's bytes cut short
    assert done.returncode == 0, f"{function}{args} failed (exit {done.returncode}):\n{shown}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- what gets fuzzed --------------------------------------------------------

DTYPES = sorted(wire.DTYPES)


@st.composite
def tensors(draw):
    dtype = wire.DTYPES[draw(st.sampled_from(DTYPES))]
    shape = draw(st.lists(st.integers(0, 6), max_size=4))
    if draw(st.integers(0, 9)) == 0:  # now and then a big one, for aliasing to multiply
        shape = [BIG_BUFFER // dtype.itemsize]
    return torch.zeros(shape, dtype=dtype)


# Text from a small alphabet (quotes, escapes, non-ASCII, a lone surrogate): any character would make
# hypothesis build its unicode tables, 150 MiB that the memory measurement would count.
texts = st.text(alphabet='ab"\\/{}[]$\u00e9\u4e2d\U0001f600\ud800\x00\n', max_size=8)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
handles = st.builds(wire.Ref, st.integers(0, 99), st.sampled_from(["object", "class"]), texts)
values = st.recursive(
    scalars | tensors() | handles,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def tensor_descriptions(node) -> list[dict]:
    """Every tensor's description in an encoded value (a JSON tree), to mutate in place."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "$tensor" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@st.composite
def mutated_frames(draw) -> bytes:
    buffers: list = []
    encoded = wire.encode_value([draw(tensors()), draw(values)], buffers)
    header = {"v": encoded, "buffers": [memoryview(b).cast("B").nbytes for b in buffers]}
    described = tensor_descriptions(encoded)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["alias", "repeat", "repeat", "shape", "shape", "dtype", "index", "nest", "sizes"]))
        if kind == "repeat" and described:  # one buffer behind many tensors: the amplification attack
            header["v"] = [draw(st.sampled_from(described))] * draw(st.integers(2, MENTIONS))
        elif kind == "alias" and len(described) > 1:
            draw(st.sampled_from(described))["$tensor"] = draw(st.sampled_from(described))["$tensor"]
        elif kind == "shape" and described:
            draw(st.sampled_from(described))["shape"] = draw(st.sampled_from(HOSTILE_SHAPES))
        elif kind == "dtype" and described:
            draw(st.sampled_from(described))["dtype"] = draw(st.sampled_from(HOSTILE_DTYPES))
        elif kind == "index" and described:
            draw(st.sampled_from(described))["$tensor"] = draw(st.sampled_from([-1, len(buffers), 2**70, "0", None]))
        elif kind == "nest":
            for _ in range(draw(st.integers(1, 2 * wire.MAX_HEADER_DEPTH))):
                header["v"] = draw(st.sampled_from([[header["v"]], {"$tuple": [header["v"]]}, {"$dict": {"k": header["v"]}}]))
        elif kind == "sizes":
            header["buffers"] = draw(st.sampled_from([[-1], [1 << 40], [0] * (wire.MAX_BUFFERS + 1), "8", [1.0]]))
    body = json.dumps(header, separators=(",", ":")).encode()
    data = bytearray(struct.pack(">I", len(body)) + body + b"".join(bytes(memoryview(b).cast("B")) for b in buffers))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # byte-level damage, anywhere in the frame
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def decode_all(data: bytes, chunk: int) -> None:
    """Feed data in chunks (at most 256 of them) and decode every frame cut from it, as the grader does."""
    reader, chunk = wire.FrameReader(), max(chunk, len(data) // 256)
    for start in range(0, len(data), chunk):
        for frame in reader.feed(data[start : start + chunk]):
            wire.decode_value(frame.header.get("v"), frame.buffers, lambda ref: ref.id)


def fuzz(examples: int, derandomize: bool) -> dict:
    """Run the fuzzer: which refusals it met (ProtocolError messages' first words, how often), and the
    most that decoding one frame allocated at its peak (bytes)."""
    refusals: dict[str, int] = {}
    peak = 0

    # No shrinking: the first failing frame is reported as it came (shrinking one that took
    # a gigabyte would take as long again, many times over).
    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(mutated_frames(), st.sampled_from([1, 7, 4096, 1 << 20]))
    def decode_anything(data, chunk):
        nonlocal peak
        tracemalloc.start()
        try:
            decode_all(data, chunk)
        except wire.ProtocolError as exc:
            key = re.sub(r"\d+", "N", " ".join(str(exc).split()[:5]))
            refusals[key] = refusals.get(key, 0) + 1
        finally:
            frame_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert frame_peak < FRAME_BOUND, f"decoding a frame of {len(data)} bytes took {frame_peak >> 20} MiB at its peak"
        peak = max(peak, frame_peak)

    decode_anything()
    return {"refusals": refusals, "frame_peak": peak}


def decode_costliest_headers() -> list[str]:
    """Headers at the size cap made of the elements that cost most memory once parsed (and decoded)."""
    room, decoded = wire.MAX_HEADER_BYTES - 16, []
    for element in ("[[]]", "{}"):
        body = ('{"v":[' + ",".join([element] * (room // (len(element) + 1))) + "]}").encode()
        (frame,) = wire.FrameReader().feed(struct.pack(">I", len(body)) + body)
        try:
            decoded.append(type(wire.decode_value(frame.header["v"], frame.buffers)).__name__)
        except wire.ProtocolError as exc:  # {}: parsed, then refused
            decoded.append(str(exc))
    return decoded


# --- the tests ---------------------------------------------------------------


def test_fuzzed_frames_are_refused_with_protocol_errors_only_in_bounded_memory():
    """Deterministic (the same examples every run) and quick: the variant in `make test`."""
    found = measured("fuzz", 300, True)["found"]
    assert found["frame_peak"] < FRAME_BOUND, f"decoding one frame took {found['frame_peak'] >> 20} MiB at its peak"
    refused = found["refusals"]
    for expected in ("the frame names buffer N", "a tensor of shape", "header nested deeper than"):
        assert any(key.startswith(expected) for key in refused), f"no frame was refused with {expected!r}: {refused}"


@pytest.mark.slow
def test_fuzzed_frames_long_run():
    found = measured("fuzz", 3000, False, timeout=900)["found"]
    assert found["frame_peak"] < FRAME_BOUND, f"decoding one frame took {found['frame_peak'] >> 20} MiB at its peak"


def test_headers_at_the_size_cap_cost_bounded_memory():
    result = measured("decode_costliest_headers")
    assert result["found"][0] == "list" and "unexpected value {}" in result["found"][1], result
    assert result["growth"] < HEADER_BOUND, f"a header at the size cap took {result['growth'] >> 20} MiB"
