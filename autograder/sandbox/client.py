"""Grader side of the sandbox: start a worker, call student code, time it.

Student code only ever runs in the worker process. The grader sends requests
over a private pipe in the pickle-free :mod:`autograder.sandbox.protocol`
format and gets back plain data or opaque handles (:class:`RemoteObject`).
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autograder.config import (
    DEFAULT_FSIZE_LIMIT_MB,
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIMEOUT,
)
from autograder.sandbox import protocol, uids
from autograder.sandbox.protocol import Handle, Ref

__all__ = [
    "Ref",
    "RemoteObject",
    "RemotePath",
    "Sandbox",
    "StudentError",
    "Timing",
    "WorkerDied",
    "isolation_available",
]

DEFAULT_NPROC_LIMIT = 64
MAX_REPLY_BYTES = 1024 * 1024 * 1024
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_HERE = Path(__file__).resolve().parent
_PUT_THRESHOLD = 4096  # bytes: timeit stores bigger array arguments in the worker first


class StudentError(Exception):
    """Student code raised an exception in the worker.

    Attributes: ``type_name``, ``message`` and ``frames`` (the traceback lines
    inside the submission, innermost last, like ``"cs231n/layers.py:42 in f: ..."``).
    """

    def __init__(self, type_name: str, message: str, frames: list[str] | None = None,
                 note: str = "") -> None:
        self.type_name = type_name
        self.message = message
        self.frames = list(frames or [])
        self.note = note
        super().__init__(self.describe())

    def location(self) -> str:
        """``file:line`` of the innermost student frame, or ``""``."""
        if not self.frames:
            return ""
        return self.frames[-1].split(" in ", 1)[0]

    def describe(self) -> str:
        """One readable line: ``your code raised TypeError: msg at layers.py:42``."""
        text = f"your code raised {self.type_name}"
        if self.message:
            text += f": {self.message}"
        if self.location():
            text += f" at {self.location()}"
        if self.note:
            text += f" ({self.note})"
        return text


class WorkerDied(Exception):
    """The worker process timed out, crashed or exited; ``reason`` says which."""

    def __init__(self, reason: str, internal: bool = False) -> None:
        self.reason = reason
        self.internal = internal  # the grader's fault (confinement failed), not the student's
        super().__init__(reason)


@dataclass
class Timing:
    """Result of :meth:`Sandbox.timeit`: best time in seconds, all times, last result."""

    best: float
    times: list[float]
    result: Any


_PROBES: dict[tuple[str, str | None], tuple[bool, str]] = {}
CONFINED_NOTE = ("worker confined: private mount and network namespaces, course and grader "
                 "hidden, runs as {who}")
_GRADER_DIR = Path(__file__).resolve().parents[1]  # the autograder package
UID_GONE_TIMEOUT = 10.0  # seconds the clean-up waits for a sandbox uid's last process


def containment_note(info: dict[str, Any]) -> str:
    """What the report says about leftovers, from a confined process's ``info``."""
    if info.get("pid_namespace") and info.get("ipc_namespace") and info.get("private_shm"):
        return ("; nothing outlives the submission: PID and IPC namespaces, private "
                "/dev/shm, a uid of its own never reused while a process has it")
    missing = [str(m) for m in info.get("missing") or []] or ["private /dev/shm"]
    return ("; NOT contained: no " + ", no ".join(missing)
            + " (leftovers are killed by uid, which a process forking during the clean-up "
            "can outlive; SysV IPC objects are not private)")


def default_hidden_paths() -> list[str]:
    """Paths hidden from every worker: the grader package, the checkout it lives in
    (a repository holding ``source/`` or ``.git``: the course), and Gradescope's root."""
    paths = [str(_GRADER_DIR)]
    checkout = _GRADER_DIR.parent
    if (checkout / "source").is_dir() or (checkout / ".git").exists():
        paths.append(str(checkout))
    if os.path.isdir("/autograder"):
        paths.append("/autograder")
    return paths


