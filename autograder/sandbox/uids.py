"""Sandbox uids: one per confined process tree, never shared with a live one.

A confined fork server (or single worker) runs as a uid of its own, so that
``RLIMIT_NPROC`` and the clean-up apply to exactly its processes. The uid is
leased here, machine-wide, under a lock: :func:`lease` hands out the next uid
of the range that no lease holds and that no process on the machine has as
its real, effective, saved or file-system uid; :func:`release` gives it back
once the grader has seen every process of that uid gone. The counter walks
the whole range before it comes back to a uid, and even then the process
check means a uid is never reused while anything of its previous use runs
(a grader killed mid-run included: its leases lapse when its process is
gone, its sandbox's processes still block their uid).

Settings (module constants):

- ``STATE_DIR``: where the lock and the lease table live (root-owned, mode
  0700; created on first use). Every grader on the machine must use the same
  one, which is why it is not per checkout.
- ``LEASE_BASE`` / ``LEASE_COUNT``: the range, ``jail.UID_BASE`` + 2**22 on,
  2**23 uids: above every ``UID_BASE + pid`` uid (pids stay below 2**22) that
  older versions of this grader derived from process ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from autograder.sandbox.jail import UID_BASE

STATE_DIR = Path("/run/cvcourse-autograder")
LEASE_BASE = UID_BASE + (1 << 22)
LEASE_COUNT = 1 << 23


class UidLeaseError(RuntimeError):
    """No uid could be leased (the state folder is unusable, or the range is full)."""


def uids_in_use() -> set[int]:
    """Every uid (real, effective, saved, file system) some process on the machine has."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                for line in fh:
                    if line.startswith("Uid:"):
                        found.update(int(v) for v in line.split()[1:])
                        break
        except (OSError, ValueError):
            continue
    return found


def _state_dir() -> Path:
    try:
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = STATE_DIR.stat()
    except OSError as exc:
        raise UidLeaseError(f"cannot use {STATE_DIR} for uid leases: {exc}") from None
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise UidLeaseError(f"{STATE_DIR} must belong to the grader's user and be "
                            f"writable by it only")
    return STATE_DIR


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, object]]:
    """The lease table, under an exclusive lock; written back when the block ends."""
    folder = _state_dir()
    with open(folder / "uids.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / "uids.json"
        try:
            state = json.loads(path.read_text())
            if not isinstance(state, dict):
                raise ValueError
        except (OSError, ValueError):
            state = {}
        yield state
        tmp = folder / f"uids.json.{os.getpid()}"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease() -> int:
    """A uid of the range that no lease holds and no process has; leased to this process."""
    with _locked() as state:
        raw = state.get("leases")
        leases = {int(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        leases = {u: holder for u, holder in leases.items() if _alive(holder)}
        busy = uids_in_use()
        nxt = state.get("next")
        n = nxt if isinstance(nxt, int) and 0 <= nxt < LEASE_COUNT else 0
        for _ in range(LEASE_COUNT):
            uid = LEASE_BASE + n
            n = (n + 1) % LEASE_COUNT
            if uid not in leases and uid not in busy:
                leases[uid] = os.getpid()
                state["next"] = n
                state["leases"] = {str(u): h for u, h in leases.items()}
                return uid
    raise UidLeaseError("every sandbox uid is in use")


def release(uid: int) -> None:
    """Give ``uid`` back (call only once no process of it is left)."""
    with _locked() as state:
        raw = state.get("leases")
        if isinstance(raw, dict):
            raw.pop(str(uid), None)


def is_leased(uid: int) -> bool:
    """Whether ``uid`` is currently leased (to a live holder)."""
    with _locked() as state:
        raw = state.get("leases")
        holder = raw.get(str(uid)) if isinstance(raw, dict) else None
        return isinstance(holder, int) and _alive(holder)
