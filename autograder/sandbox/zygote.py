"""The fork server: one confined process per submission that forks a fresh worker per test."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autograder.config import DEFAULT_FSIZE_LIMIT_MB, DEFAULT_MEMORY_LIMIT_MB
from autograder.sandbox.errors import WorkerDied
from autograder.sandbox.launch import DEFAULT_NPROC_LIMIT, Launch, containment_note
from autograder.sandbox.reaping import (
    end_uid,
    kill_descendants,
    kill_namespace,
    kill_user_processes,
    remove_scratch,
    tail,
)
from autograder.sandbox.sandbox import resolve_isolation

__all__ = ["ForkedWorker", "Zygote"]



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
        self.ext_dir = None if ext_dir is None else str(ext_dir)  # the compiled package
        self.isolated = False
        self.isolation_note = ""
        self.uid: int | None = None
        self.pid_namespace = False  # the zygote is process 1 of a PID namespace of its own
        self._leased = False  # the uid is leased (autograder.sandbox.uids): give it back
        self._tag = os.urandom(8).hex()
        self._exits: dict[int, int] = {}
        self._closed = False
        confine, note = resolve_isolation(isolate, self.python, sandbox_user)
        launch = Launch.prepare(self, mode="zygote", confine=confine, note=note)
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
            last = tail(launch.scratch / "output.log", 300)
            self.close()
            raise WorkerDied(f"the grader could not start the fork server: {last or 'no answer'}",
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

    def spawn(self, seed: int, fds: tuple[int, int, int], timeout: float = 30.0
              ) -> ForkedWorker:
        """Fork a worker serving on ``fds`` (request, response, log); returns its handle."""
        if not self.alive:
            raise WorkerDied("the fork server is gone", internal=True)
        try:
            socket.send_fds(self._sock, [json.dumps({"seed": int(seed)}).encode()], list(fds))
        except OSError as exc:
            raise WorkerDied(f"the fork server is gone ({exc})", internal=True) from None
        msg = self._read(timeout)
        if msg is None or not isinstance(msg.get("pid"), int):
            raise WorkerDied("the fork server did not answer", internal=True)
        return ForkedWorker(self, int(msg["pid"]))

    def fork_worker(self, seed: int) -> tuple[ForkedWorker, int, int, Path]:
        """Fork a worker for a Sandbox: ``(worker, request fd, response fd, scratch)``.

        The grader's pipe ends are returned (the request end non-blocking); the
        worker's output goes to ``scratch/output.log``.
        """
        scratch = Path(tempfile.mkdtemp(prefix="ag-log-"))
        log = os.open(scratch / "output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            worker = self.spawn(seed, (req_r, resp_w, log))
        except WorkerDied:
            for fd in (req_w, resp_r):
                os.close(fd)
            remove_scratch(scratch)
            raise
        finally:
            for fd in (req_r, resp_w, log):
                os.close(fd)
        os.set_blocking(req_w, False)
        return worker, req_w, resp_r, scratch

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
        outside: the zygote kills it (a zygote that is gone took it along).
        """
        if not self.pid_namespace:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        elif self.alive:
            try:
                self._sock.send(json.dumps({"kill": int(pid)}).encode())
            except OSError:
                pass

    def kill_leftovers(self) -> None:
        """Kill every process a worker left behind (never the zygote itself).

        In its own PID namespace the zygote does it: ``kill(-1, SIGKILL)`` from
        a namespace's process 1 reaches every other process of the namespace
        at once (one forking meanwhile included: the kernel refuses a fork
        whose parent has a fatal signal pending). A zygote that does not
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
            kill_user_processes(self.uid, spare=self.pid)
        else:
            kill_descendants(self.pid, self._tag)

    def close(self) -> None:
        """Stop the zygote and everything its workers started."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass
        if self.pid_namespace and kill_namespace(self._proc.pid):
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
            end_uid(self.uid, self._leased)
        else:
            kill_descendants(self._proc.pid, self._tag)
        remove_scratch(self._scratch)

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ForkedWorker:
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
