"""What a grading may leave on the machine, seen from the grader's side (tests only).

Shared by ``tests/test_leftovers.py`` and ``tests/test_hostile.py``: the
processes of sandbox uids, the files in ``/dev/shm`` and the System V IPC
objects (``/proc/sysvipc``) of this IPC namespace, and a clean-up for what
the hostile corpus (``tests/fixtures/hostile/_kit/leftovers.py``) leaves when
a run was not confined.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from pathlib import Path

SHM = Path("/dev/shm")
SHM_MARK = "hostile-corpus"
KEY_BASE = 0x48430000  # the keys the corpus's SysV objects use (_kit/leftovers.py)
KEY_COUNT = 16
IPC_RMID = 0


@dataclass(frozen=True)
class IpcObject:
    """One System V IPC object as ``/proc/sysvipc/<kind>`` lists it."""

    kind: str  # shm, sem or msg
    key: int
    ident: int
    uid: int
    cuid: int


def sysv_objects() -> list[IpcObject]:
    """Every System V shared memory segment, semaphore set and message queue."""
    found = []
    for kind in ("shm", "sem", "msg"):
        try:
            lines = (Path("/proc/sysvipc") / kind).read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        for line in lines[1:]:
            row = dict(zip(header, line.split(), strict=False))
            ident = row.get("shmid") or row.get("semid") or row.get("msqid") or "-1"
            found.append(IpcObject(kind, int(row["key"]), int(ident), int(row["uid"]),
                                   int(row["cuid"])))
    return found


def marked_ipc() -> list[IpcObject]:
    """The SysV objects the hostile corpus made (by key)."""
    return [o for o in sysv_objects() if KEY_BASE <= o.key < KEY_BASE + KEY_COUNT]


def shm_files() -> dict[str, int]:
    """``/dev/shm`` entries: name -> owner uid."""
    out = {}
    try:
        entries = list(os.scandir(SHM))
    except OSError:
        return out
    for entry in entries:
        try:
            out[entry.name] = entry.stat(follow_symlinks=False).st_uid
        except OSError:
            continue
    return out


def marked_shm() -> list[str]:
    """The ``/dev/shm`` files the hostile corpus wrote."""
    return sorted(n for n in shm_files() if n.startswith(SHM_MARK))


def process_uids() -> dict[int, tuple[int, int, tuple[int, ...]]]:
    """Live (not zombie) processes: pid -> (ppid, real uid, all four uids)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = {k: v.split() for k, _, v in (ln.partition(":") for ln in text.splitlines())}
        if fields.get("State", ["?"])[0] in ("Z", "X"):
            continue
        try:
            uids = tuple(int(u) for u in fields["Uid"])
            out[int(entry)] = (int(fields["PPid"][0]), uids[0], uids)
        except (KeyError, ValueError, IndexError):
            continue
    return out


def remove_marked() -> None:
    """Remove the corpus's ``/dev/shm`` files and SysV objects (an unconfined run's)."""
    for name in marked_shm():
        try:
            (SHM / name).unlink()
        except OSError:
            pass
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    for obj in marked_ipc():
        if obj.kind == "shm":
            libc.shmctl(obj.ident, IPC_RMID, None)
        elif obj.kind == "sem":
            libc.semctl(obj.ident, 0, IPC_RMID)
        else:
            libc.msgctl(obj.ident, IPC_RMID, None)
