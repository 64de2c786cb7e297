"""sha256 fingerprints that decide whether a re-run of a batch may skip a student.

:func:`fingerprint` identifies a submission (a zip's bytes, or a directory's
counting file names and bytes); :func:`grader_key` identifies the grader that
graded it (hidden suite, reference library, grading options). Which files of a
tree count and how a tree is walked and hashed is :mod:`autograder.tree`'s
rule, the same as the intake's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from autograder import config as cfg
from autograder import library
from autograder.options import GradeOptions
from autograder.tree import BUILD_SUFFIXES, fingerprint, hash_tree

__all__ = ["fingerprint", "grader_key", "reference_fingerprint"]


def reference_fingerprint(library_dir: Path, shared: cfg.StudentLibrary) -> str:
    """sha256 of a reference library: its own folder and its shared modules
    (``source/_common/...``, :mod:`autograder.library`), build outputs left out.

    The key of the remembered reference results
    (:class:`autograder.reference.ReferenceResults`) and part of :func:`grader_key`.
    """
    h = hashlib.sha256()
    own, *others = library.package_dirs(library_dir.parent, library_dir.name, shared)
    hash_tree(h, own, skip_suffixes=BUILD_SUFFIXES)
    for folder in others:
        h.update(b"shared\0")
        hash_tree(h, folder, skip_suffixes=BUILD_SUFFIXES)
    return h.hexdigest()


def grader_key(spec: cfg.AssignmentSpec, suite: Path, course_root: Path | None,
               options: GradeOptions) -> str:
    """sha256 of what decides a grade besides the submission: the suite's files, the
    reference library (``source/<assignment>/<library>`` and its shared modules,
    compiled files left out) and the options (paths left out, the data setting of the
    environment in; not the seed)."""
    h = hashlib.sha256()
    h.update(b"suite\0")
    hash_tree(h, suite)
    if course_root is not None:
        ref = course_root / "source" / spec.name / spec.library
        if ref.is_dir():
            h.update(b"reference\0" + reference_fingerprint(ref, spec.student_library).encode())
    # not the seed: a drawn seed differs on every run, and any seed grades alike (whether an
    # unchanged student is skipped is decided on the seed separately, see batch.grade_all)
    opts = {k: v for k, v in asdict(options).items()
            if k not in ("suite_dir", "course_root", "seed")}
    opts["data_env"] = os.environ.get("CVCOURSE_DATA_DIR")
    h.update(json.dumps(opts, sort_keys=True).encode())
    return h.hexdigest()
