"""The grader's build of a submission's extension: judged and kept by the grader.

:func:`build_submission` compiles the submission's Cython sources (declared in
the ``[build]`` table of ``tasks.toml``, see :mod:`autograder.extensions`) once, before any
of the submission's code runs, in a confined worker of its own (a uid of its
own, no student module imported). Once that worker and everything it started
are gone, the grader itself checks that every declared module was compiled
and copies the package (regular files only, no link followed) into a folder
of its own, read-only to others, which the student's workers get read-only
and first on ``sys.path``. Whether the build succeeded is the grader's own
record, in memory (:class:`SubmissionBuild`): nothing a worker writes can
change it, and nothing the student shipped (a ``.so``, a ``.c``, a "built"
marker) is ever imported or believed. A failed build fails only the tests of
the declared tasks, with the compiler's message (:func:`failure_message`);
the other tasks import the submission's sources as usual.

Settings: ``MAX_OUTPUT_FILES`` and ``MAX_OUTPUT_BYTES`` bound what the grader
copies out of a build (past them the build counts as failed).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.config import BuildSpec
from autograder.extensions import LOG_TAIL
from autograder.sandbox import Sandbox, StudentError, WorkerDied

MAX_OUTPUT_FILES = 5000
MAX_OUTPUT_BYTES = 512 << 20


@dataclass
class SubmissionBuild:
    """The grader's record of a submission's extension build.

    ``ok``: every declared module was compiled; ``log``: the compiler's
    output tail (or why the build was refused); ``seconds``; ``path``: the
    grader-owned folder holding the compiled package (first on the workers'
    ``sys.path``), ``None`` unless ``ok``.
    """

    ok: bool
    log: str
    seconds: float
    path: Path | None = None

    def remove(self) -> None:
        """Delete the compiled copy (at the end of the submission's grading)."""
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def compiled_module(package: Path, source: str) -> Path | None:
    """The compiled module of ``source`` (``sub/x.pyx``) in ``package``, if any."""
    stem = Path(source).with_suffix("")
    folder = package / stem.parent
    if not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.startswith(stem.name + ".") and name.endswith((".so", ".pyd")) and \
                entry.is_file() and not entry.is_symlink():
            return entry
    return None


def copy_output(src: Path, dest: Path) -> None:
    """Copy a build's output tree: regular files and folders only, never following a
    link, owned by the grader, read-only to others. Raises ``ValueError`` past
    ``MAX_OUTPUT_FILES`` files or ``MAX_OUTPUT_BYTES`` bytes."""
    count = size = 0
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = os.path.relpath(root, src)
        target = dest / rel if rel != "." else dest
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(target, 0o755)
        dirs[:] = [d for d in dirs if d != "__pycache__"
                   and stat.S_ISDIR(os.lstat(os.path.join(root, d)).st_mode)]
        for name in files:
            path = os.path.join(root, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # a link, or gone
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                count += 1
                size += os.fstat(fd).st_size
                if count > MAX_OUTPUT_FILES or size > MAX_OUTPUT_BYTES:
                    raise ValueError("the build's output is too large")
                out = os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(out, "wb") as dst:
                    shutil.copyfileobj(fh, dst)


def build_submission(submission_root: Path, library: str, spec: BuildSpec, timeout: float,
                     **sandbox_args: Any) -> SubmissionBuild:
    """Compile the submission's extension before any of its code runs (see the module).

    ``sandbox_args`` go to the build's :class:`~autograder.sandbox.Sandbox`
    (isolation, user, interpreter, hidden paths, memory limit). A build that
    cannot even start (the grader's own failure) raises ``WorkerDied``.
    """
    t0 = time.monotonic()
    sb = Sandbox(submission_root, library, timeout=timeout + 30.0, start=False, **sandbox_args)
    out = Path(tempfile.mkdtemp(prefix="ag-ext-"))
    os.chmod(out, 0o755)
    result = SubmissionBuild(ok=False, log="", seconds=0.0)
    try:
        sb.start()
        try:
            said = sb.build(list(spec.sources), timeout=timeout)
        except (WorkerDied, StudentError) as exc:
            if isinstance(exc, WorkerDied) and exc.internal:
                raise
            said = {"ok": False, "log": f"the build stopped: {exc}"}
        if not isinstance(said, dict):
            said = {"ok": False, "log": "the build's worker gave no answer"}
        sb.stop()  # the build's processes are all gone: its files no longer change
        result.log = str(said.get("log", ""))[-LOG_TAIL:]
        built = (sb.work_dir or Path("/nonexistent")) / "ext" / library
        if said.get("ok") is True and built.is_dir() and not built.is_symlink():
            try:
                copy_output(built, out / library)
            except (OSError, ValueError) as exc:
                result.log += f"\nthe grader could not take the build's output: {exc}"
            else:
                missing = [s for s in spec.sources if compiled_module(out / library, s) is None]
                if missing:
                    result.log += (f"\nno compiled module for {', '.join(missing)} after "
                                   f"the build")
                else:
                    result.ok, result.path = True, out
    finally:
        sb.close()
        if not result.ok:
            shutil.rmtree(out, ignore_errors=True)
        result.seconds = round(time.monotonic() - t0, 3)
    return result


def failure_message(result: SubmissionBuild, sources: tuple[str, ...], library: str) -> str:
    """The student-facing message of a failed build (compiler output tail included)."""
    names = ", ".join(f"{library}/{s}" for s in sources)
    log = str(result.log or "no output")[-LOG_TAIL:]
    return (f"your Cython extension ({names}) did not compile, so this test could not run. "
            f"Build it yourself with `python build_ext.py`; the compiler said:\n{log}")


class BuildFailed(Exception):
    """The submission's Cython extension did not compile (message: the compiler's tail)."""


class ExtensionBuild:
    """A submission's extension build, done once, before any of its code runs.

    ``spec`` is the assignment's :class:`~autograder.config.BuildSpec` (``None``:
    nothing to build). ``result`` is the grader's record (``None`` until built).
    """

    def __init__(self, spec: BuildSpec | None) -> None:
        self.spec = spec
        self.result: SubmissionBuild | None = None

    def folder(self, task: str | None, submission_root: Path, library: str, deadline: float,
               **sandbox_args: Any) -> str | None:
        """Build (first call only); the compiled package's folder, or ``None``.

        Raises :class:`BuildFailed` when ``task`` needs the extension and the build
        failed. ``deadline`` (``time.monotonic()``) bounds the build's time.
        """
        if self.spec is None:
            return None
        if self.result is None:
            timeout = max(1.0, min(self.spec.timeout, deadline - time.monotonic()))
            self.result = build_submission(submission_root, library, self.spec, timeout,
                                           **sandbox_args)
        if task in self.spec.tasks and not self.result.ok:
            raise BuildFailed(failure_message(self.result, self.spec.sources, library))
        return str(self.result.path) if self.result.path else None

    def remove(self) -> None:
        """Delete the compiled copy (at the end of the submission's grading)."""
        if self.result is not None:
            self.result.remove()
