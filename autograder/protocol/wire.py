"""The wire format between the grader and a worker, and the value codec.

A frame is a 4-byte big-endian length, that many bytes of UTF-8 JSON (the
header), then the raw buffers the header lists under "buffers" (their byte
lengths), back to back. Nothing is ever unpickled or evaluated: values travel
as tagged JSON plus raw tensor bytes whose dtype comes from an allow-list and
whose size must match its shape exactly.

Both sides decode what the other sends within fixed bounds, checked before
anything is allocated: a frame's header and payload sizes, the header's
nesting, and the tensors one frame decodes to (each buffer backs at most one
tensor; shapes, dtypes and sizes are validated first). Anything outside them is
a ProtocolError, never another exception: the grader blames the sender.

This module is imported inside the sandbox, so it uses only the standard
library and torch.
"""

from __future__ import annotations

import base64
import gc
import json
import struct
from dataclasses import dataclass, field

import torch

MAX_HEADER_BYTES = 1 << 20  # a frame's JSON header; parsed and decoded, ~70 MiB at most (tests/test_wire_fuzz.py)
MAX_BUFFERS = 4096  # raw buffers listed by one frame
# Frames cut from one piece of the stream: each request is answered with one frame, and a megabyte
# of empty frames would otherwise cost 147 MiB of frame objects.
MAX_FRAMES_AT_ONCE = 64
MAX_PAYLOAD_BYTES = 256 << 20  # a frame's raw buffers together, room for the data sets of later homeworks
# The tensors one frame decodes to, together (an empty tensor counts its shape with its zeros as ones).
# The largest frames hw1 and hw2 exchange carry 4 MiB (hw2's timed requests of 256x256 images): 64x room.
MAX_DECODED_BYTES = 256 << 20
MAX_NESTING = 32  # levels of lists, tuples and dicts in one value
MAX_HEADER_DEPTH = 2 * MAX_NESTING + 8  # JSON levels of a header: a tagged tuple or dict takes two per level
MAX_NDIM = 16
MAX_METHODS = 256
MAX_VIOLATIONS, MAX_VIOLATION_CHARS = 10, 500  # the guard's findings a reply carries (worker.py), each cut

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
DEVICES = ("cpu", "cuda")


class ProtocolError(Exception):
    """A frame or value that breaks the protocol (malformed, too big, not allowed)."""


class NotPlainData(TypeError):
    """A value that is not a number, string, bool, None, list/tuple/dict of those, or tensor."""


class Buffers(list):
    """A frame's buffers, keeping account while values are decoded from them (however many
    decode_value calls read one frame): each buffer backs at most one tensor, and the tensors
    together hold at most MAX_DECODED_BYTES."""

    def __init__(self, views=()):
        super().__init__(views)
        self.lent: set[int] = set()
        self.decoded = 0


@dataclass
class Frame:
    header: dict
    buffers: Buffers  # memoryviews into raw
    raw: bytes  # the whole frame as received, for relaying it unchanged


@dataclass(frozen=True)
class Ref:
    """A handle to an object living in the worker."""

    id: int
    kind: str  # module, class, callable, object
    type: str
    methods: tuple[str, ...] = ()  # an object's public methods, callable without a lookup


@dataclass(frozen=True)
class Opaque:
    """Something the student returned that is not plain data; only its type name crosses."""

    type: str

    def __repr__(self) -> str:
        return f"<object of type {self.type!r}, not plain data>"


def encode_frame(header: dict, buffers: list = ()) -> bytes:
    views = [memoryview(b).cast("B") for b in buffers]
    header = dict(header, buffers=[v.nbytes for v in views])
    body = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([struct.pack(">I", len(body)), body, *views])


@dataclass
class FrameReader:
    """Cuts frames out of a byte stream fed in pieces, enforcing the caps."""

    max_payload: int = MAX_PAYLOAD_BYTES
    _pending: bytearray = field(default_factory=bytearray)
    _next: tuple | None = None  # the header, buffer sizes and end of a frame still arriving, parsed once

    def feed(self, data: bytes) -> list[Frame]:
        self._pending += data
        frames = []
        while (frame := self._cut()) is not None:
            frames.append(frame)
            if len(frames) > MAX_FRAMES_AT_ONCE:
                raise ProtocolError(f"over {MAX_FRAMES_AT_ONCE} frames arrived at once, unasked")
        return frames

    def _cut(self) -> Frame | None:
        if self._next is None:
            self._next = self._cut_header()
            if self._next is None:
                return None
        header_len, header, sizes, end = self._next
        if len(self._pending) < end:
            return None
        with memoryview(self._pending) as pending:  # one copy of the frame, not two
            raw = bytes(pending[:end])
        del self._pending[:end]
        self._next = None
        view, offset, buffers = memoryview(raw), 4 + header_len, Buffers()
        for n in sizes:
            buffers.append(view[offset : offset + n])
            offset += n
        return Frame(header, buffers, raw)

    def _cut_header(self) -> tuple[int, dict, list[int], int] | None:
        """The next frame's header length, header, buffer sizes and end, once its header is in; within the caps."""
        if len(self._pending) < 4:
            return None
        (header_len,) = struct.unpack_from(">I", self._pending)
        if header_len > MAX_HEADER_BYTES:
            raise ProtocolError(f"header of {header_len} bytes exceeds the cap of {MAX_HEADER_BYTES}")
        if len(self._pending) < 4 + header_len:
            return None
        header = _parse_header(bytes(self._pending[4 : 4 + header_len]))
        sizes = header.get("buffers", [])
        if not isinstance(sizes, list) or len(sizes) > MAX_BUFFERS:
            raise ProtocolError("'buffers' must be a list of at most %d sizes" % MAX_BUFFERS)
        if not all(type(n) is int and n >= 0 for n in sizes):
            raise ProtocolError("'buffers' must list non-negative integers")
        payload = sum(sizes)  # once per frame, not per piece of it that arrives
        if payload > self.max_payload:
            raise ProtocolError(f"payload of {payload} bytes exceeds the cap of {self.max_payload}")
        return header_len, header, sizes, 4 + header_len + payload


