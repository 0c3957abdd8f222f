"""The frames the runtime and a worker exchange over their dedicated pipes.

A frame is ``u32 body length | u32 JSON length`` (little-endian), the JSON message, zero padding to a
multiple of 8, then the raw buffers (each padded to 8). In the JSON a numeric array is
``{"$nd": [dtype, shape, offset, nbytes]}``: numpy's little-endian dtype string (``<f8``, ``<i8``, ``|u1``),
its shape, and where its bytes start in the buffer region. The runtime (runtime/engines/python/wire.ts)
reads the same layout into typed arrays.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None  # type: ignore[assignment]

HEADER = struct.Struct("<II")
ND = "$nd"
# numpy dtype → struct format, for environments without numpy.
_FORMATS = {"f8": "d", "f4": "f", "i8": "q", "i4": "i", "i2": "h", "i1": "b", "u8": "Q", "u4": "I", "u2": "H", "u1": "B", "b1": "?"}


def _pad(n: int) -> int:
    return (8 - n % 8) % 8


class _Encoder:
    __slots__ = ("buffers", "size")

    def __init__(self) -> None:
        self.buffers: list[bytes | memoryview] = []
        self.size = 0

    def default(self, value: Any) -> Any:
        if _np is not None:
            if isinstance(value, _np.ndarray):
                if value.dtype.kind not in "biuf":
                    return value.tolist()
                if value.dtype.byteorder == ">":
                    value = value.astype(value.dtype.newbyteorder("<"))
                value = _np.ascontiguousarray(value)
                data = memoryview(value).cast("B")
                offset = self.size
                self.buffers.append(data)
                pad = _pad(data.nbytes)
                if pad:
                    self.buffers.append(b"\0" * pad)
                self.size += data.nbytes + pad
                return {ND: [value.dtype.str, list(value.shape), offset, data.nbytes]}
            if isinstance(value, _np.generic):
                return value.item()
        raise TypeError(f"{type(value).__name__} cannot be sent")


def encode(message: Any) -> list[bytes | memoryview]:
    """A message → the list of byte chunks of one frame (written with one writev)."""
    enc = _Encoder()
    text = json.dumps(message, separators=(",", ":"), allow_nan=False, default=enc.default).encode("utf-8")
    if not enc.buffers:
        return [HEADER.pack(len(text), len(text)), text]
    pad = _pad(len(text))
    chunks: list[bytes | memoryview] = [HEADER.pack(len(text) + pad + enc.size, len(text)), text]
    if pad:
        chunks.append(b"\0" * pad)
    chunks.extend(enc.buffers)
    return chunks


class FrameError(ValueError):
    """A whole frame was read but its message cannot be decoded. The stream is still in step: that one request
    fails (the worker answers it with an error), the next frame is read as usual."""


def _is_count(v: object) -> bool:
    return type(v) is int and v >= 0


def _array(spec: Any, region: memoryview) -> Any:
    """A marker's array, checked against the frame before any byte is read."""
    ok = isinstance(spec, list) and len(spec) == 4
    if ok:
        dtype, shape, offset, nbytes = spec
        ok = (
            isinstance(dtype, str)
            and len(dtype) == 3
            and dtype[0] in "<|"
            and dtype[1:] in _FORMATS
            and isinstance(shape, list)
            and all(_is_count(n) for n in shape)
            and _is_count(offset)
            and _is_count(nbytes)
            and offset % 8 == 0
            and offset + nbytes <= len(region)
        )
    if ok:
        count = 1
        for n in shape:
            count *= n
        ok = count * int(dtype[2:]) == nbytes
    if not ok:
        raise ValueError(f"bad array marker {json.dumps(spec)[:200]}")
    raw = region[offset : offset + nbytes]
    if _np is not None:
        return _np.frombuffer(raw, dtype=_np.dtype(dtype)).reshape(shape)
    return raw.cast(_FORMATS[dtype[1:]]).tolist()


def decode(body: bytes, json_len: int) -> Any:
    """One frame's body → the message; arrays become numpy arrays (or lists without numpy). Raises ValueError
    (a bad array marker) or whatever json raises (RecursionError for nesting deeper than the interpreter's limit)."""
    text = bytes(body[:json_len])
    if json_len == len(body):
        return json.loads(text)
    region = memoryview(body)[json_len + _pad(json_len):]

    def hook(obj: dict[str, Any]) -> Any:
        spec = obj.get(ND)
        if spec is None or len(obj) != 1:
            return obj
        return _array(spec, region)

    return json.loads(text, object_hook=hook)


class Channel:
    """Reads frames from one file descriptor and writes frames to another."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self._r = os.fdopen(rfd, "rb", buffering=1 << 16)
        self._w = wfd

    def read(self) -> Any:
        """The next message; None at the end of the stream; FrameError for a frame read whole but not decodable."""
        head = self._r.read(HEADER.size)
        if len(head) < HEADER.size:
            return None
        body_len, json_len = HEADER.unpack(head)
        body = self._r.read(body_len)
        if len(body) < body_len:
            return None
        try:
            return decode(body, json_len)
        except Exception as err:
            raise FrameError(f"{type(err).__name__}: {err}") from None

    def write(self, message: Any) -> None:
        chunks = encode(message)
        total = sum(len(c) for c in chunks)
        written = os.writev(self._w, chunks)
        if written < total:  # a pipe took part of it: write the rest in order
            rest = b"".join(bytes(c) for c in chunks)[written:]
            while rest:
                rest = rest[os.write(self._w, rest) :]
