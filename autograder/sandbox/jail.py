"""Confine the worker before any student code runs (Linux, grader running as root).

This module is copied next to the worker script and imports only the standard
library. The worker calls :func:`enter` first thing, while it is still root and
single-threaded. In order, it:

1. unshares a private mount namespace and a network namespace (only a
   loopback interface, down: no network);
2. *covers* with an empty, read-only tmpfs, binding back only the paths the
   worker needs: root's home, every directory that the sandbox user could not
   traverse on the way to a needed path (a ``0700`` home holding the
   interpreter, such as ``/root/.pyenv``), and the shared temporary folders
   (``/tmp``, ``/var/tmp``, ``/dev/shm``), which then show only the
   submission copy and the worker's own scratch;
3. *hides* everything under the plan's ``hide`` roots except the ``keep``
   paths: each other entry is shadowed by an empty, unreadable, read-only
   tmpfs (directories) or an empty root-only file (files). The grader hides
   the course root (the reference under ``source/``, the hidden suites, the
   git history, the gradebook), the installed grader package and the
   world-writable temporary directories;
4. re-binds the worker's own scratch directory writable (nothing else is);
5. sets ``PR_SET_NO_NEW_PRIVS`` (no setuid binaries), drops every group and
   switches to the sandbox uid (by default a uid of its own,
   ``UID_BASE + pid``, so that limits and clean-up apply to exactly this
   worker's processes).

Every step that fails is recorded; the worker answers the grader's ``info``
request with the outcome, and the grader reports a run as isolated only when
every step succeeded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
from typing import Any

CLONE_NEWNS = 0x00020000
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
PR_SET_NO_NEW_PRIVS = 38
UID_BASE = 0x50000000  # per-worker uids: UID_BASE + the worker's pid
TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


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

    def prctl_no_new_privs(self) -> None:
        self._check(self.libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


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


def _untraversable_ancestor(path: str) -> str | None:
    """The topmost proper ancestor of ``path`` that others cannot traverse."""
    parts = path.strip("/").split("/")
    current = ""
    for part in parts[:-1]:
        current += "/" + part
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if not mode & stat.S_IXOTH:
            return current
    return None


class _Jail:
    def __init__(self, plan: dict[str, Any]) -> None:
        self.m = _Mounter()
        self.stage = str(plan["stage"])
        self.keep = _norm(list(plan.get("keep", [])))
        self.writable = _norm(list(plan.get("writable", [])))
        self.hide = _norm(list(plan.get("hide", [])))
        self.cover = _norm(list(plan.get("cover", [])))
        self.masked: list[str] = []
        self.stage_n = 0
        self.empty = os.path.join(self.stage, "empty")

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

    def _cover(self, root: str, keep: list[str]) -> None:
        """Empty tmpfs over ``root`` with only the ``keep`` paths bound back.

        The kept paths are held by ``O_PATH`` descriptors across the mount and
        bound back through ``/proc/self/fd``, so no staging directory outside
        ``root`` is needed (``/tmp`` itself can be covered).
        """
        inside = sorted(k for k in keep if _under(k, root) and k != root)
        inside = [k for k in inside if not any(k != o and _under(k, o) for o in inside)]
        held = [(k, os.open(k, os.O_PATH | os.O_CLOEXEC)) for k in inside]
        try:
            mode = "0755" if inside else "000"
            self.m.mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size=64k")
            for k, fd in held:
                target = os.path.join(root, os.path.relpath(k, root))
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.makedirs(target, mode=0o755, exist_ok=True)
                elif not os.path.exists(target):
                    open(target, "w").close()  # noqa: SIM115
                self.m.mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        finally:
            for _, fd in held:
                os.close(fd)
        self.m.mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        self.masked.append(root)

    # -- the whole sequence ---------------------------------------------
    def run(self, uid: int, gid: int, network: bool) -> None:
        flags = CLONE_NEWNS | (0 if network else CLONE_NEWNET)
        self.m.unshare(flags)
        self.m.mount(None, "/", None, MS_REC | MS_PRIVATE)
        fd = os.open(self.empty, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o000)
        os.close(fd)
        os.chmod(self.empty, 0o000)
        needed = self.keep + self.writable
        covers = list(self.cover)
        for k in needed:
            anc = _untraversable_ancestor(k)
            if anc is not None and not any(_under(anc, c) for c in covers):
                covers.append(anc)
        for t in TMP_DIRS:  # shared temporary folders: only the worker's own files
            if os.path.isdir(t) and not os.path.islink(t) and t not in covers:
                covers.append(os.path.realpath(t))
        covers = [c for c in covers if not any(c != o and _under(c, o) for o in covers)]
        for c in sorted(covers):
            self._cover(c, needed + [self.stage])
        # outer roots first; a root nested in a kept path (a grader installed in
        # the kept site-packages) is masked on its own
        for h in sorted(self.hide, key=lambda p: (p.count("/"), p)):
            self._hide_except(h, needed + [self.stage])
        for w in self.writable:
            self.m.mount(w, w, None, MS_BIND)
            self.m.mount(None, w, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
        for w in self.writable:
            os.chown(w, uid, gid)
            os.chmod(w, 0o700)
        self.m.prctl_no_new_privs()
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
            raise JailError("the uid did not change")


def enter(plan: dict[str, Any]) -> dict[str, Any]:
    """Confine this process according to ``plan``; returns what was achieved.

    ``plan`` keys: ``stage`` (a root-owned directory for bind staging), ``keep``
    (paths the worker must read), ``writable`` (paths it may write), ``hide``
    (roots whose other entries are hidden), ``cover`` (directories to replace
    by an empty tmpfs, keeping only needed paths), ``uid``/``gid`` (``None``:
    a uid of this worker's own), ``network`` (``False`` unshares the network).
    The result has ``isolated`` (bool), ``uid``, ``network`` and ``error``.
    """
    info: dict[str, Any] = {"isolated": False, "uid": os.getuid(), "network": True,
                            "error": "", "masked": []}
    if os.geteuid() != 0:
        info["error"] = "the grader is not root"
        return info
    uid = plan.get("uid")
    uid = worker_uid(os.getpid()) if uid is None else int(uid)
    gid = plan.get("gid")
    gid = uid if gid is None else int(gid)
    jail = _Jail(plan)
    try:
        jail.run(uid, gid, bool(plan.get("network", False)))
    except (JailError, OSError) as exc:
        info["error"] = str(exc)
        info["masked"] = jail.masked
        info["uid"] = os.getuid()
        return info
    info.update(isolated=True, uid=os.getuid(), network=bool(plan.get("network", False)),
                masked=jail.masked)
    return info