def _parse_header(body: bytes) -> dict:
    # JSON makes no cycles for the collector to find, but a header of 300,000 empty lists would set it
    # off over the whole heap again and again: 20x the parse's own time with torch loaded.
    collecting = gc.isenabled()
    gc.disable()
    try:
        header = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not valid JSON: {exc}") from None
    finally:
        if collecting:
            gc.enable()
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    _check_depth(header)
    return header


def _check_depth(header: dict) -> None:
    """Refuse a header nested deeper than MAX_HEADER_DEPTH (walked level by level, without recursion)."""
    level, depth = [header], 1
    while level:
        if depth > MAX_HEADER_DEPTH:
            raise ProtocolError(f"header nested deeper than {MAX_HEADER_DEPTH} levels")
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        depth += 1


# --- values ---------------------------------------------------------------
# JSON as is: None, bool, int, float (NaN and infinities included), str, list.
# Tagged objects: {"$tuple": [...]}, {"$dict": {...}}, {"$tensor": i, "dtype",
# "shape", "device"} (i indexes the frame's buffers), {"$ref": id, "kind",
# "type"}, {"$object": type name}.


def encode_value(value, buffers: list, objects=None, depth: int = 0):
    """JSON-able form of value, appending tensor bytes to buffers.

    objects(value) -> Ref turns a non-data value into a handle; without it a
    non-data value raises NotPlainData.
    """
    if depth > MAX_NESTING:
        raise NotPlainData(f"nested deeper than {MAX_NESTING} levels")
    if value is None or type(value) is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    for plain in (int, float, str):  # numpy scalars and other subclasses cross as the plain type
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, torch.Tensor):
        return _encode_tensor(value, buffers)
    if isinstance(value, Ref):
        return {"$ref": value.id, "kind": value.kind, "type": value.type, "methods": list(value.methods)}
    if isinstance(value, Opaque):
        return {"$object": value.type}
    if type(value) is list:
        return [encode_value(v, buffers, objects, depth + 1) for v in value]
    if type(value) is tuple:
        return {"$tuple": [encode_value(v, buffers, objects, depth + 1) for v in value]}
    if type(value) is dict and all(type(k) is str for k in value):
        return {"$dict": {k: encode_value(v, buffers, objects, depth + 1) for k, v in value.items()}}
    if objects is not None:
        return encode_value(objects(value), buffers)
    raise NotPlainData(f"an object of type {type_name(value)!r} is not plain data")


def is_plain(value, depth: int = 0) -> bool:
    """Whether value is plain data: what encode_value sends without turning it into a handle."""
    if depth > MAX_NESTING:
        return False
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return True
    if type(value) in (list, tuple):
        return all(is_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and is_plain(v, depth + 1) for k, v in value.items())
    return False


def _encode_tensor(tensor: torch.Tensor, buffers: list) -> dict:
    if tensor.layout != torch.strided or tensor.is_quantized or tensor.device.type not in DEVICES:
        raise NotPlainData(f"a {tensor.layout} tensor on {tensor.device} cannot be sent; use a dense CPU/CUDA tensor")
    if tensor.dtype not in DTYPE_NAMES:
        raise NotPlainData(f"tensor dtype {tensor.dtype} is not one of {', '.join(DTYPES)}")
    # The tensor's own data, whatever its class: no method of a subclass runs, and without autograd.
    # Under the worker's run-time guard every dispatched operation costs a Python call: the bytes
    # are numpy's view (one operation), not a reshape and a view (three).
    plain = tensor.as_subclass(torch.Tensor)
    if plain.requires_grad:
        plain = plain.detach()
    device = plain.device.type
    plain = plain.resolve_conj().resolve_neg().cpu().contiguous()
    data = (plain.view(torch.int16) if plain.dtype == torch.bfloat16 else plain).numpy()  # numpy has no bfloat16
    buffers.append(data.reshape(-1) if data.size else b"")
    return {"$tensor": len(buffers) - 1, "dtype": DTYPE_NAMES[plain.dtype], "shape": list(plain.shape), "device": device}


