"""The wire format between the grader and a worker, and the value codec.

A frame is a 4-byte big-endian length, that many bytes of UTF-8 JSON (the
header), then the raw buffers the header lists under "buffers" (their byte
lengths), back to back. Nothing is ever unpickled or evaluated: values travel
as tagged JSON plus raw tensor bytes whose dtype comes from an allow-list and
whose size must match its shape exactly.

This module is imported inside the sandbox, so it uses only the standard
library and torch.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field

import torch

MAX_HEADER_BYTES = 1 << 20
MAX_BUFFERS = 4096
MAX_PAYLOAD_BYTES = 256 << 20
MAX_NESTING = 32
MAX_NDIM = 16
MAX_METHODS = 256

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


@dataclass
class Frame:
    header: dict
    buffers: list[memoryview]
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

    def feed(self, data: bytes) -> list[Frame]:
        self._pending += data
        frames = []
        while (frame := self._cut()) is not None:
            frames.append(frame)
        return frames

    def _cut(self) -> Frame | None:
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
        if sum(sizes) > self.max_payload:
            raise ProtocolError(f"payload of {sum(sizes)} bytes exceeds the cap of {self.max_payload}")
        end = 4 + header_len + sum(sizes)
        if len(self._pending) < end:
            return None
        raw = bytes(self._pending[:end])
        del self._pending[:end]
        view, offset, buffers = memoryview(raw), 4 + header_len, []
        for n in sizes:
            buffers.append(view[offset : offset + n])
            offset += n
        return Frame(header, buffers, raw)


def _parse_header(body: bytes) -> dict:
    try:
        header = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    return header


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
    raise NotPlainData(f"an object of type {_type_name(value)!r} is not plain data")


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
    plain = tensor.detach().as_subclass(torch.Tensor)
    device = plain.device.type
    plain = plain.resolve_conj().resolve_neg().cpu().contiguous()
    buffers.append(plain.reshape(-1).view(torch.uint8).numpy())
    return {"$tensor": len(buffers) - 1, "dtype": DTYPE_NAMES[plain.dtype], "shape": list(plain.shape), "device": device}


def decode_value(obj, buffers: list, resolve_ref=None, depth: int = 0):
    """The value encode_value described. resolve_ref(Ref) maps handles; without it they stay Refs."""
    if depth > MAX_NESTING:
        raise ProtocolError(f"value nested deeper than {MAX_NESTING} levels")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode_value(v, buffers, resolve_ref, depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) == 0:
        raise ProtocolError(f"unexpected value {obj!r:.80}")
    if "$tuple" in obj and len(obj) == 1 and isinstance(obj["$tuple"], list):
        return tuple(decode_value(v, buffers, resolve_ref, depth + 1) for v in obj["$tuple"])
    if "$dict" in obj and len(obj) == 1 and isinstance(obj["$dict"], dict):
        return {k: decode_value(v, buffers, resolve_ref, depth + 1) for k, v in obj["$dict"].items()}
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


def _decode_tensor(obj: dict, buffers: list) -> torch.Tensor:
    index = _expect(obj, "$tensor", int)
    dtype = DTYPES.get(obj.get("dtype"))
    shape = obj.get("shape")
    device = obj.get("device", "cpu")
    if dtype is None:
        raise ProtocolError(f"tensor dtype {obj.get('dtype')!r:.40} is not allowed")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"bad tensor shape {shape!r:.80}")
    if device not in DEVICES:
        raise ProtocolError(f"bad tensor device {device!r:.40}")
    if not 0 <= index < len(buffers):
        raise ProtocolError(f"tensor refers to missing buffer {index}")
    numel = 1
    for n in shape:
        numel *= n
    expected = numel * dtype.itemsize
    buffer = buffers[index]
    if len(buffer) != expected:
        raise ProtocolError(f"tensor {obj['dtype']}{shape} needs {expected} bytes, got {len(buffer)}")
    if expected == 0:
        tensor = torch.empty(shape, dtype=dtype)
    else:
        tensor = torch.frombuffer(bytearray(buffer), dtype=torch.uint8).view(dtype).reshape(shape)
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


def _type_name(value) -> str:
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
