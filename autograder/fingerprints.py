"""sha256 fingerprints that decide whether a re-run of a batch may skip a student.

:func:`fingerprint` identifies a submission (a zip's bytes, or a directory's
file names and bytes); :func:`grader_key` identifies the grader that graded
it (hidden suite, reference library, grading options).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder import library
from autograder.options import GradeOptions
from autograder.submission import SKIP_DIRS

__all__ = ["fingerprint", "grader_key"]


def _hash_file(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)


def _hash_tree(h: Any, root: Path, skip_files: tuple[str, ...] = (".pyc", ".pyo")) -> None:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        links = [d for d in dirnames if (base / d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and d not in links)
        for name in sorted([*filenames, *links]):
            if name.endswith(skip_files):
                continue
            full = base / name
            rel = full.relative_to(root).as_posix().encode("utf-8", "surrogateescape")
            if full.is_symlink():
                h.update(b"L\0" + rel + b"\0" + os.readlink(full).encode("utf-8",
                                                                       "surrogateescape") + b"\0")
            elif full.is_file():
                h.update(b"F\0" + rel + b"\0" + str(full.stat().st_size).encode() + b"\0")
                _hash_file(h, full)


def fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a submission: a file's bytes, or a directory's file names and bytes.

    Compiled files (``.pyc``) and the folders the intake ignores
    (``__pycache__``, ``.git``...) do not count.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_file():
        h.update(b"zip\0")
        _hash_file(h, p)
    else:
        h.update(b"dir\0")
        _hash_tree(h, p)
    return h.hexdigest()


def grader_key(spec: cfg.AssignmentSpec, suite: Path, course_root: Path | None,
               options: GradeOptions) -> str:
    """sha256 of what decides a grade besides the submission: the suite's files, the
    reference library (``source/<assignment>/<library>`` and its shared modules,
    compiled files left out) and the options (paths left out, the data setting of the
    environment in)."""
    h = hashlib.sha256()
    h.update(b"suite\0")
    _hash_tree(h, suite)
    if course_root is not None:
        ref = course_root / "source" / spec.name / spec.library
        if ref.is_dir():
            h.update(b"reference\0")
            own, *shared = library.package_dirs(ref.parent, spec.library, spec.student_library)
            _hash_tree(h, own, skip_files=(".pyc", ".pyo", ".so", ".c"))
            for folder in shared:  # source/_common/<common>/<library> (autograder/library.py)
                h.update(b"shared\0")
                _hash_tree(h, folder, skip_files=(".pyc", ".pyo", ".so", ".c"))
    opts = {k: v for k, v in asdict(options).items() if k not in ("suite_dir", "course_root")}
    opts["data_env"] = os.environ.get("CVCOURSE_DATA_DIR")
    h.update(json.dumps(opts, sort_keys=True).encode())
    return h.hexdigest()
