"""Confine the worker before any student code runs (Linux, grader running as root).

This module is copied next to the worker script and imports only the standard
library. The worker calls :func:`enter` first thing, while it is still root and
single-threaded. In order, it:

1. unshares a **PID namespace** and forks: the child is process 1 of a new
   namespace, and everything the student's code starts is its descendant.
   When it dies, the kernel kills every other process of the namespace
   (whatever they do: a process forking while it is killed included), and
   this first process (the *holder*, root, outside the namespace, holding no
   descriptor of the grader's) only waits for it and exits with its status.
   For a single worker (not a fork server) process 1 is a small init that
   forks the worker and reaps orphans, so that student code never runs as a
   namespace's init;
2. unshares a private mount namespace, a network namespace (only a loopback
   interface, down: no network) and an **IPC namespace** (System V segments,
   semaphores and message queues, POSIX queues: private, gone with the
   namespace);
3. builds a new root file system from an allow-list and moves into
   it (``pivot_root``): an empty read-only tmpfs holding only the system folders (``/usr``,
   ``/etc``, ``/sys`` and the ``/lib*`` ones, read-only), a **private
   ``/dev``** (a few device nodes, and ``/dev/shm`` a tmpfs of its own, capped,
   gone with the mount namespace), a ``/proc`` of the new PID namespace (it
   shows only the submission's own processes), and the paths the worker needs
   at their usual places (the interpreter and
   its site-packages, the course data package, the submission copy, the
   worker's scratch folder), read-only but for its own working folder. Nothing
   else of the machine exists in there: no course, no grader, no home, no
   other grading's files, no other checkout, no shared ``/tmp``;
4. hides, inside what was kept, the ``hide`` paths (a grader package
   installed in the kept site-packages, a course folder under a kept one);
5. sets ``PR_SET_NO_NEW_PRIVS`` (no setuid binaries), drops every group and
   switches to the sandbox uid (leased by the grader, never shared with
   another live submission, see :mod:`autograder.sandbox.uids`), then asks
   for ``SIGKILL`` should the holder die.

Every step that fails is recorded; the worker answers the grader's ``info``
request with the outcome, and the grader reports a run as isolated only when
every step of 2-5 succeeded. The PID and IPC namespaces are reported apart
(``pid_namespace``, ``ipc_namespace``): without them the grader falls back to
killing the sandbox uid's processes, which a process forking during the
clean-up can outlive, and SysV objects are not private.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import stat
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
UID_BASE = 0x50000000  # sandbox uids: UID_BASE + n (leased by autograder.sandbox.uids)
DEFAULT_SHM_MB = 64  # size of the worker's private /dev/shm (tmpfs: memory outside RLIMIT_AS)
# The device nodes a worker's private /dev holds (bound from the host's):
DEV_NODES = ("null", "zero", "full", "random", "urandom")
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
# What the worker sees of the machine, besides the paths it needs (the
# interpreter, its site-packages, the submission copy, its scratch folder):
SYSTEM_DIRS = ("/usr", "/etc", "/dev", "/proc", "/sys", "/lib", "/lib32", "/lib64", "/libx32",
               "/bin", "/sbin")
SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


class JailError(Exception):
    """A confinement step failed (the message names the step and the path)."""


def worker_uid(pid: int) -> int:
    """The uid a worker with process id ``pid`` runs as when no user is configured."""
    return UID_BASE + pid


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _Mounter:
    def __init__(self) -> None:
        self.libc = _libc()
        self.libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_ulong, ctypes.c_char_p]
        self.libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.libc.unshare.argtypes = [ctypes.c_int]

    @staticmethod
    def _b(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise JailError(f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self.libc.unshare(flags), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        rc = self.libc.mount(self._b(source), self._b(target), self._b(fstype), flags,
                             self._b(data))
        self._check(rc, f"mount {target}")

    def umount(self, target: str) -> None:
        self._check(self.libc.umount2(self._b(target), MNT_DETACH), f"umount {target}")

    def pivot_root(self, new: str, old: str) -> None:
        number = SYS_PIVOT_ROOT.get(os.uname().machine)
        if number is None:
            raise JailError(f"pivot_root: unknown machine {os.uname().machine}")
        rc = self.libc.syscall(number, self._b(new), self._b(old))
        self._check(rc, "pivot_root")

    def prctl_no_new_privs(self) -> None:
        self._check(self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")

    def prctl_pdeathsig(self) -> None:
        self._check(self.libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _norm(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        if p and os.path.isabs(p) and os.path.lexists(p):
            rp = os.path.realpath(p)
            if rp not in out:
                out.append(rp)
    return out


class _Jail:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.m = _Mounter()
        self.stage = str(plan["stage"])
        self.root = str(plan["root"])
        self.keep = _norm(list(plan.get("keep", [])))
        self.writable = _norm(list(plan.get("writable", [])))
        self.hide = _norm(list(plan.get("hide", [])))
        self.masked: list[str] = []
        self.stage_n = 0
        self.empty = os.path.join(self.stage, "empty")
        self.shm_mb = int(plan.get("shm_mb") or DEFAULT_SHM_MB)
        self.pid_namespace = False  # set by enter() once this process is a namespace's init
        self.ipc_namespace = False
        self.private_shm = False
        self.missing: list[str] = []  # containment steps this platform refused

    # -- primitives ------------------------------------------------------
    def _mask(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            return  # a link into a hidden place is hidden there; elsewhere harmless
        if stat.S_ISDIR(st.st_mode):
            self.m.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         "mode=000,size=4k,nr_inodes=2")
        else:
            self.m.mount(self.empty, path, None, MS_BIND)
            self.m.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        self.masked.append(path)

    def _hide_except(self, root: str, keep: list[str]) -> None:
        if not os.path.lexists(root):
            return  # already hidden by an outer mask or a cover
        inside = [k for k in keep if _under(k, root)]
        if root in inside:
            return
        if not inside:
            self._mask(root)
            return
        with os.scandir(root) as entries:
            names = sorted(e.path for e in entries)
        for path in names:
            if any(k == path for k in inside):
                continue
            if any(_under(k, path) for k in inside):
                if os.path.isdir(path) and not os.path.islink(path):
                    self._hide_except(path, inside)
                continue
            self._mask(path)

    def _bind(self, newroot: str, path: str, *, writable: bool = False,
              dev: bool = False) -> None:
        """Bind ``path`` at the same place under ``newroot`` (read-only unless ``writable``)."""
        target = newroot + path
        if os.path.isdir(path):
            os.makedirs(target, mode=0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if not os.path.lexists(target):
                open(target, "w").close()  # noqa: SIM115
        self.m.mount(path, target, None, MS_BIND | MS_REC)
        flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if dev else MS_NODEV)
        self.m.mount(None, target, None, flags | (0 if writable else MS_RDONLY))

    def _build_root(self, newroot: str, needed: list[str]) -> None:
        """An empty tmpfs holding only the system folders and the ``needed`` paths."""
        self.m.mount("tmpfs", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        for name in sorted(os.listdir("/")):
            path = "/" + name
            if name in SYSTEM_LINKS and os.path.islink(path):
                os.symlink(os.readlink(path), newroot + path)  # /bin -> usr/bin ...
        binds = [p for p in SYSTEM_DIRS if os.path.isdir(p) and not os.path.islink(p)]
        extra = sorted(p for p in needed if not any(_under(p, b) for b in binds))
        extra = [p for p in extra if not any(p != o and _under(p, o) for o in extra)]
        for path in binds:
            if path == "/dev":
                self._build_dev(newroot + path)
            elif path == "/proc" and self.pid_namespace:
                os.makedirs(newroot + path, mode=0o555, exist_ok=True)
                self.m.mount("proc", newroot + path, "proc",
                             MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
            else:
                self._bind(newroot, path)
        for path in extra:
            self._bind(newroot, path, writable=path in self.writable)
        for path in self.writable:  # a writable folder inside a read-only kept one
            if path not in extra:
                self._bind(newroot, path, writable=True)

    def _build_dev(self, dev: str) -> None:
        """A private ``/dev``: the harmless device nodes, ``/dev/fd`` links and a
        ``/dev/shm`` tmpfs of its own (capped at ``shm_mb``); the host's ``/dev/shm``,
        ``/dev/mqueue`` and terminals are not in it."""
        os.makedirs(dev, mode=0o755, exist_ok=True)
        self.m.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC,
                     "mode=0755,size=64k,nr_inodes=64")
        for name in DEV_NODES:
            host = "/dev/" + name
            if os.path.exists(host) and stat.S_ISCHR(os.stat(host).st_mode):
                open(os.path.join(dev, name), "w").close()  # noqa: SIM115
                self.m.mount(host, os.path.join(dev, name), None, MS_BIND)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, os.path.join(dev, name))
        shm = os.path.join(dev, "shm")
        os.mkdir(shm, 0o1777)
        self.m.mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV,
                     f"mode=1777,size={self.shm_mb}m,nr_inodes=4096")
        if self.ipc_namespace:  # POSIX message queues of this IPC namespace only
            os.mkdir(os.path.join(dev, "mqueue"), 0o1777)
            try:
                self.m.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue",
                             MS_NOSUID | MS_NODEV | MS_NOEXEC)
            except JailError:
                pass  # the queues stay private to the namespace; only the folder is empty
        self.m.mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
        self.private_shm = True

    def _pivot(self, newroot: str) -> None:
        old = os.path.join(newroot, ".oldroot")
        os.mkdir(old, 0o700)
        self.m.pivot_root(newroot, old)
        os.chdir("/")
        self.m.umount("/.oldroot")
        os.rmdir("/.oldroot")
        self.m.mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)

    # -- the whole sequence ---------------------------------------------
    def run(self, uid: int, gid: int, network: bool) -> None:
        flags = CLONE_NEWNS | (0 if network else CLONE_NEWNET)
        self.m.unshare(flags)
        try:
            self.m.unshare(CLONE_NEWIPC)
            self.ipc_namespace = True
        except JailError as exc:
            self.missing.append(f"IPC namespace ({exc})")
        self.m.mount(None, "/", None, MS_REC | MS_PRIVATE)
        fd = os.open(self.empty, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o000)
        os.close(fd)
        os.chmod(self.empty, 0o000)
        needed = self.keep + self.writable
        newroot = self.root  # an empty folder outside every kept path
        self._build_root(newroot, needed + [self.stage])
        self._pivot(newroot)
        # what is hidden inside the kept paths: a grader installed in the kept
        # site-packages, a course folder inside a kept one (outer roots first)
        for h in sorted(self.hide, key=lambda p: (p.count("/"), p)):
            self._hide_except(h, needed + [self.stage])
        for w in self.writable:
            os.chown(w, uid, gid)
            os.chmod(w, 0o700)
        self.m.prctl_no_new_privs()
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
            raise JailError("the uid did not change")
        if self.pid_namespace:  # cleared by the uid change: asked for afterwards
            self.m.prctl_pdeathsig()


def _exit_like(status: int) -> None:
    """Exit with the wait ``status`` of a child: the same code, or the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL and SIGSTOP have no handler to reset
        try:
            os.kill(os.getpid(), sig)
        except OSError:
            pass
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _close_fds(keep: tuple[int, ...] = (0, 1, 2)) -> None:
    """Close every descriptor but ``keep`` (so the grader sees its pipes close)."""
    try:
        fds = [int(f) for f in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _hold(child: int) -> None:
    """The holder: wait for the namespace's init, then exit as it did (never returns)."""
    _close_fds()
    while True:
        try:
            pid, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            _exit_like(status)


def _init(child: int) -> None:
    """Process 1 of a worker's namespace: reap orphans; exit as ``child`` does (never
    returns). Its exit kills whatever else the worker left in the namespace."""
    _close_fds()
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if pid == child:
            _exit_like(status)


def enter(plan: dict[str, Any]) -> dict[str, Any]:
    """Confine this process according to ``plan``; returns what was achieved.

    ``plan`` keys: ``stage`` (a root-owned directory for bind staging), ``keep``
    (paths the worker must read), ``writable`` (paths it may write), ``hide``
    (paths inside the kept ones to hide), ``root`` (an empty folder outside
    every kept path, mounted over with the new root), ``uid``/``gid`` (the
    sandbox uid; ``None``: ``UID_BASE`` + this process's pid), ``network``
    (``False`` unshares the network), ``shm_mb`` (size of the private
    ``/dev/shm``), ``init`` (``True`` for a single worker: process 1 of the
    namespace is a small init, the worker its child; ``False`` for a fork
    server, which is process 1 itself).
    The result has ``isolated`` (bool), ``uid``, ``network``, ``error``,
    ``pid_namespace``, ``ipc_namespace``, ``private_shm`` and ``missing``
    (the containment steps the platform refused, with the reason).

    The calling process does not return when a PID namespace was made: it
    becomes the holder (see the module's docstring); the function returns in
    the namespace's process 1 (fork server) or in its child (single worker).
    """
    info: dict[str, Any] = {"isolated": False, "uid": os.getuid(), "network": True,
                            "error": "", "masked": [], "pid_namespace": False,
                            "ipc_namespace": False, "private_shm": False, "missing": []}
    if os.geteuid() != 0:
        info["error"] = "the grader is not root"
        return info
    uid = plan.get("uid")
    uid = worker_uid(os.getpid()) if uid is None else int(uid)
    gid = plan.get("gid")
    gid = uid if gid is None else int(gid)
    jail = _Jail(plan)
    try:
        jail.m.unshare(CLONE_NEWPID)
    except JailError as exc:
        jail.missing.append(f"PID namespace ({exc})")
    else:
        child = os.fork()
        if child:
            _hold(child)
        jail.pid_namespace = True
    try:
        jail.run(uid, gid, bool(plan.get("network", False)))
    except (JailError, OSError) as exc:
        info["error"] = str(exc)
        info["masked"] = jail.masked
        info["uid"] = os.getuid()
        info["missing"] = jail.missing
        return info
    info.update(isolated=True, uid=os.getuid(), network=bool(plan.get("network", False)),
                masked=jail.masked, pid_namespace=jail.pid_namespace,
                ipc_namespace=jail.ipc_namespace, private_shm=jail.private_shm,
                missing=jail.missing)
    if jail.pid_namespace and plan.get("init"):
        child = os.fork()
        if child:
            _init(child)
    return info
