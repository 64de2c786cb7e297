"""Pickle-free message framing shared by the grader and the sandbox worker.

This module is copied next to the worker script, so it may import only the
standard library and numpy (never the rest of :mod:`autograder`).

Wire format of one message::

    MAGIC (4 bytes) | header length (8 bytes, big endian) | header (UTF-8 JSON)
    | buffer count (4 bytes) | for each buffer: length (8 bytes) + raw bytes

The JSON header holds a tree of *plain data*. JSON-native values (None, bool,
int, str, finite float, list) are written as themselves; everything else is a
one-key tagged object:

==========  ===================================================================
``$f``      non-finite float: ``"nan"``, ``"inf"`` or ``"-inf"``
``$t``      tuple (list of encoded items)
``$d``      dict with str keys (object of encoded values)
``$b``      bytes: index of a raw buffer
``$a``      numpy array: ``[buffer index, dtype str, shape]`` (C order)
``$s``      numpy scalar: ``[buffer index, dtype str]``
``$r``      reference to a value held by the worker (:class:`Ref`)
``$h``      opaque handle to a non-plain object in the worker: ``[id, type name]``
==========  ===================================================================

Only dtype kinds b, i, u, f and c are accepted. Decoding validates every
length, shape, dtype, the nesting depth and the total size, and never calls
pickle, eval or importlib. Whatever the bytes, reading and decoding a message
raise :class:`ProtocolError` and nothing else (besides :class:`Deadline` and
:class:`ChannelClosed` from the channel): a malformed reply is the sender's
fault, which the grader reports as the student's failed test. Nothing is
allocated in proportion to a size the message claims, only to the bytes that
actually arrived.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"AGP\x01"
MAX_DEPTH = 64
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_BUFFERS = 100_000
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
ALLOWED_KINDS = frozenset("biufc")
_DTYPE_RE = re.compile(r"^[<>|=]?[biufc][0-9]{1,2}$")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


class ProtocolError(Exception):
    """A message is malformed, oversized or contains a forbidden value.

    The only exception decoding raises for bad input: on the grader's side it
    means the worker (the student's code) sent something that is not a valid
    reply.
    """


class _CallbackError(Exception):
    """Wraps an exception raised by a decoder callback, so it passes through unchanged."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class NotPlain(TypeError):
    """A value cannot be encoded as plain data."""


@dataclass(frozen=True)
class Ref:
    """A reference to a value stored in the worker (see ``Sandbox.put``)."""

    id: int


@dataclass(frozen=True)
class Handle:
    """An opaque handle to a non-plain object that stays in the worker."""

    id: int
    type: str


def _check_dtype(dtype_str: Any) -> np.dtype:
    if not isinstance(dtype_str, str) or not _DTYPE_RE.match(dtype_str):
        raise ProtocolError(f"dtype not allowed: {dtype_str!r}")
    try:
        dtype = np.dtype(dtype_str)
    except TypeError as exc:
        raise ProtocolError(f"bad dtype {dtype_str!r}") from exc
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject:
        raise ProtocolError(f"dtype kind not allowed: {dtype_str!r}")
    return dtype


class _Encoder:
    def __init__(self, hook: Callable[[Any], Any] | None, max_depth: int) -> None:
        self.hook = hook
        self.max_depth = max_depth
        self.buffers: list[bytes | memoryview] = []

    def buffer(self, data: bytes | memoryview) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def enc(self, x: Any, depth: int) -> Any:
        if depth > self.max_depth:
            raise NotPlain(f"nesting deeper than {self.max_depth}")
        if x is None or isinstance(x, bool) and type(x) is bool:
            return x
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in ALLOWED_KINDS or x.dtype.hasobject or type(x) is not np.ndarray:
                return self.unknown(x, depth)
            arr = x if x.flags.c_contiguous else x.copy(order="C")
            idx = self.buffer(memoryview(arr).cast("B") if arr.size else b"")
            return {"$a": [idx, arr.dtype.str, list(arr.shape)]}
        if isinstance(x, np.generic):
            if x.dtype.kind not in ALLOWED_KINDS:
                return self.unknown(x, depth)
            return {"$s": [self.buffer(np.asarray(x).tobytes()), x.dtype.str]}
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            v = float(x)
            if math.isfinite(v):
                return v
            return {"$f": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
        if isinstance(x, str):
            return str(x)
        if isinstance(x, (bytes, bytearray)):
            return {"$b": self.buffer(bytes(x))}
        if isinstance(x, Ref):
            return {"$r": int(x.id)}
        if isinstance(x, Handle):
            return {"$h": [int(x.id), str(x.type)]}
        if isinstance(x, list):
            return [self.enc(v, depth + 1) for v in x]
        if isinstance(x, tuple):
            return {"$t": [self.enc(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            if not all(type(k) is str for k in x):
                return self.unknown(x, depth)
            return {"$d": {k: self.enc(v, depth + 1) for k, v in x.items()}}
        return self.unknown(x, depth)

    def unknown(self, x: Any, depth: int) -> Any:
        if self.hook is None:
            raise NotPlain(f"cannot send a value of type {type(x).__name__}")
        replacement = self.hook(x)
        if isinstance(replacement, (Ref, Handle)):
            return self.enc(replacement, depth)
        raise NotPlain(f"cannot send a value of type {type(x).__name__}")


def encode(
    value: Any, hook: Callable[[Any], Any] | None = None, max_depth: int = MAX_DEPTH
) -> bytes:
    """Encode ``value`` into one framed message.

    ``hook`` is called with every non-plain object and must return a
    :class:`Ref` or :class:`Handle` standing for it (the worker uses it to keep
    objects in its handle table); without a hook such values raise
    :class:`NotPlain`.
    """
    enc = _Encoder(hook, max_depth)
    tree = enc.enc(value, 0)
    header = json.dumps(tree, allow_nan=False, separators=(",", ":")).encode("utf-8")
    parts: list[bytes | memoryview] = [MAGIC, _U64.pack(len(header)), header]
    parts.append(_U32.pack(len(enc.buffers)))
    for buf in enc.buffers:
        parts.append(_U64.pack(len(buf) if isinstance(buf, bytes) else buf.nbytes))
        parts.append(buf)
    return b"".join(parts)


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"JSON constant {name} not allowed")


class _Decoder:
    def __init__(
        self,
        buffers: list[bytearray],
        handle_factory: Callable[[Handle], Any] | None,
        ref_resolver: Callable[[Ref], Any] | None,
        max_depth: int,
    ) -> None:
        self.buffers = buffers
        self.handle_factory = handle_factory
        self.ref_resolver = ref_resolver
        self.max_depth = max_depth

    @staticmethod
    def callback(fn: Callable[[Any], Any], arg: Any) -> Any:
        try:
            return fn(arg)
        except Exception as exc:
            raise _CallbackError(exc) from exc

    def buf(self, idx: Any) -> bytearray:
        if type(idx) is not int or not 0 <= idx < len(self.buffers):
            raise ProtocolError(f"bad buffer index {idx!r}")
        return self.buffers[idx]

    def dec(self, x: Any, depth: int) -> Any:
        if depth > self.max_depth:
            raise ProtocolError(f"nesting deeper than {self.max_depth}")
        if x is None or type(x) in (bool, int, float, str):
            return x
        if type(x) is list:
            return [self.dec(v, depth + 1) for v in x]
        if type(x) is not dict or len(x) != 1:
            raise ProtocolError("malformed value in header")
        ((tag, body),) = x.items()
        if tag == "$f":
            if body not in ("nan", "inf", "-inf"):
                raise ProtocolError(f"bad float {body!r}")
            return float(body)
        if tag == "$t":
            if type(body) is not list:
                raise ProtocolError("malformed tuple")
            return tuple(self.dec(v, depth + 1) for v in body)
        if tag == "$d":
            if type(body) is not dict:
                raise ProtocolError("malformed dict")
            return {k: self.dec(v, depth + 1) for k, v in body.items()}
        if tag == "$b":
            return bytes(self.buf(body))
        if tag == "$a":
            if type(body) is not list or len(body) != 3:
                raise ProtocolError("malformed array")
            idx, dtype_str, shape = body
            dtype = _check_dtype(dtype_str)
            if type(shape) is not list or len(shape) > 32:
                raise ProtocolError("malformed array shape")
            if not all(type(s) is int and s >= 0 for s in shape):
                raise ProtocolError(f"bad array shape {str(shape)[:200]}")
            # Even an empty array must have a shape numpy can represent (strides in
            # bytes fit an int64): dimensions beside a zero are bounded too.
            if math.prod(max(s, 1) for s in shape) * dtype.itemsize > MAX_TOTAL_BYTES:
                raise ProtocolError(f"array shape {str(shape)[:200]} is absurdly large")
            data = self.buf(idx)
            count = math.prod(shape)
            if count * dtype.itemsize != len(data):
                raise ProtocolError(
                    f"array buffer holds {len(data)} bytes, shape {shape} of {dtype_str} "
                    f"needs {count * dtype.itemsize}"
                )
            if count == 0:
                return np.zeros(shape, dtype=dtype)
            return np.frombuffer(data, dtype=dtype).reshape(shape)
        if tag == "$s":
            if type(body) is not list or len(body) != 2:
                raise ProtocolError("malformed scalar")
            dtype = _check_dtype(body[1])
            data = self.buf(body[0])
            if len(data) != dtype.itemsize:
                raise ProtocolError("scalar buffer has the wrong size")
            return np.frombuffer(data, dtype=dtype)[0]
        if tag == "$r":
            if type(body) is not int:
                raise ProtocolError("malformed reference")
            ref = Ref(body)
            return self.callback(self.ref_resolver, ref) if self.ref_resolver else ref
        if tag == "$h":
            if type(body) is not list or len(body) != 2:
                raise ProtocolError("malformed handle")
            if type(body[0]) is not int or type(body[1]) is not str:
                raise ProtocolError("malformed handle")
            handle = Handle(body[0], body[1][:200])
            return self.callback(self.handle_factory, handle) if self.handle_factory else handle
        raise ProtocolError(f"unknown tag {tag!r}")


def decode_parts(
    header: bytes,
    buffers: list[bytearray],
    *,
    handle_factory: Callable[[Handle], Any] | None = None,
    ref_resolver: Callable[[Ref], Any] | None = None,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Decode a header and its raw buffers (already split) into plain data."""
    try:
        tree = json.loads(header.decode("utf-8"), parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"bad header: {type(exc).__name__}") from exc
    except MemoryError as exc:
        raise ProtocolError("header too large to parse") from exc
    try:
        return _Decoder(buffers, handle_factory, ref_resolver, max_depth).dec(tree, 0)
    except _CallbackError as exc:
        raise exc.original from None
    except ProtocolError:
        raise
    except RecursionError as exc:
        raise ProtocolError("nesting too deep") from exc
    except (ValueError, TypeError, OverflowError, MemoryError, IndexError, KeyError) as exc:
        # Every check above is meant to come first; this keeps any case they miss
        # the sender's fault (a malformed message), not a crash of the reader.
        raise ProtocolError(f"malformed value ({type(exc).__name__}: {str(exc)[:200]})") from exc


def decode(
    data: bytes,
    *,
    handle_factory: Callable[[Handle], Any] | None = None,
    ref_resolver: Callable[[Ref], Any] | None = None,
    max_total: int = MAX_TOTAL_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Decode one complete message held in memory (used by tests and tools)."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise ProtocolError("message truncated")
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    header, buffers = _read_frame(take, max_total)
    if pos != len(data):
        raise ProtocolError("trailing bytes after message")
    return decode_parts(
        header,
        [bytearray(b) for b in buffers],
        handle_factory=handle_factory,
        ref_resolver=ref_resolver,
        max_depth=max_depth,
    )


def _read_frame(take: Callable[[int], Any], max_total: int) -> tuple[bytes, list[Any]]:
    if take(4) != MAGIC:
        raise ProtocolError("bad magic (not an autograder protocol message)")
    (hlen,) = _U64.unpack(take(8))
    if hlen > min(MAX_HEADER_BYTES, max_total):
        raise ProtocolError(f"header of {hlen} bytes is too large")
    total = hlen
    header = bytes(take(hlen))
    (nbuf,) = _U32.unpack(take(4))
    if nbuf > MAX_BUFFERS:
        raise ProtocolError(f"too many buffers ({nbuf})")
    buffers = []
    for _ in range(nbuf):
        (blen,) = _U64.unpack(take(8))
        total += blen
        if total > max_total:
            raise ProtocolError(f"message larger than the limit of {max_total} bytes")
        buffers.append(take(blen))
    return header, buffers


class Deadline(Exception):
    """Reading or writing a channel ran past its deadline."""


class ChannelClosed(Exception):
    """The other end of a channel went away (EOF or broken pipe)."""


def _wait(fd: int, events: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(max(0, int(timeout_s * 1000) + 1)))


_GROW = 1 << 20  # buffers grow with the data that has arrived, never to an announced size


def _read_exact(fd: int, n: int, deadline: float | None) -> bytearray:
    """Read exactly ``n`` bytes. Memory follows what arrives, not what was announced:
    a peer that announces a huge buffer and sends nothing costs at most 1 MB."""
    out = bytearray(min(n, _GROW))
    got = 0
    while got < n:
        if got == len(out):
            out += bytes(min(n - got, max(len(out), _GROW)))  # at most doubles
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline()
            if not _wait(fd, select.POLLIN, remaining):
                raise Deadline()
        with memoryview(out) as view:
            try:
                k = os.readv(fd, [view[got:]])
            except InterruptedError:
                continue
        if k == 0:
            raise ChannelClosed("end of file")
        got += k
    return out


def read_message(
    fd: int, deadline: float | None = None, max_total: int = MAX_TOTAL_BYTES
) -> tuple[bytes, list[bytearray]]:
    """Read one framed message from ``fd``; returns (header, buffers).

    ``deadline`` is a ``time.monotonic()`` value; raises :class:`Deadline`,
    :class:`ChannelClosed` or :class:`ProtocolError`.
    """
    header, buffers = _read_frame(lambda n: _read_exact(fd, n, deadline), max_total)
    return header, buffers


def write_message(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write one encoded message to ``fd`` (blocking, or polling up to ``deadline``)."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline()
            if not _wait(fd, select.POLLOUT, remaining):
                raise Deadline()
        try:
            k = os.write(fd, view[: 1 << 20])
        except BlockingIOError:
            continue
        except InterruptedError:
            continue
        except BrokenPipeError as exc:
            raise ChannelClosed("broken pipe") from exc
        view = view[k:]
