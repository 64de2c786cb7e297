"""The sandbox worker: runs untrusted student code, answers the grader over a pipe.

Started by :class:`autograder.sandbox.client.Sandbox` as
``python -I -B worker.py CONFIG_JSON`` (standard library + numpy + the protocol
module only). CONFIG_JSON holds ``req_fd``, ``resp_fd`` (the inherited pipe
ends), ``log`` (file for the student's output), ``root`` (submission root),
``library`` (package name) and ``seed``.

Requests are dicts with an ``op``:

- ``ping``: answers ``"pong"``.
- ``call``: ``target`` (``{"path": "layers.affine_forward"}`` relative to the
  library, or ``{"ref": id, "attrs": [...]}``), ``args``, ``kwargs``,
  optional ``store`` (keep the result in the table and answer a reference).
- ``get`` / ``set`` (with ``value``): an attribute (or the object itself).
- ``put``: store ``value`` and answer its reference id.
- ``release``: forget the table entries listed in ``ids``.

Answers: ``{"status": "ok", "value": ...}`` or ``{"status": "error", "type",
"message", "traceback"}`` (only frames inside the submission directory).
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import random
import signal
import sys
import traceback
from typing import Any

# Only the standard library is imported before confinement: numpy, the
# protocol module and the student's code load after :func:`main` has entered
# the jail and dropped root.
np: Any = None
protocol: Any = None


def _load_runtime() -> None:
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
PRIVATE_FD_BASE = 200
STDOUT_CAP = 8 * 1024 * 1024


class _CappedWriter(io.TextIOBase):
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
            result = fn(*req.get("args", []), **req.get("kwargs", {}))
            if req.get("store"):
                return protocol.Ref(self.store(result))
            return result
        if op == "get":
            obj, _ = self.resolve_target(req["target"])
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

        Runs in a worker of its own, started for the build only, before any
        student code of the submission: the package is copied (sources only)
        and compiled in a child process (``_autograder_build.py``). The answer
        is for the log; the grader judges the build from the files it finds
        once this worker and everything it started are gone.
        """
        import importlib.util

        sources = [str(s) for s in req.get("sources", [])]
        spec = importlib.util.spec_from_file_location(
            "_autograder_build", os.path.join(_HERE[0], "_autograder_build.py"))
        builder = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["_autograder_build"] = builder  # its dataclasses look it up
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


def _private_fd(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, PRIVATE_FD_BASE)
    os.close(fd)
    return new


_HERE = [""]  # the folder of this script and of its copied helpers
_SEED = [0]  # the current process's seed; a forked worker sets its own before serving


def _seed_torch_on_import() -> None:
    """Seed torch (with ``_SEED``), fix its threads and ask for deterministic algorithms.

    Installed as an import hook, so a submission that never imports torch
    does not pay for it.
    """
    import importlib.abc
    import importlib.machinery

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
            if name != "torch":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            original = loader.exec_module  # type: ignore[union-attr]

            def exec_module(module: Any) -> None:
                original(module)
                try:
                    module.manual_seed(_SEED[0])
                    module.set_num_threads(1)
                    module.use_deterministic_algorithms(True, warn_only=True)
                except Exception:  # pragma: no cover - a torch without these
                    pass

            loader.exec_module = exec_module  # type: ignore[union-attr, method-assign]
            return spec

    sys.meta_path.insert(0, _Hook())


