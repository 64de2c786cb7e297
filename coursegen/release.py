"""Generate a student release: ``python -m coursegen.release assignment1 [--root .]``.

Runs ``nbgrader generate_assignment ASSIGNMENT --force`` (with the course's
``nbgrader_config.py`` and its hooks, :mod:`coursegen.nbgrader_hooks`) into a
staging folder beside ``release/`` and, only when it succeeds, swaps the new
tree in for ``release/<assignment>``. A failed generation (a malformed marker,
an undeclared task id, a notebook nbgrader rejects) exits 1 with the reason and
leaves the committed release exactly as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .solutions import swap_in

#: The staging folders' name prefix (in the course root, ignored by git).
STAGING_PREFIX = ".release-staging-"


class ReleaseError(RuntimeError):
    """Generating the release failed; the committed release was not touched."""


def generate_release(assignment: str, root: Path, *, log_level: str = "WARN") -> Path:
    """Generate ``root/release/<assignment>`` through a staging folder; return its path.

    Raises :class:`ReleaseError` (with nbgrader's and the hooks' messages) when
    generation fails; ``release/<assignment>`` is then left untouched.
    """
    root = Path(root).resolve()
    if not (root / "source" / assignment).is_dir():
        raise ReleaseError(f"no master copy at {root / 'source' / assignment}")
    dest = root / "release" / assignment
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs alembic
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
             f"--log-level={log_level}", f"--CourseDirectory.release_directory={staging.name}"],
            cwd=root, env=env, capture_output=True, text=True, check=False,
        )
        sys.stderr.write(proc.stderr)
        staged = staging / assignment
        if proc.returncode != 0 or not staged.is_dir():
            tail = proc.stderr.strip().splitlines()[-5:] or [f"exit status {proc.returncode}"]
            raise ReleaseError("nbgrader generate_assignment failed: " + " | ".join(tail))
        dest.parent.mkdir(parents=True, exist_ok=True)
        swap_in(staged, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m coursegen.release",
        description="Generate release/<assignment> with nbgrader, replacing the old one only on success.",
    )
    parser.add_argument("assignment", help="assignment name, e.g. assignment1")
    parser.add_argument("--root", type=Path, default=Path("."), help="course root (default: .)")
    args = parser.parse_args(argv)
    try:
        out = generate_release(args.assignment, args.root)
    except ReleaseError as err:
        print(f"[release] ERROR: {err}", file=sys.stderr)
        print(f"[release] release/{args.assignment} was left as it was", file=sys.stderr)
        return 1
    print(f"[release] wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
