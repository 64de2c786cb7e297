"""The worker's request loop: answers the grader's requests with student code.

Runs in the worker process (copied next to it as ``_autograder_handler.py``,
imported by ``_autograder_worker.py`` once the process is confined). Imports
only the standard library at import time; numpy and the protocol module load
in :func:`load_runtime`, after confinement.

Requests are dicts with an ``op``:

- ``ping``: answers ``"pong"``.
- ``info``: what the worker achieved at start (confinement).
- ``call``: ``target`` (``{"path": "layers.affine_forward"}`` relative to the
  library, or ``{"ref": id, "attrs": [...]}``), ``args``, ``kwargs`` or
  ``argref`` (the id of a stored ``[args, kwargs]``), optional ``store`` (keep
  the result in the table and answer a reference).
- ``get`` / ``set`` (with ``value``): an attribute (or the object itself);
  ``get`` may list table ids to ``release`` once the value is fetched.
- ``put``: store ``value`` and answer its reference id.
- ``release``: forget the table entries listed in ``ids``.
- ``build``: compile the library's Cython sources (``_autograder_extensions.py``).

Answers: ``{"status": "ok", "value": ...}`` or ``{"status": "error", "type",
"message", "traceback"}`` (only frames inside the submission directory).
"""

from __future__ import annotations

import io
import itertools
import os
import sys
import traceback
from typing import Any

# Loaded by :func:`load_runtime`, once the worker is confined.
np: Any = None
protocol: Any = None


def load_runtime() -> None:
    """Import numpy and the protocol module (after confinement)."""
    global np, protocol
    import _autograder_protocol as proto  # type: ignore[import-not-found]  # copied here
    import numpy

    # numpy submodules that load lazily: import them now.
    for name in ("numpy.linalg", "numpy.fft", "numpy.random", "numpy.polynomial"):
        try:
            __import__(name)
        except ImportError:  # pragma: no cover - depends on the numpy build
            pass
    np, protocol = numpy, proto


MAX_MESSAGE = 2000
MAX_FRAMES = 12
STDOUT_CAP = 8 * 1024 * 1024
_HERE = os.path.dirname(os.path.abspath(__file__))  # the folder of the copied helpers


class CappedWriter(io.TextIOBase):
    """A text stream that writes to an fd and silently drops output past a cap."""

    def __init__(self, fd: int, cap: int) -> None:
        self._fd = fd
        self._left = cap

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._left > 0:
            data = s.encode("utf-8", "replace")[: self._left]
            self._left -= len(data)
            try:
                os.write(self._fd, data)
            except OSError:
                self._left = 0
        return len(s)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