def main(argv: list[str]) -> int:
    """Set the process up (fds, output, jail, path, seeds) and serve requests."""
    cfg = json.loads(argv[1])
    zygote = cfg.get("mode") == "zygote"
    if zygote:
        req_fd = resp_fd = _private_fd(int(cfg["ctrl_fd"]))
    else:
        req_fd = _private_fd(int(cfg["req_fd"]))
        resp_fd = _private_fd(int(cfg["resp_fd"]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(cfg["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    here = os.path.dirname(os.path.abspath(__file__))
    _HERE[0] = here
    # ``python -I`` leaves the script's folder off sys.path: put it first for
    # the two copies placed there (jail, protocol), so nothing but the standard
    # library is imported before confinement; it is removed again below.
    sys.path.insert(0, here)
    info: dict[str, Any] = {"isolated": False, "uid": os.getuid(), "network": True,
                            "error": "no confinement was asked for", "masked": []}
    if cfg.get("jail") is not None:
        import _autograder_jail as jail  # type: ignore[import-not-found]  # copied here
        info = jail.enter(cfg["jail"])
        if not info["isolated"] and cfg["jail"].get("required"):
            os.write(2, f"autograder: confinement failed: {info['error']}\n".encode())
            return 3
    _load_runtime()
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    _no_compiled_modules_from(cfg["root"])
    sys.path.insert(0, cfg["root"])
    if cfg.get("ext"):  # the grader's compiled copy of the package comes first
        sys.path.insert(0, cfg["ext"])
    _seed_torch_on_import()
    if zygote:
        for name in cfg.get("preload", []):  # after confinement, before any student code
            try:
                __import__(name)
            except Exception as exc:  # noqa: BLE001 - the workers import it (and fail) themselves
                os.write(2, f"autograder: could not preload {name}: {exc}\n".encode())
        return _zygote(req_fd, cfg, info)
    _become_worker(int(cfg.get("seed", 0)), cfg.get("cwd") or os.getcwd())
    Worker(req_fd, resp_fd, cfg["root"], cfg["library"], info, ext=cfg.get("ext")).serve()
    return 0


def _no_compiled_modules_from(root: str) -> None:
    """Make the import system load only Python source from the submission folder.

    Extension modules (``.so``) and bytecode-only files a student shipped are
    never imported from there; the compiled extension the grader built lives
    in a folder of its own, outside the submission.
    """
    import importlib.machinery as mach

    source = [(mach.SourceFileLoader, mach.SOURCE_SUFFIXES)]
    everything = [(mach.ExtensionFileLoader, mach.EXTENSION_SUFFIXES), *source,
                  (mach.SourcelessFileLoader, mach.BYTECODE_SUFFIXES)]
    only_source = mach.FileFinder.path_hook(*source)
    default = mach.FileFinder.path_hook(*everything)
    top = os.path.realpath(root)

    def hook(path: str) -> Any:
        real = os.path.realpath(path or ".")
        if real == top or real.startswith(top + os.sep):
            return only_source(path)
        return default(path)

    sys.path_hooks[:] = [h for h in sys.path_hooks
                         if "FileFinder" not in getattr(h, "__qualname__", "")] + [hook]
    sys.path_importer_cache.clear()


def _become_worker(seed: int, cwd: str) -> None:
    """The per-process part of the set-up: streams, seeds, working directory."""
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = _CappedWriter(1, STDOUT_CAP)
    sys.stderr = _CappedWriter(2, STDOUT_CAP)
    seed %= 2**32
    _SEED[0] = seed
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:  # preloaded by the fork server: seed it for this worker
        try:
            torch.manual_seed(seed)
        except Exception:  # pragma: no cover - a torch without it
            pass
    os.environ["HOME"] = os.environ["TMPDIR"] = cwd
    os.chdir(cwd)


def _zygote(ctrl_fd: int, cfg: dict[str, Any], info: dict[str, Any]) -> int:
    """Fork a fresh worker per request (a fork server: numpy is already loaded).

    Requests on the control socket (SOCK_SEQPACKET) carry three descriptors
    (request pipe, response pipe, log file) and ``{"seed": N}``; the answer is
    ``{"pid": P}``. When a worker exits the zygote sends ``{"exit": P,
    "status": S}`` (``S`` as in ``Popen.returncode``) and removes its working
    directory. The student's code never holds the control socket.
    """
    import shutil
    import socket

    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace by the same uid
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    sock = socket.socket(fileno=ctrl_fd)
    sock.send(json.dumps({"ready": info}).encode())
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    base = cfg.get("cwd") or os.getcwd()
    children: dict[int, str] = {}

    def reap() -> None:
        while True:  # orphans adopted by this process 1 too
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            shutil.rmtree(children.pop(pid, ""), ignore_errors=True)
            try:
                sock.send(json.dumps({"exit": pid, "status": code}).encode())
            except OSError:
                return

    while True:
        try:
            import select

            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            reap()
        if sock not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 3)
        except OSError:
            return 0
        if not msg:
            return 0  # the grader closed the socket
        try:
            req = json.loads(msg)
            if isinstance(req, dict) and ("reset" in req or "kill" in req):
                for fd in fds:
                    os.close(fd)
                if "kill" in req:
                    _kill_child(int(req["kill"]), children)
                else:
                    _reset(sock, children)
                continue
            seed = int(req["seed"])
        except (ValueError, KeyError, TypeError):
            for fd in fds:
                os.close(fd)
            continue
        cwd = os.path.join(base, f"w{len(children)}-{os.urandom(4).hex()}")
        os.mkdir(cwd, 0o700)
        pid = os.fork()
        if pid == 0:  # the new worker
            try:
                sock.close()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(wake_r)
                os.close(wake_w)
                os.setsid()
                try:
                    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again
                except (OSError, AttributeError, NameError):  # pragma: no cover
                    pass
                req_fd, resp_fd, log = (_private_fd(fd) for fd in fds)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.close(log)
                _become_worker(seed, cwd)
                Worker(req_fd, resp_fd, cfg["root"], cfg["library"], info,
                       ext=cfg.get("ext")).serve()
            finally:
                os._exit(0)
        children[pid] = cwd
        for fd in fds:
            os.close(fd)
        try:
            sock.send(json.dumps({"pid": pid}).encode())
        except OSError:
            return 0


def _kill_child(pid: int, children: dict[int, str]) -> None:
    """SIGKILL one of this fork server's workers and its process group."""
    if pid not in children:
        return
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reset(sock: Any, children: dict[int, str]) -> None:
    """Kill every other process of this PID namespace, reap them, answer ``{"reset": n}``.

    Only as process 1 of a namespace (the kernel makes ``kill(-1)`` reach the
    whole namespace at once); elsewhere it answers ``{"reset": -1}``.
    """
    import shutil

    if os.getpid() != 1:
        sock.send(json.dumps({"reset": -1}).encode())
        return
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reaped = 0
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        reaped += 1
        if pid in children:
            shutil.rmtree(children.pop(pid), ignore_errors=True)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            sock.send(json.dumps({"exit": pid, "status": code}).encode())
    sock.send(json.dumps({"reset": reaped}).encode())


if __name__ == "__main__":
    code = main(sys.argv)
    os._exit(code)
