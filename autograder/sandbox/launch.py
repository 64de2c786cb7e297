"""Starting a worker or fork-server process: scratch folder, confinement plan, limits, env.

The worker side (``worker.py`` and the modules it loads) is copied into the
scratch folder as ``_autograder_<name>.py`` files (:data:`WORKER_FILES`): the
worker imports only those and the standard library (numpy after
confinement), never the ``autograder`` package, which a confined worker
cannot even see.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

from autograder.sandbox import uids
from autograder.sandbox.errors import WorkerDied
from autograder.sandbox.paths import default_hidden_paths, default_kept_paths, python_paths

__all__ = ["CONFINED_NOTE", "DEFAULT_NPROC_LIMIT", "THREAD_ENV", "WORKER_FILES", "Launch",
           "WorkerSettings", "confined_note", "containment_note"]

DEFAULT_NPROC_LIMIT = 64  # processes and threads of a confined worker's uid
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # all set to 1 in the worker
CONFINED_NOTE = ("worker confined: private mount and network namespaces, course and grader "
                 "hidden, runs as {who}")
_HERE = Path(__file__).resolve().parent
# Copied next to the worker as _autograder_<name>.py: source file -> name.
WORKER_FILES = {
    _HERE / "worker.py": "worker",
    _HERE / "handler.py": "handler",
    _HERE / "protocol.py": "protocol",
    _HERE / "jail.py": "jail",
    _HERE.parent / "extensions.py": "extensions",
}


def confined_note(user: str | None) -> str:
    """The report's note for a worker confined as ``user`` (``None``: a uid of its own)."""
    return CONFINED_NOTE.format(who=f"user {user!r}" if user else "a uid of its own")


def containment_note(info: dict[str, Any]) -> str:
    """What the report adds about leftovers, from a confined process's ``info``."""
    if info.get("pid_namespace") and info.get("ipc_namespace") and info.get("private_shm"):
        return ("; nothing outlives the submission: PID and IPC namespaces, private "
                "/dev/shm, a uid of its own never reused while a process has it")
    missing = [str(m) for m in info.get("missing") or []] or ["private /dev/shm"]
    return ("; NOT contained: no " + ", no ".join(missing)
            + " (leftovers are killed by uid, which a process forking during the clean-up "
            "can outlive; SysV IPC objects are not private)")


class WorkerSettings(Protocol):
    """What :meth:`Launch.prepare` reads of a Sandbox or a Zygote."""

    submission_root: Path
    library: str
    python: str
    sandbox_user: str | None
    hide: list[str]
    keep: list[str]
    memory_limit_mb: int | None
    fsize_limit_mb: int
    nproc_limit: int
    ext_dir: str | None


class Launch:
    """What starting a worker or zygote process needs: confinement plan, scratch, env."""

    def __init__(self) -> None:
        self.confine = False
        self.uid: int | None = None
        self.gid: int | None = None
        self.leased = False  # the uid came from autograder.sandbox.uids: give it back
        self.note = ""
        self.scratch = Path()
        self.work = Path()
        self.plan: dict[str, Any] | None = None
        self.python = sys.executable
        self.base_cfg: dict[str, Any] = {}
        self.limits: tuple[int | None, int, int | None] = (None, 0, None)

    @classmethod
    def prepare(cls, owner: WorkerSettings, mode: str, confine: bool, note: str) -> Launch:
        """Lay out a scratch directory for ``owner`` (confined or not, as decided by the
        caller: see :func:`autograder.sandbox.sandbox.resolve_isolation`)."""
        self = cls()
        self.python = owner.python
        self.note = note
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
        for source, name in WORKER_FILES.items():
            shutil.copyfile(source, scratch / f"_autograder_{name}.py")
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
                         *owner.keep, *python_paths(owner.python),
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