class Worker:
    """The request loop and the handle table."""

    def __init__(self, req_fd: int, resp_fd: int, root: str, library: str,
                 info: dict[str, Any] | None = None, ext: str | None = None) -> None:
        self.info = dict(info or {})
        self.req_fd = req_fd
        self.resp_fd = resp_fd
        self.root = os.path.realpath(root)
        # folders whose frames a traceback shows: the submission and its compiled copy
        self.roots = [self.root] + ([os.path.realpath(ext)] if ext else [])
        self.library = library
        self.table: dict[int, Any] = {}
        self.ids = itertools.count(1)

    # -- table -------------------------------------------------------------
    def store(self, obj: Any) -> int:
        key = next(self.ids)
        self.table[key] = obj
        return key

    def make_handle(self, obj: Any) -> protocol.Handle:
        try:
            name = type(obj).__name__
            name = name if isinstance(name, str) else "object"
        except BaseException:
            name = "object"
        return protocol.Handle(self.store(obj), name)

    def resolve_ref(self, ref: protocol.Ref) -> Any:
        if ref.id not in self.table:
            raise LookupError(f"unknown reference {ref.id}")
        return self.table[ref.id]

    # -- targets -----------------------------------------------------------
    def import_library(self) -> Any:
        import importlib

        return importlib.import_module(self.library)

    def resolve_path(self, path: str) -> Any:
        import importlib

        parts = [p for p in path.split(".") if p]
        obj = self.import_library()
        modname = self.library
        for i, part in enumerate(parts):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                if not isinstance(obj, type(sys)):
                    raise
                try:
                    obj = importlib.import_module(f"{modname}.{part}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{modname}.{part}":
                        raise
                    raise AttributeError(
                        f"{'.'.join([self.library, *parts[:i]])} has no attribute {part!r}"
                    ) from None
            if isinstance(obj, type(sys)):
                modname = obj.__name__
        return obj

    def resolve_target(self, target: Any, drop_last: bool = False) -> tuple[Any, str | None]:
        if not isinstance(target, dict):
            raise ValueError("bad target")
        if "path" in target:
            parts = str(target["path"]).split(".")
            if drop_last:
                return self.resolve_path(".".join(parts[:-1])), parts[-1]
            return self.resolve_path(target["path"]), None
        obj = self.resolve_ref(protocol.Ref(int(target["ref"])))
        attrs = list(target.get("attrs", []))
        last = None
        if drop_last:
            if not attrs:
                raise ValueError("cannot assign to the object itself")
            last = attrs.pop()
        for name in attrs:
            obj = getattr(obj, name)
        return obj, last

    # -- requests ----------------------------------------------------------
    def handle(self, req: Any) -> Any:
        op = req.get("op") if isinstance(req, dict) else None
        if op == "ping":
            return "pong"
        if op == "info":
            return self.info
        if op == "call":
            fn, _ = self.resolve_target(req["target"])
            if "argref" in req:  # the arguments were stored first: [args, kwargs]
                args, kwargs = self.resolve_ref(protocol.Ref(int(req["argref"])))
                result = fn(*args, **kwargs)
            else:
                result = fn(*req.get("args", []), **req.get("kwargs", {}))
            if req.get("store"):
                return protocol.Ref(self.store(result))
            return result
        if op == "get":
            obj, _ = self.resolve_target(req["target"])
            for key in req.get("release", []):  # fetched and forgotten in one request
                self.table.pop(key, None)
            return obj
        if op == "set":
            parent, name = self.resolve_target(req["target"], drop_last=True)
            setattr(parent, name, req["value"])
            return None
        if op == "put":
            return protocol.Ref(self.store(req["value"]))
        if op == "release":
            for key in req.get("ids", []):
                self.table.pop(key, None)
            return None
        if op == "build":
            return self.build(req)
        raise ValueError(f"unknown request {op!r}")

    def build(self, req: dict[str, Any]) -> dict[str, Any]:
        """Compile the library's Cython ``sources`` into ``ext/`` of the working folder.

        Asked of a worker started for the build only, before any student code
        of the submission runs: the package is copied (sources only) and
        compiled in a child process (``_autograder_extensions.py``). The
        answer is for the log; the grader judges the build from the files it
        finds once this worker and all it started are gone.
        """
        import importlib.util

        sources = [str(s) for s in req.get("sources", [])]
        spec = importlib.util.spec_from_file_location(
            "_autograder_extensions", os.path.join(_HERE, "_autograder_extensions.py"))
        builder = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["_autograder_extensions"] = builder  # its dataclasses look it up
        spec.loader.exec_module(builder)  # type: ignore[union-attr]
        result = builder.run_build(self.root, self.library, sources,
                                   os.path.join(os.getcwd(), "ext"),
                                   float(req.get("timeout", 180)))
        return {"ok": bool(result.get("ok")), "log": str(result.get("log", "")),
                "seconds": float(result.get("seconds", 0.0))}

    def error_reply(self, exc: BaseException) -> dict[str, Any]:
        try:
            name = type(exc).__name__
        except BaseException:
            name = "BaseException"
        try:
            message = str(exc)
        except BaseException:
            message = "<the exception could not be printed>"
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + " ...(truncated)"
        frames = []
        try:
            for fs in traceback.extract_tb(exc.__traceback__):
                filename = os.path.realpath(fs.filename)
                base = next((r for r in self.roots if filename.startswith(r + os.sep)), None)
                if base is not None:
                    rel = os.path.relpath(filename, base)
                    frames.append(f"{rel}:{fs.lineno} in {fs.name}: {(fs.line or '').strip()}"[:300])
        except BaseException:
            frames = []
        return {
            "status": "error",
            "type": str(name)[:200],
            "message": message,
            "traceback": frames[-MAX_FRAMES:],
        }

    def reply(self, msg: dict[str, Any]) -> None:
        try:
            data = protocol.encode(msg, hook=self.make_handle)
        except BaseException as exc:  # e.g. a value nested too deeply
            if msg.get("status") == "ok":
                try:
                    data = protocol.encode(
                        {"status": "ok", "value": self.make_handle(msg.get("value"))}
                    )
                except BaseException:
                    data = protocol.encode(self.error_reply(exc))
            else:
                data = protocol.encode(self.error_reply(exc))
        protocol.write_message(self.resp_fd, data)

    def serve(self) -> None:
        while True:
            try:
                header, buffers = protocol.read_message(self.req_fd)
            except protocol.ChannelClosed:
                return
            try:
                req = protocol.decode_parts(header, buffers, ref_resolver=self.resolve_ref)
                value = self.handle(req)
                msg: dict[str, Any] = {"status": "ok", "value": value}
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                msg = self.error_reply(exc)
            finally:
                req = None
            try:
                self.reply(msg)
            except protocol.ChannelClosed:
                return
            msg = {}