def default_kept_paths() -> list[str]:
    """Paths a worker may read although they lie under a hidden root.

    The course's data package (``coursedata``), which student library modules
    may import.
    """
    import importlib.util

    keep = []
    try:
        spec = importlib.util.find_spec("coursedata")
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        keep.append(str(loc))
    return keep


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
        who = f"user {user!r}" if user else "a uid of its own"
        note = (CONFINED_NOTE.format(who=who) if ok else
                f"confinement failed ({detail}); the worker runs as root")
        _PROBES[key] = (ok, note)
    return _PROBES[key]


class RemotePath:
    """An attribute path in the worker: call it, ``get()`` it or ``set(value)`` it.

    ``student.lib.layers.affine_forward(x, w, b)`` calls the student's function;
    ``obj.params.get()`` fetches an attribute of a remote object as plain data.
    Use ``.attr(name)`` for attribute names that clash with ``get``/``set``.
    """

    def __init__(self, sandbox: Sandbox, target: dict[str, Any]) -> None:
        object.__setattr__(self, "_sandbox", sandbox)
        object.__setattr__(self, "_target", target)

    def attr(self, name: str) -> RemotePath:
        """The attribute ``name`` of this path."""
        t = self._target
        if "path" in t:
            new = {"path": f"{t['path']}.{name}" if t["path"] else name}
        else:
            new = {"ref": t["ref"], "attrs": [*t.get("attrs", []), name]}
        return RemotePath(self._sandbox, new)

    def __getattr__(self, name: str) -> RemotePath:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.attr(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("use .set(value) to assign a remote attribute")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._sandbox._call(self._target, args, kwargs)

    def get(self) -> Any:
        """Fetch the value as plain data (a :class:`RemoteObject` if it is not plain)."""
        return self._sandbox._request({"op": "get", "target": self._target})

    def set(self, value: Any) -> None:
        """Assign ``value`` (plain data, :class:`Ref` or :class:`RemoteObject`)."""
        self._sandbox._request({"op": "set", "target": self._target, "value": value})

    def __repr__(self) -> str:
        t = self._target
        where = t["path"] if "path" in t else f"<handle {t['ref']}>." + ".".join(t["attrs"])
        return f"RemotePath({where})"


class RemoteObject(RemotePath):
    """An opaque object living in the worker (an instance, a cache, ...)."""

    def __init__(self, sandbox: Sandbox, handle: Handle) -> None:
        super().__init__(sandbox, {"ref": handle.id, "attrs": []})
        object.__setattr__(self, "_handle", handle)

    @property
    def type_name(self) -> str:
        """The class name of the remote object."""
        return self._handle.type

    @property
    def ref(self) -> Ref:
        """A :class:`Ref` that stands for this object in arguments."""
        return Ref(self._handle.id)

    def __repr__(self) -> str:
        return f"<remote {self._handle.type} object #{self._handle.id}>"


def _to_wire(value: Any) -> Any:
    if isinstance(value, RemotePath):
        t = value._target
        if "ref" in t and not t.get("attrs"):
            return Ref(t["ref"])
    return None  # not sendable


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
    interpreter: the limits and confinement are then the zygote's). After
    :meth:`start`, ``isolated`` tells whether the worker is confined, and
    ``isolation_note`` why (not).
    """

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
        self.ext_dir = None if ext_dir is None else str(ext_dir)
        self.isolated = False
        self.isolation_note = "worker not started"
        self.lib = RemotePath(self, {"path": ""})
        self.startup_s = 0.0
        self.busy_s = 0.0  # seconds spent waiting on the worker (student code and transfers)
        self.close_s = 0.0
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._req_fd: int | None = None
        self._resp_fd: int | None = None
        self._scratch: Path | None = None
        self._uid: int | None = None
        self._leased = False
        self._pid_namespace = False  # the worker runs in a PID namespace of its own
        self._work: Path | None = None
        self._dead: str | None = None
        self._tag = os.urandom(8).hex()
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
        launch = _Launch.prepare(self, mode="worker")
        self._scratch = launch.scratch
        self._work = launch.work
        self.log_path = launch.scratch / "output.log"
        self.isolation_note = launch.note
        self._uid, self._leased = launch.uid if launch.confine else None, launch.leased
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
        self._scratch = Path(tempfile.mkdtemp(prefix="ag-log-"))
        self.log_path = self._scratch / "output.log"
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            pid = zygote.spawn(self.seed, (req_r, resp_w, log))
        except WorkerDied:
            for fd in (req_w, resp_r):
                os.close(fd)
            _remove_scratch(self._scratch)
            raise
        finally:
            for fd in (req_r, resp_w, log):
                os.close(fd)
        self._proc = _ForkedWorker(zygote, pid)  # type: ignore[assignment]
        self._req_fd = req_w
        self._resp_fd = resp_r
        os.set_blocking(req_w, False)
        self.isolated = zygote.isolated
        self.isolation_note = zygote.isolation_note

    def close(self) -> None:
        """Kill the worker's process group (and leftovers of the sandbox user)."""
        t0 = time.perf_counter()
        try:
            self._close()
        finally:
            self.close_s += time.perf_counter() - t0

    def _close(self) -> None:
        proc = self._proc
        if proc is not None:
            self._kill_group()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
                pass
        for fd in (self._req_fd, self._resp_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_fd = self._resp_fd = None
        if self._uid is not None:
            _end_uid(self._uid, self._leased)
            self._uid = None
        elif isinstance(proc, _ForkedWorker):
            proc.zygote.kill_leftovers()
        elif proc is not None:
            _kill_descendants(proc.pid, self._tag)
        if self._scratch is not None:
            _remove_scratch(self._scratch)
            self._scratch = None
        if self._dead is None:
            self._dead = "the sandbox was closed"

    def stop(self) -> None:
        """Kill the worker and every process it started, but keep its files (see
        :attr:`work_dir`) until :meth:`close`."""
        self._kill_group()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
                pass
        if self._uid is not None:
            _end_uid(self._uid, self._leased)
            self._uid = None
        elif isinstance(self._proc, _ForkedWorker):
            self._proc.zygote.kill_leftovers()
        elif self._proc is not None:
            _kill_descendants(self._proc.pid, self._tag)
        self._dead = self._dead or "the sandbox was stopped"

    @property
    def work_dir(self) -> Path | None:
        """The working folder of a worker started on its own (not forked)."""
        return self._work

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; fixtures close explicitly
        try:
            if self._proc is not None and self._proc.returncode is None:
                self._kill_group()
        except Exception:
            pass

    def _kill_group(self) -> None:
        if self._proc is None:
            return
        if isinstance(self._proc, _ForkedWorker):
            self._proc.kill()
            return
        if self._pid_namespace and _kill_namespace(self._proc.pid):
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
        if proc is not None and why != "timeout":
            try:  # it may be exiting: its status (its exit code) reaches us through its holder
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                code = None
        if why == "timeout":
            reason = f"timed out after {self.timeout:g} s (killed)"
        elif code is None:
            reason = f"the worker stopped answering ({why})"
        elif code >= 0:
            reason = f"the worker process exited with code {code}"
        else:
            try:
                signame = signal.Signals(-code).name
            except ValueError:
                signame = str(-code)
            reason = f"the worker process was killed by signal {signame}"
            if self.memory_limit_mb and -code in (signal.SIGKILL, signal.SIGSEGV,
                                                  signal.SIGABRT, signal.SIGBUS):
                reason += f" (possibly the memory limit of {self.memory_limit_mb} MB)"
        if why not in ("timeout", "end of file", "broken pipe"):
            reason += f": {why}"
        self._dead = reason
        return WorkerDied(reason)

    def _request(self, msg: dict[str, Any], timeout: float | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            return self._request_timed(msg, timeout)
        finally:
            self.busy_s += time.perf_counter() - t0

    def _request_timed(self, msg: dict[str, Any], timeout: float | None) -> Any:
        if self._dead is not None:
            raise WorkerDied(self._dead)
        if self._proc is None or self._req_fd is None or self._resp_fd is None:
            raise WorkerDied("the worker was not started")
        try:
            data = protocol.encode(msg, hook=_to_wire)
        except protocol.NotPlain as exc:
            raise TypeError(f"cannot send this argument to the student's code: {exc}") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            protocol.write_message(self._req_fd, data, deadline)
            header, buffers = protocol.read_message(self._resp_fd, deadline, MAX_REPLY_BYTES)
            reply = protocol.decode_parts(
                header, buffers, handle_factory=lambda h: RemoteObject(self, h)
            )
        except protocol.Deadline:
            raise self._die("timeout") from None
        except protocol.ChannelClosed as exc:
            raise self._die(str(exc)) from None
        except protocol.ProtocolError as exc:
            raise self._die(f"protocol error: {exc}") from None
        if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
            raise self._die("protocol error: malformed reply")
        if reply["status"] == "ok":
            return reply.get("value")
        type_name = str(reply.get("type", "Exception"))
        frames = reply.get("traceback") or []
        frames = [str(f) for f in frames] if isinstance(frames, list) else []
        note = ""
        if type_name == "MemoryError" and self.memory_limit_mb:
            note = f"the memory limit is {self.memory_limit_mb} MB"
        raise StudentError(type_name, str(reply.get("message", "")), frames, note)

    def _call(self, target: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
              store: bool = False) -> Any:
        return self._request({"op": "call", "target": target, "args": list(args),
                              "kwargs": dict(kwargs), "store": store})

    def info(self, timeout: float | None = None) -> dict[str, Any]:
        """What the worker achieved at start: ``isolated``, ``uid``, ``network``, ``error``."""
        value = self._request({"op": "info"}, timeout=timeout)
        if not isinstance(value, dict):
            raise self._die("protocol error: info is not a dict")
        return value

    def ping(self) -> str:
        """Round-trip a no-op request; returns ``"pong"``."""
        return self._request({"op": "ping"})

    def put(self, value: Any) -> Ref:
        """Store ``value`` in the worker once; pass the returned :class:`Ref` later."""
        ref = self._request({"op": "put", "value": value})
        if not isinstance(ref, Ref):
            raise self._die("protocol error: put did not return a reference")
        return ref

    def build(self, sources: list[str] | tuple[str, ...], timeout: float = 180.0
              ) -> dict[str, Any]:
        """Compile the library's Cython ``sources`` in the worker's working folder.

        Returns ``{"ok": bool, "log": compiler output tail, "seconds": float}``:
        what the worker says, for the log only. The compiled copy lies in
        ``work_dir / "ext"``; the grader decides from the files themselves
        (:func:`autograder.build.build_submission`), after :meth:`stop`.
        """
        value = self._request({"op": "build", "sources": list(sources), "timeout": timeout},
                              timeout=timeout + 30.0)
        if not isinstance(value, dict):
            raise self._die("protocol error: build did not return a dict")
        return value

    def release(self, *refs: Ref | RemoteObject) -> None:
        """Let the worker forget stored values."""
        ids = [r.id if isinstance(r, Ref) else r.ref.id for r in refs]
        self._request({"op": "release", "ids": ids})

    def timeit(self, fn: RemotePath, *args: Any, repeat: int = 5, warmup: int = 1,
               **kwargs: Any) -> Timing:
        """Time ``fn(*args, **kwargs)`` in the worker with the grader's own clock.

        Array arguments are stored in the worker first so their transfer is
        not timed; results stay in the worker during timing and only the last
        one is fetched. ``best`` is the minimum over ``repeat`` timed calls.
        """
        if not isinstance(fn, RemotePath):
            raise TypeError("timeit needs a remote callable such as student.lib.mod.func")
        stored: list[Ref] = []

        def lift(v: Any) -> Any:
            if isinstance(v, np.ndarray) and v.nbytes >= _PUT_THRESHOLD:
                ref = self.put(v)
                stored.append(ref)
                return ref
            return v

        args2 = tuple(lift(a) for a in args)
        kwargs2 = {k: lift(v) for k, v in kwargs.items()}
        times: list[float] = []
        last: Ref | None = None
        for i in range(max(0, warmup) + max(1, repeat)):
            t0 = time.perf_counter()
            ref = self._call(fn._target, args2, kwargs2, store=True)
            elapsed = time.perf_counter() - t0
            if last is not None:
                self.release(last)
            last = ref
            if i >= warmup:
                times.append(elapsed)
        assert isinstance(last, Ref)
        result = self._request({"op": "get", "target": {"ref": last.id, "attrs": []}})
        self.release(last, *stored)
        return Timing(best=min(times), times=times, result=result)


class _Launch:
    """What starting a worker or zygote process needs: confinement plan, scratch, env."""

    def __init__(self) -> None:
        self.confine = False
        self.uid: int | None = None
        self.gid: int | None = None
        self.leased = False  # the uid came from autograder.sandbox.uids
        self.note = ""
        self.scratch = Path()
        self.work = Path()
        self.plan: dict[str, Any] | None = None
        self.python = sys.executable
        self.base_cfg: dict[str, Any] = {}
        self.limits: tuple[int | None, int, int | None] = (None, 0, None)

    @classmethod
    def prepare(cls, owner: Sandbox | Zygote, mode: str) -> _Launch:
        """Decide on confinement and lay out a scratch directory for ``owner``."""
        self = cls()
        self.python = owner.python
        confine = owner.isolate
        if confine is None:
            confine, self.note = isolation_available(owner.python, owner.sandbox_user)
        elif not confine:
            self.note = "confinement was turned off"
        else:
            self.note = CONFINED_NOTE.format(
                who=f"user {owner.sandbox_user!r}" if owner.sandbox_user else "a uid of its own")
        self.confine = bool(confine)
        if self.confine and owner.sandbox_user:
            pw = pwd.getpwnam(owner.sandbox_user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        elif self.confine:
            try:
                self.uid = self.gid = uids.lease()
            except uids.UidLeaseError as exc:
                raise WorkerDied(f"the grader could not confine the worker ({exc})",
                                 internal=True) from None
            self.leased = True
        scratch = Path(tempfile.mkdtemp(prefix=f"ag-{mode}-"))
        self.scratch = scratch
        for name in ("worker", "protocol", "jail"):
            shutil.copyfile(_HERE / f"{name}.py", scratch / f"_autograder_{name}.py")
        shutil.copyfile(_HERE.parent / "build.py", scratch / "_autograder_build.py")
        self.work = scratch / "work"
        self.work.mkdir()
        (scratch / "output.log").touch()
        if self.confine:
            stage = scratch / "stage"
            stage.mkdir(mode=0o700)
            os.chmod(scratch, 0o755)
            for p in scratch.glob("_autograder_*.py"):
                os.chmod(p, 0o644)
            newroot = scratch.with_name(scratch.name + ".root")  # outside every kept path
            newroot.mkdir(mode=0o755)
            self.plan = {
                "stage": str(stage), "root": str(newroot), "uid": self.uid, "gid": self.gid,
                "network": False, "required": True, "init": mode == "worker",
                "hide": [*default_hidden_paths(), *owner.hide],
                "keep": [str(owner.submission_root), str(scratch), *default_kept_paths(),
                         *owner.keep, *_python_paths(owner.python),
                         *([owner.ext_dir] if owner.ext_dir else [])],
                "writable": [str(self.work)],
            }
        self.base_cfg = {"log": str(scratch / "output.log"), "root": str(owner.submission_root),
                         "library": owner.library, "cwd": str(self.work), "jail": self.plan,
                         "mode": mode, "ext": owner.ext_dir}
        self.limits = (owner.memory_limit_mb, owner.fsize_limit_mb,
                       owner.nproc_limit if self.confine else None)
        return self

    def popen(self, cfg: dict[str, Any], pass_fds: tuple[int, ...],
              tag: str) -> subprocess.Popen[bytes]:
        """Start the interpreter on the worker script with ``cfg`` and the limits."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work),
               "TMPDIR": str(self.work), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "AUTOGRADER_WORKER": tag}
        for name in THREAD_ENV:
            env[name] = "1"
        mem, fsize, nproc = self.limits

        def limits() -> None:  # runs in the child between fork and exec
            if mem:
                resource.setrlimit(resource.RLIMIT_AS, (mem << 20, mem << 20))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize << 20, fsize << 20))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if nproc is not None:  # counted for the worker's own uid once it drops root
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        return subprocess.Popen(
            [self.python, "-I", "-B", str(self.scratch / "_autograder_worker.py"),
             json.dumps({**self.base_cfg, **cfg})],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=pass_fds, env=env, cwd=str(self.work), close_fds=True,
            start_new_session=True, preexec_fn=limits,
        )


class Zygote:
    """A fork server for one submission: a confined process with numpy loaded.

    Starting a Python interpreter, confining it and importing numpy takes a
    tenth of a second or more; forking a process that did it takes a few
    milliseconds. A Zygote does it once per submission and forks a fresh
    worker for each test (``Sandbox(..., zygote=z)``). The forked workers
    share the zygote's confinement, uid and limits; the student's library is
    imported by each worker, never by the zygote, so tests share no state in
    memory. The parameters are :class:`Sandbox`'s, and ``preload`` (modules the
    zygote imports once after confinement, e.g. ``torch``; each worker reseeds
    torch with its own seed).
    """

    def __init__(
        self,
        submission_root: str | os.PathLike[str],
        library: str,
        *,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        fsize_limit_mb: int = DEFAULT_FSIZE_LIMIT_MB,
        sandbox_user: str | None = None,
        python: str | None = None,
        hide: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...] = (),
        keep: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...] = (),
        isolate: bool | None = None,
        nproc_limit: int = DEFAULT_NPROC_LIMIT,
        preload: list[str] | tuple[str, ...] = (),
        ext_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.submission_root = Path(submission_root).resolve()
        self.library = library
        self.memory_limit_mb = memory_limit_mb
        self.fsize_limit_mb = fsize_limit_mb
        self.sandbox_user = sandbox_user
        self.python = python or sys.executable
        self.hide = [str(p) for p in hide]
        self.keep = [str(p) for p in keep]
        self.isolate = isolate
        self.nproc_limit = nproc_limit
        self.ext_dir = None if ext_dir is None else str(ext_dir)
        self.isolated = False
        self.isolation_note = ""
        self.uid: int | None = None
        self.pid_namespace = False  # the zygote is process 1 of its own PID namespace
        self._leased = False
        self._tag = os.urandom(8).hex()
        self._exits: dict[int, int] = {}
        self._closed = False
        import socket

        launch = _Launch.prepare(self, mode="zygote")
        self._scratch = launch.scratch
        self.isolation_note = launch.note
        if launch.confine:
            self.uid, self._leased = launch.uid, launch.leased
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = parent
        try:
            self._proc = launch.popen({"ctrl_fd": child.fileno(), "preload": list(preload)},
                                  (child.fileno(),), self._tag)
        finally:
            child.close()
        msg = self._read(start_timeout)
        if msg is None or "ready" not in msg:
            tail = _tail(launch.scratch / "output.log", 300)
            self.close()
            raise WorkerDied(f"the grader could not start the fork server: {tail or 'no answer'}",
                             internal=True)
        info = msg["ready"]
        self.isolated = bool(info.get("isolated")) if launch.confine else False
        if launch.confine and not self.isolated:
            self.isolation_note = f"confinement failed: {info.get('error')}"
        elif self.isolated:
            self.isolation_note += containment_note(info)
            self.pid_namespace = bool(info.get("pid_namespace"))

    @property
    def pid(self) -> int:
        """The zygote's process id."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the zygote can still fork workers."""
        return not self._closed and self._proc.poll() is None

    def _read(self, timeout: float, exits: bool = False) -> dict[str, Any] | None:
        """The next answer from the zygote; exit notices are recorded on the way
        (and returned as ``{}`` when ``exits``)."""
        import select

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left < 0:
                return None
            ready, _, _ = select.select([self._sock], [], [], left)
            if not ready:
                return None
            try:
                data = self._sock.recv(1 << 20)
            except OSError:
                return None
            if not data:
                return None
            try:
                msg = json.loads(data)
            except ValueError:
                continue
            if isinstance(msg, dict) and "exit" in msg:
                try:
                    self._exits[int(msg["exit"])] = int(msg["status"])
                except (TypeError, ValueError):
                    pass
                if exits:
                    return {}
                continue
            return msg if isinstance(msg, dict) else None

    def spawn(self, seed: int, fds: tuple[int, int, int], timeout: float = 30.0) -> int:
        """Fork a worker serving on ``fds`` (request, response, log); returns its pid."""
        import socket

        if not self.alive:
            raise WorkerDied("the fork server is gone", internal=True)
        try:
            socket.send_fds(self._sock, [json.dumps({"seed": int(seed)}).encode()], list(fds))
        except OSError as exc:
            raise WorkerDied(f"the fork server is gone ({exc})", internal=True) from None
        msg = self._read(timeout)
        if msg is None or not isinstance(msg.get("pid"), int):
            raise WorkerDied("the fork server did not answer", internal=True)
        return int(msg["pid"])

    def exit_status(self, pid: int, timeout: float = 0.0) -> int | None:
        """The exit status of a forked worker (``Popen.returncode`` style), if known."""
        deadline = time.monotonic() + timeout
        while pid not in self._exits:
            left = deadline - time.monotonic()
            if left <= 0 or not self.alive:
                break
            self._read(min(left, 0.5), exits=True)
        if pid in self._exits:
            return self._exits[pid]
        if not self.alive and (self.pid_namespace or not os.path.exists(f"/proc/{pid}")):
            return -signal.SIGKILL  # the zygote died with it: status unknown
        return None

    def kill_worker(self, pid: int) -> None:
        """SIGKILL a forked worker and its process group.

        In a PID namespace ``pid`` is the namespace's own number, meaningless
        outside: the zygote kills it (and a zygote that is gone took it along).
        """
        if self.pid_namespace:
            if self.alive:
                try:
                    self._sock.send(json.dumps({"kill": int(pid)}).encode())
                except OSError:
                    pass
            return
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill_leftovers(self) -> None:
        """Kill every process a worker left behind (never the zygote itself).

        In its own PID namespace the zygote does it: ``kill(-1, SIGKILL)`` from
        a namespace's process 1 reaches every other process of the namespace
        at once (a process forking meanwhile included: the kernel refuses a
        fork whose parent has a fatal signal pending). A zygote that does not
        answer is closed (the plugin starts another). Elsewhere the grader
        kills the processes of the sandbox uid (or of the worker's session).
        """
        if self.pid_namespace:
            if not self.alive:
                return
            try:
                self._sock.send(json.dumps({"reset": True}).encode())
                msg = self._read(10.0)
            except OSError:
                msg = None
            if msg is None or "reset" not in msg:
                self.close()
        elif self.uid is not None:
            _kill_user_processes(self.uid, spare=self.pid)
        else:
            _kill_descendants(self.pid, self._tag)

    def close(self) -> None:
        """Stop the zygote and everything its workers started."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass
        if self.pid_namespace and _kill_namespace(self._proc.pid):
            try:  # the holder exits once the whole namespace is gone
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        for kill in (lambda: os.killpg(self._proc.pid, signal.SIGKILL), self._proc.kill):
            try:
                kill()
            except (ProcessLookupError, PermissionError, OSError):
                pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        if self.uid is not None:
            _end_uid(self.uid, self._leased)
        else:
            _kill_descendants(self._proc.pid, self._tag)
        _remove_scratch(self._scratch)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ForkedWorker:
    """The part of :class:`subprocess.Popen` the Sandbox uses, for a zygote's child."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_status(self.pid, 0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.zygote.exit_status(self.pid, 30.0 if timeout is None
                                                      else timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0)
        return self.returncode

    def kill(self) -> None:
        self.zygote.kill_worker(self.pid)


def _remove_scratch(scratch: Path) -> None:
    """Remove a worker's scratch folder and the (empty) mount point of its new root."""
    shutil.rmtree(scratch, ignore_errors=True)
    root = scratch.with_name(scratch.name + ".root")
    if root.is_dir():
        try:
            root.rmdir()
        except OSError:
            pass


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _python_paths(python: str) -> list[str]:
    """Directories the worker interpreter reads: its prefixes and its ``sys.path``.

    Asked of the interpreter itself, started as the worker is (``-I``), so the
    grader's own ``sys.path`` (test runners, ``PYTHONPATH``) never widens what
    a worker may see.
    """
    if python not in _PYPATHS:
        out = subprocess.run(
            [python, "-I", "-c", "import json,sys;print(json.dumps([sys.prefix,"
             "sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix,*sys.path]))"],
            capture_output=True, text=True, timeout=60, check=False, cwd="/")
        found = json.loads(out.stdout) if out.returncode == 0 else []
        found.append(os.path.dirname(os.path.realpath(python)))
        _PYPATHS[python] = [p for p in dict.fromkeys(found)
                            if isinstance(p, str) and os.path.isabs(p) and p != "/"]
    return list(_PYPATHS[python])


_PYPATHS: dict[str, list[str]] = {}


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, session id)`` of a process, or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[1]), int(fields[3])
    except (IndexError, ValueError):
        return None