def decode_value(obj, buffers: list, resolve_ref=None):
    """The value encode_value described. resolve_ref(Ref) maps handles; without it they stay Refs.

    buffers: a frame's Buffers (its account is shared by every value decoded from that frame),
    or a plain list of buffers, then accounted for this value alone. Raises only ProtocolError.
    """
    return _decode(obj, buffers if isinstance(buffers, Buffers) else Buffers(buffers), resolve_ref, 0)


def _decode(obj, buffers: Buffers, resolve_ref, depth: int):
    if depth > MAX_NESTING:
        raise ProtocolError(f"value nested deeper than {MAX_NESTING} levels")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, buffers, resolve_ref, depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) == 0:
        raise ProtocolError(f"unexpected value {obj!r:.80}")
    if "$tuple" in obj and len(obj) == 1 and isinstance(obj["$tuple"], list):
        return tuple(_decode(v, buffers, resolve_ref, depth + 1) for v in obj["$tuple"])
    if "$dict" in obj and len(obj) == 1 and isinstance(obj["$dict"], dict):
        return {k: _decode(v, buffers, resolve_ref, depth + 1) for k, v in obj["$dict"].items()}
    if "$tensor" in obj:
        return _decode_tensor(obj, buffers)
    if "$ref" in obj:
        methods = obj.get("methods", [])
        if not (isinstance(methods, list) and len(methods) <= MAX_METHODS and all(type(m) is str for m in methods)):
            raise ProtocolError("a handle's 'methods' must be a list of at most %d names" % MAX_METHODS)
        ref = Ref(_expect(obj, "$ref", int), _expect(obj, "kind", str), _expect(obj, "type", str)[:200], tuple(methods))
        return resolve_ref(ref) if resolve_ref else ref
    if "$object" in obj and len(obj) == 1:
        return Opaque(_expect(obj, "$object", str)[:200])
    raise ProtocolError(f"unknown tagged value with keys {sorted(obj)[:5]}")


def _decode_tensor(obj: dict, buffers: Buffers) -> torch.Tensor:
    """The tensor obj describes, its metadata checked against the caps before any allocation."""
    index = _expect(obj, "$tensor", int)
    dtype_name, shape, device = obj.get("dtype"), obj.get("shape"), obj.get("device", "cpu")
    if type(dtype_name) is not str or dtype_name not in DTYPES:
        raise ProtocolError(f"tensor dtype {dtype_name!r:.40} is not allowed")
    dtype = DTYPES[dtype_name]
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"bad tensor shape {shape!r:.80}: a list of at most {MAX_NDIM} non-negative integers")
    if device not in DEVICES:
        raise ProtocolError(f"bad tensor device {device!r:.40}")
    numel, extent = 1, dtype.itemsize  # extent: the bytes of the shape with zeros as ones (torch's strides)
    for n in shape:
        numel *= n
        extent *= max(n, 1)
    if extent > MAX_DECODED_BYTES - buffers.decoded:
        after = f", after {buffers.decoded} bytes of other tensors" if buffers.decoded else ""
        raise ProtocolError(
            f"a tensor of shape {tuple(shape)!s:.120} ({dtype_name}) is over the {MAX_DECODED_BYTES >> 20} MiB cap "
            f"of one frame's tensors{after}"
        )
    if not 0 <= index < len(buffers):
        raise ProtocolError(f"tensor refers to missing buffer {index} (the frame has {len(buffers)})")
    if index in buffers.lent:
        raise ProtocolError(f"the frame names buffer {index} for a second tensor; a buffer backs one tensor")
    expected, buffer = numel * dtype.itemsize, buffers[index]
    if len(buffer) != expected:
        raise ProtocolError(f"tensor {dtype_name}{shape} needs {expected} bytes, got {len(buffer)}")
    buffers.lent.add(index)
    buffers.decoded += expected
    data = bytearray(buffer)
    if dtype == torch.bool and data.translate(None, b"\x00\x01"):  # any other byte is no bool at all
        raise ProtocolError(f"a bool tensor of shape {tuple(shape)} holds bytes other than 0 and 1")
    if expected == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:  # one dispatched operation (the view), none for a vector: see _encode_tensor
        tensor = torch.frombuffer(data, dtype=dtype)
        if len(shape) != 1:
            tensor = tensor.view(shape)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ProtocolError("a CUDA tensor arrived but this process has no CUDA device")
        tensor = tensor.cuda()
    return tensor


def _expect(obj: dict, key: str, kind: type):
    value = obj.get(key)
    if type(value) is not kind:
        raise ProtocolError(f"{key!r} must be {kind.__name__}, got {value!r:.40}")
    return value


def type_name(value) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


# --- values at rest (public check bundles) ----------------------------------


def dump_value(value):
    """A self-contained JSON form of plain data: tensor bytes inline, base64."""
    buffers: list = []
    encoded = encode_value(value, buffers)
    return {"value": encoded, "buffers": [base64.b64encode(memoryview(b).cast("B")).decode() for b in buffers]}


def load_value(stored: dict):
    buffers = [memoryview(base64.b64decode(b)) for b in stored["buffers"]]
    return decode_value(stored["value"], buffers)
