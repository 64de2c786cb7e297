"""Grader side of the sandbox: start a worker, call student code, time it.

Student code only ever runs in the worker process. The grader sends requests
over a private pipe in the pickle-free :mod:`autograder.sandbox.protocol`
format and gets back plain data or opaque handles
(:class:`~autograder.sandbox.remote.RemoteObject`). Whether workers are
confined is decided here, once per interpreter and user
(:func:`isolation_available`, :func:`resolve_isolation`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autograder.config import (
    DEFAULT_FSIZE_LIMIT_MB,
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIMEOUT,
)
from autograder.sandbox import protocol, timing
from autograder.sandbox.errors import MalformedReply, StudentError, WorkerDied, death_reason
from autograder.sandbox.launch import DEFAULT_NPROC_LIMIT, Launch, confined_note, containment_note
from autograder.sandbox.protocol import Ref
from autograder.sandbox.reaping import kill_namespace, remove_leftovers, remove_scratch
from autograder.sandbox.remote import RemoteObject, RemotePath, to_wire
from autograder.sandbox.timing import Timing

if TYPE_CHECKING:  # annotations only: the zygote module imports this one
    from autograder.sandbox.zygote import ForkedWorker, Zygote

__all__ = ["Sandbox", "Timing", "isolation_available", "resolve_isolation"]

MAX_REPLY_BYTES = 1024 * 1024 * 1024
_PROBES: dict[tuple[str, str | None], tuple[bool, str]] = {}  # (python, user) -> verdict


def isolation_available(python: str, user: str | None = None) -> tuple[bool, str]:
    """Can workers be confined here? Returns ``(ok, note)`` for the report.

    Confinement needs root and Linux namespaces: the worker enters a private
    mount and network namespace, hides the course and the grader, and drops
    to an unprivileged uid (``user`` if given, else a uid of its own). Probed
    once per interpreter and user by starting a confined worker that imports
    numpy.
    """
    if os.geteuid() != 0:
        return False, ("the grader is not root, so the worker runs as the grader's own "
                       "user and could read files that user can read")
    key = (python, user)
    if key not in _PROBES:
        probe_root = Path(tempfile.mkdtemp(prefix="ag-probe-"))
        try:
            os.chmod(probe_root, 0o755)
            (probe_root / "_agprobe").mkdir()
            (probe_root / "_agprobe" / "__init__.py").write_text("")
            os.chmod(probe_root / "_agprobe", 0o755)
            os.chmod(probe_root / "_agprobe" / "__init__.py", 0o644)
            sb = Sandbox(probe_root, "_agprobe", timeout=60, sandbox_user=user, python=python,
                         isolate=True, start=False)
            try:
                sb.start()
                info = sb.info()
                ok = bool(info.get("isolated"))
                detail = str(info.get("error") or "")
            except (WorkerDied, StudentError, OSError, KeyError) as exc:
                ok, detail = False, f"{exc}; worker output: {sb.output_tail(300).strip()}"
            finally:
                sb.close()
        finally:
            shutil.rmtree(probe_root, ignore_errors=True)
        note = (confined_note(user) if ok else
                f"confinement failed ({detail}); the worker runs as root")
        _PROBES[key] = (ok, note)
    return _PROBES[key]


def resolve_isolation(isolate: bool | None, python: str, user: str | None) -> tuple[bool, str]:
    """``(confine, note)`` for a worker asked to be confined (``True``), not (``False``)
    or when possible (``None``: :func:`isolation_available` decides)."""
    if isolate is None:
        return isolation_available(python, user)
    if not isolate:
        return False, "confinement was turned off"
    return True, confined_note(user)


class Sandbox:
    """One worker process running student code, as a context manager.

    Parameters: ``submission_root`` (directory holding the library package),
    ``library`` (package name), ``seed``, ``timeout`` (seconds per request),
    ``memory_limit_mb`` (RLIMIT_AS), ``fsize_limit_mb``, ``nproc_limit``
    (processes and threads of the worker's uid, when confined), ``sandbox_user``
    (the user a confined worker runs as; default a uid of its own), ``python``
    (worker interpreter), ``hide`` (extra paths the worker must not see, e.g.
    the course root), ``keep`` (paths under them it may still read),
    ``isolate`` (``None``: confine when :func:`isolation_available`; ``True``:
    confine or fail; ``False``: never), ``zygote`` (a :class:`Zygote` of the
    same submission to fork the worker from, instead of starting a new
    interpreter: the limits and confinement are then the zygote's), ``ext_dir``
    (the grader's compiled package, read-only, first on ``sys.path``). After
    :meth:`start`, ``isolated`` tells whether the worker is confined, and
    ``isolation_note`` why (not)."""

    def __init__(
        self,
        submission_root: str | os.PathLike[str],
        library: str,
        *,
        seed: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        fsize_limit_mb: int = DEFAULT_FSIZE_LIMIT_MB,
        sandbox_user: str | None = None,
        python: str | None = None,
        hide: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...] = (),
        keep: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...] = (),
        isolate: bool | None = None,
        nproc_limit: int = DEFAULT_NPROC_LIMIT,
        zygote: Zygote | None = None,
        ext_dir: str | os.PathLike[str] | None = None,
        start: bool = True,
    ) -> None:
        self.submission_root = Path(submission_root).resolve()
        self.library = library
        self.seed = int(seed) % (2**32)
        self.timeout = float(timeout)
        self.memory_limit_mb = memory_limit_mb
        self.fsize_limit_mb = fsize_limit_mb
        self.sandbox_user = sandbox_user
        self.python = python or sys.executable
        self.hide = [str(p) for p in hide]
        self.keep = [str(p) for p in keep]
        self.isolate = isolate
        self.nproc_limit = nproc_limit
        self.zygote = zygote
        self.ext_dir = None if ext_dir is None else str(ext_dir)  # the compiled package
        self.isolated = False
        self.isolation_note = "worker not started"
        self.work_dir: Path | None = None  # a worker started on its own: its working folder
        self.lib = RemotePath(self, {"path": ""})
        self.startup_s = 0.0
        self.busy_s = 0.0  # seconds spent waiting on the worker (student code and transfers)
        self.close_s = 0.0
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | ForkedWorker | None = None
        self._req_fd: int | None = None
        self._resp_fd: int | None = None
        self._scratch: Path | None = None
        self._uid: int | None = None
        self._leased = self._pid_namespace = False  # a leased uid; a PID namespace of its own
        self._dead: str | None = None
        self._tag = os.urandom(8).hex()
        self._stopwatch: timing.Stopwatch | None = None  # running while timeit times a call
        self._timed_inputs: set[bytes] = set()  # digests of every timed call's arguments
        self._moved = 0  # bytes the last request sent and received
        if start:
            self.start()

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start the worker process (idempotent): forked by ``zygote`` or a new process."""
        if self._proc is not None:
            return
        t0 = time.perf_counter()
        if self.zygote is not None:
            self._start_from_zygote(self.zygote)
            self.startup_s = time.perf_counter() - t0
            return
        confine, note = resolve_isolation(self.isolate, self.python, self.sandbox_user)
        launch = Launch.prepare(self, mode="worker", confine=confine, note=note)
        self._scratch, self.work_dir = launch.scratch, launch.work
        self.log_path = launch.scratch / "output.log"
        self.isolation_note = launch.note
        self._uid, self._leased = (launch.uid, launch.leased) if launch.confine else (None, False)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            self._proc = launch.popen({"req_fd": req_r, "resp_fd": resp_w, "seed": self.seed},
                                      (req_r, resp_w), self._tag)
        finally:
            os.close(req_r)
            os.close(resp_w)
        self._req_fd = req_w
        self._resp_fd = resp_r
        os.set_blocking(req_w, False)
        if launch.confine:
            try:  # no student code has run yet: a death here is the grader's problem
                info = self.info(timeout=max(self.timeout, 30.0))
            except WorkerDied as exc:
                tail = self.output_tail(500).strip().splitlines()
                self.close()
                raise WorkerDied(f"the grader could not confine the worker ({exc.reason})"
                                 + (f": {tail[-1]}" if tail else ""), internal=True) from None
            self.isolated = bool(info.get("isolated"))
            if not self.isolated:
                self.isolation_note = f"confinement failed: {info.get('error')}"
            else:
                self.isolation_note += containment_note(info)
                self._pid_namespace = bool(info.get("pid_namespace"))
        self.startup_s = time.perf_counter() - t0

    def _start_from_zygote(self, zygote: Zygote) -> None:
        self._proc, self._req_fd, self._resp_fd, self._scratch = zygote.fork_worker(self.seed)
        self.log_path = self._scratch / "output.log"
        self.isolated = zygote.isolated
        self.isolation_note = zygote.isolation_note

    def close(self) -> None:
        """Kill the worker's process group (and leftovers of the sandbox user)."""
        t0 = time.perf_counter()
        try:
            self._close()
        finally:
            self.close_s += time.perf_counter() - t0

    def stop(self) -> None:
        """Kill the worker and all it started, keeping its files until :meth:`close`."""
        proc = self._proc
        if proc is not None:
            self._kill_group()
            with contextlib.suppress(subprocess.TimeoutExpired):  # an unkillable one
                proc.wait(timeout=10)
        remove_leftovers(proc and proc.pid, self._uid, self._leased, self.zygote, self._tag)
        self._uid = None
        self._dead = self._dead or "the sandbox was stopped"

    def _close(self) -> None:
        self.stop()
        for fd in (self._req_fd, self._resp_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_fd = self._resp_fd = None
        if self._scratch is not None:
            remove_scratch(self._scratch)
            self._scratch = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; fixtures close explicitly
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.returncode is None:
                self._kill_group()

    def _kill_group(self) -> None:
        if self._proc is None:
            return
        if self.zygote is not None:  # its pid may be its namespace's: the zygote kills it
            self._proc.kill()
            return
        if self._pid_namespace and kill_namespace(self._proc.pid):
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._proc.kill()
        except (ProcessLookupError, OSError):
            pass

    @property
    def alive(self) -> bool:
        """Whether the worker is running and usable."""
        return self._dead is None and self._proc is not None and self._proc.poll() is None

    def output_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters the student's code printed."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")

    # -- requests ------------------------------------------------------------
    def _die(self, why: str) -> WorkerDied:
        proc = self._proc
        if proc is not None and why != "timeout":  # it may be exiting: let its status arrive
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        self._kill_group()
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                code = None
        reason = death_reason(why, code, self.timeout, self.memory_limit_mb)
        self._dead = reason
        return WorkerDied(reason)

    def _malformed(self, detail: str) -> MalformedReply:
        """Stop a worker that broke the protocol; the error to raise."""
        self._kill_group()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        err = MalformedReply(detail[:300])
        self._dead = err.reason
        return err

    def _request(self, msg: dict[str, Any], timeout: float | None = None) -> Any:
        data = self._encode(msg)
        if self._stopwatch is not None:  # any other request while timing: wall time
            return self._stopwatch.other(lambda: self._exchange(data, timeout))
        return self._exchange(data, timeout)

    def _encode(self, msg: dict[str, Any]) -> bytes:
        if self._dead is not None:
            raise WorkerDied(self._dead)
        try:
            return protocol.encode(msg, hook=to_wire)
        except protocol.NotPlain as exc:
            raise TypeError(f"cannot send this argument to the student's code: {exc}") from None

    def _exchange(self, data: bytes, timeout: float | None = None) -> Any:
        """Send one encoded request and return the decoded answer."""
        t0 = time.perf_counter()
        try:
            return self._exchange_timed(data, timeout)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _exchange_timed(self, data: bytes, timeout: float | None) -> Any:
        if self._dead is not None:
            raise WorkerDied(self._dead)
        if self._proc is None or self._req_fd is None or self._resp_fd is None:
            raise WorkerDied("the worker was not started")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            protocol.write_message(self._req_fd, data, deadline)
            header, buffers = protocol.read_message(self._resp_fd, deadline, MAX_REPLY_BYTES)
            self._moved = len(data) + len(header) + sum(len(b) for b in buffers)
            reply = protocol.decode_parts(
                header, buffers, handle_factory=lambda h: RemoteObject(self, h)
            )
        except protocol.Deadline:
            raise self._die("timeout") from None
        except protocol.ChannelClosed as exc:
            raise self._die(str(exc)) from None
        except protocol.ProtocolError as exc:
            raise self._malformed(str(exc)) from None
        if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
            raise self._malformed("not a reply")
        if reply["status"] == "ok":
            return reply.get("value")
        type_name = str(reply.get("type", "Exception"))
        frames = reply.get("traceback") or []
        frames = [str(f) for f in frames] if isinstance(frames, list) else []
        note = ""
        if type_name == "MemoryError" and self.memory_limit_mb:
            note = f"the memory limit is {self.memory_limit_mb} MB"
        raise StudentError(type_name, str(reply.get("message", "")), frames, note)

    def _call(self, target: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the student's code: the same send, call, take requests for every call,
        timed or not (:func:`autograder.sandbox.timing.call`)."""
        return timing.call(self._encode, self._exchange, lambda: self._moved, self._die,
                           self._stopwatch, target, args, kwargs)

    def info(self, timeout: float | None = None) -> dict[str, Any]:
        """What the worker achieved at start: ``isolated``, ``uid``, ``network``, ``error``."""
        value = self._request({"op": "info"}, timeout=timeout)
        if not isinstance(value, dict):
            raise self._malformed("info is not a dict")
        return value

    def ping(self) -> str:
        """Round-trip a no-op request; returns ``"pong"``."""
        return self._request({"op": "ping"})

    def put(self, value: Any) -> Ref:
        """Store ``value`` in the worker once; pass the returned :class:`Ref` later."""
        ref = self._request({"op": "put", "value": value})
        if not isinstance(ref, Ref):
            raise self._malformed("put did not return a reference")
        return ref

    def build(self, sources: list[str] | tuple[str, ...], timeout: float = 180.0) -> Any:
        """Compile ``sources`` into ``work_dir / "ext"`` (the answer is for the log only)."""
        return self._request({"op": "build", "sources": list(sources), "timeout": timeout},
                             timeout=timeout + 30.0)

    def release(self, *refs: Ref | RemoteObject) -> None:
        """Let the worker forget stored values."""
        ids = [r.id if isinstance(r, Ref) else r.ref.id for r in refs]
        self._request({"op": "release", "ids": ids})

    def timeit(self, fn: RemotePath | Callable[..., Any],
               make_inputs: Callable[[np.random.Generator], tuple[Any, ...]],
               check: Callable[..., None], *, rng: np.random.Generator, repeat: int = 5,
               warmup: int = 1, name: str | None = None) -> Timing:
        """Time the student's code on fresh inputs, checking every result.

        Each of the ``warmup + repeat`` calls: new inputs ``make_inputs(rng)``
        (a tuple of arguments; repeated bytes are refused), ``fn(*inputs)`` (a
        remote callable, or a grader-side function making several student
        calls), then ``check(result, *inputs)`` (e.g.
        :func:`autograder.checks.expect_reference`), untimed, failing the test
        on a wrong result. What counts: :mod:`autograder.sandbox.timing`.
        ``best``: minimum over the ``repeat`` calls; ``name`` labels failures.
        """
        if not callable(fn) or self._proc is None:
            raise TypeError("timeit needs a started sandbox and a remote callable")
        return timing.run_timed(
            lambda: timing.Stopwatch.of(self._proc, self._uid, self._timed_inputs),
            lambda watch: setattr(self, "_stopwatch", watch), fn, make_inputs, check,
            rng=rng, repeat=repeat, warmup=warmup, label=timing.label(fn, name))
