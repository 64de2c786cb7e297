"""Cleaning up after workers: kill what they left behind, remove their scratch folders.

A confined worker or fork server is process 1 of a PID namespace of its own
(behind a holder process, see :mod:`autograder.sandbox.jail`): killing it
(:func:`kill_namespace`) makes the kernel kill everything in the namespace.
It also runs as a leased uid of its own: :func:`end_uid` kills whatever has
that uid until nothing has, and only then gives the uid back. An unconfined
worker shares the grader's uid, so its leftovers are found by session and
environment tag (:func:`kill_descendants`, best effort).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from autograder.sandbox import uids

__all__ = ["end_uid", "kill_descendants", "kill_namespace", "kill_user_processes",
           "remove_leftovers", "remove_scratch", "tail"]

UID_GONE_TIMEOUT = 10.0  # seconds the clean-up waits for a sandbox uid's last process


def remove_scratch(scratch: Path) -> None:
    """Remove a worker's scratch folder and the (empty) mount point of its new root."""
    shutil.rmtree(scratch, ignore_errors=True)
    root = scratch.with_name(scratch.name + ".root")
    if root.is_dir():
        try:
            root.rmdir()
        except OSError:
            pass


def tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a log file as text (``""`` if unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


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


def kill_descendants(worker_pid: int, tag: str) -> None:
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


def remove_leftovers(pid: int | None, uid: int | None, leased: bool, zygote: Any,
                     tag: str) -> None:
    """Kill what a stopped worker ``pid`` left: by ``uid`` when confined (and give a
    ``leased`` uid back), through ``zygote`` when forked by one, else by session and
    environment ``tag``."""
    if uid is not None:
        end_uid(uid, leased)
    elif pid is not None and zygote is not None:
        zygote.kill_leftovers()
    elif pid is not None:
        kill_descendants(pid, tag)


def kill_namespace(holder: int) -> bool:
    """SIGKILL process 1 of the PID namespace that ``holder`` waits for: the kernel
    kills every other process of the namespace, and the holder exits once they are
    all gone. Returns whether that process was found."""
    try:
        with open(f"/proc/{holder}/task/{holder}/children") as fh:
            children = [int(p) for p in fh.read().split()]
    except (OSError, ValueError):
        children = [int(e) for e in os.listdir("/proc")
                    if e.isdigit() and (_proc_stat(int(e)) or (0, 0))[0] == holder]
    if len(children) != 1:
        return False
    try:
        os.kill(children[0], signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def end_uid(uid: int, leased: bool, timeout: float = UID_GONE_TIMEOUT) -> bool:
    """Kill every process of ``uid`` until none is left (zombies included), then give
    a leased uid back. Returns whether none was left; a uid that still has a
    process after ``timeout`` seconds stays leased (never handed out again)."""
    deadline = time.monotonic() + timeout
    while kill_user_processes(uid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    if leased:
        uids.release(uid)
    return True


def kill_user_processes(uid: int, spare: int | None = None) -> int:
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
