"""The sandbox worker: runs untrusted student code, answers the grader over a pipe.

Started by :class:`autograder.sandbox.sandbox.Sandbox` (via
:mod:`autograder.sandbox.launch`) as ``python -I -B _autograder_worker.py
CONFIG_JSON`` from a scratch folder holding copies of this file and of the
modules it loads (``_autograder_jail.py``, ``_autograder_handler.py``,
``_autograder_protocol.py``, ``_autograder_extensions.py``): standard library
+ numpy + those copies only. CONFIG_JSON holds ``req_fd``, ``resp_fd`` (the
inherited pipe ends), ``log`` (file for the student's output), ``root``
(submission root), ``library`` (package name), ``seed``, ``cwd``, ``jail``
(the confinement plan or ``None``) and ``mode`` (``"worker"``, or
``"zygote"`` for a fork server: then ``ctrl_fd`` and ``preload``).

This file sets the process up (descriptors, output, jail, seeds) and, as a
fork server, forks workers; the requests themselves are answered by
``_autograder_handler.Worker``.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import sys
from typing import Any

# Only the standard library is imported before confinement: numpy, the
# request handler, the protocol module and the student's code load after
# :func:`main` has entered the jail and dropped root.
handler: Any = None

PRIVATE_FD_BASE = 200


def _private_fd(fd: int) -> int:
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, PRIVATE_FD_BASE)
    os.close(fd)
    return new


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
    # ``python -I`` leaves the script's folder off sys.path: put it first for
    # the copies placed there (jail, handler, protocol), so nothing but the standard
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
    _load_handler()
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
    handler.Worker(req_fd, resp_fd, cfg["root"], cfg["library"], info,
                   ext=cfg.get("ext")).serve()
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


def _load_handler() -> None:
    """Import the request handler and, through it, numpy and the protocol (confined now)."""
    global handler
    import _autograder_handler as loaded  # type: ignore[import-not-found]  # copied here

    loaded.load_runtime()
    handler = loaded


def _become_worker(seed: int, cwd: str) -> None:
    """The per-process part of the set-up: streams, seeds, working directory."""
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = handler.CappedWriter(1, handler.STDOUT_CAP)
    sys.stderr = handler.CappedWriter(2, handler.STDOUT_CAP)
    seed %= 2**32
    _SEED[0] = seed
    random.seed(seed)
    handler.np.random.seed(seed)
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
                handler.Worker(req_fd, resp_fd, cfg["root"], cfg["library"], info,
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