def _kill_descendants(worker_pid: int, tag: str) -> None:
    """SIGKILL what a worker left behind under the grader's own uid.

    Matches processes still in the worker's session, and processes carrying
    the worker's environment tag (daemons that left the session but kept the
    environment). A process that left the session and cleared its environment
    escapes this: only a confined run (own uid) guarantees a complete clean-up.
    """
    me = os.getpid()
    marker = f"AUTOGRADER_WORKER={tag}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in (me, worker_pid):
            continue
        st = _proc_stat(pid)
        if st is None:
            continue
        hit = st[1] == worker_pid
        if not hit:
            try:
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    hit = marker in fh.read().split(b"\0")
            except OSError:
                hit = False
        if hit:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if st[0] == me:  # adopted by the grader (sub-reaper): reap it
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass


def _kill_namespace(holder: int) -> bool:
    """SIGKILL process 1 of the PID namespace that ``holder`` (see
    :mod:`autograder.sandbox.jail`) waits for: the kernel then kills every
    process of the namespace, and the holder exits once they are all gone.
    Returns whether it was found."""
    try:
        with open(f"/proc/{holder}/task/{holder}/children") as fh:
            children = [int(p) for p in fh.read().split()]
    except (OSError, ValueError):
        children = [pid for pid in _all_pids() if (_proc_stat(pid) or (0, 0))[0] == holder]
    if len(children) != 1:
        return False
    try:
        os.kill(children[0], signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _end_uid(uid: int, leased: bool, timeout: float = UID_GONE_TIMEOUT) -> bool:
    """Kill every process of ``uid`` until none is left (zombies included), then give
    a leased uid back. Returns whether none was left; a uid that still has a
    process after ``timeout`` seconds stays leased (never reused)."""
    deadline = time.monotonic() + timeout
    while _kill_user_processes(uid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    if leased:
        uids.release(uid)
    return True


def _kill_user_processes(uid: int, spare: int | None = None) -> int:
    """SIGKILL every process whose real uid is ``uid`` (never root's), but ``spare``.

    Processes adopted by the grader (a sub-reaper) are reaped too. Returns how
    many processes of ``uid`` were found (zombies included).
    """
    if uid == 0:
        return 0
    found = 0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == spare:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{entry}/status") as fh:
                ppid, owner = -1, -1
                for line in fh:
                    if line.startswith("PPid:"):
                        ppid = int(line.split()[1])
                    elif line.startswith("Uid:"):
                        owner = int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
        if owner != uid:
            continue
        found += 1
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        if ppid == me:  # adopted by the grader (sub-reaper): reap it
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return found
