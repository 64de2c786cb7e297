"""Cleaning up after workers: kill what they left behind, remove their scratch folders.

A confined worker runs as a uid of its own, so everything it started is found
by uid (:func:`kill_user_processes`); an unconfined one shares the grader's
uid, so its leftovers are found by session and environment tag
(:func:`kill_descendants`, best effort).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

__all__ = ["kill_descendants", "kill_user_processes", "remove_scratch", "tail"]


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


def kill_user_processes(uid: int, spare: int | None = None) -> None:
    """SIGKILL every process whose real uid is ``uid`` (never root's), but ``spare``.

    Processes adopted by the grader (a sub-reaper) are reaped too.
    """
    if uid == 0:
        return
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
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        if ppid == me:  # adopted by the grader (sub-reaper): reap it
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
