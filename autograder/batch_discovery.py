"""Finding one submission per student in a folder (plain or nbgrader's layout).

``SUBMISSIONS`` is either a plain folder holding one entry per student - a
directory or a ``.zip`` named by the student id (``alice/``, ``bob.zip``) -
or nbgrader's layout: a course directory holding ``submitted/``, or that
``submitted/`` folder itself, where each student's submission is
``submitted/<student>/<assignment>/``. Hidden entries (``.x``) are ignored,
other files are ignored with a note, and two entries for one student are
refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder.tree import SKIP_DIRS

__all__ = ["BatchError", "Discovery", "SubmissionEntry", "discover"]


class BatchError(Exception):
    """A problem with the batch as a whole (no submissions, two for one student...)."""


@dataclass(frozen=True)
class SubmissionEntry:
    """One student's submission: ``layout`` is ``directory``, ``zip`` or ``nbgrader``."""

    student: str
    path: Path
    layout: str
    timestamp: str | None = None  # nbgrader's timestamp.txt, when present


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: entries sorted by student, the layout, notes."""

    entries: list[SubmissionEntry]
    layout: str  # "folder" or "nbgrader"
    course_dir: Path | None  # the nbgrader course directory (parent of submitted/)
    notes: list[str] = field(default_factory=list)


def _valid_student(name: str) -> bool:
    return bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name \
        and name.isprintable() and len(name) <= 128


def _read_timestamp(folder: Path) -> str | None:
    try:
        text = (folder / "timestamp.txt").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def discover(submissions: str | os.PathLike[str], assignment: str, *,
             exclude: Sequence[str | os.PathLike[str]] = ()) -> Discovery:
    """Find the submissions under ``submissions`` (see the module docstring).

    Paths in ``exclude`` (e.g. the output folder) are skipped. Raises
    :class:`BatchError` when ``submissions`` is not a directory, holds no
    submission, or holds two for one student.
    """
    root = Path(submissions)
    if not root.is_dir():
        raise BatchError(f"submissions folder {root} is not a directory")
    root = root.resolve()
    excluded = {Path(p).resolve() for p in exclude}
    notes: list[str] = []
    entries: dict[str, SubmissionEntry] = {}
    course_dir: Path | None = None
    if root.name == "submitted" or (root / "submitted").is_dir():
        layout = "nbgrader"
        if root.name != "submitted":
            root = root / "submitted"
        course_dir = root.parent
        for child in sorted(root.iterdir()):
            if child.name.startswith(".") or not child.is_dir() or child in excluded:
                continue
            folder = child / assignment
            if not _valid_student(child.name):
                notes.append(f"ignored {child.name!r}: not usable as a student id")
            elif folder.is_dir():
                entries[child.name] = SubmissionEntry(child.name, folder, "nbgrader",
                                                      _read_timestamp(folder))
            else:
                notes.append(f"{child.name} has no submission of {assignment}")
    else:
        layout = "folder"
        for child in sorted(root.iterdir()):
            name = child.name
            if name.startswith(".") or name in SKIP_DIRS or \
                    Path(os.path.realpath(child)) in excluded:  # never raises on a link loop
                continue
            if child.is_dir():
                student, kind = name, "directory"
            elif child.is_file() and name.lower().endswith(".zip"):
                student, kind = name[:-4], "zip"
            else:
                notes.append(f"ignored {name}: not a folder or a .zip file")
                continue
            if not _valid_student(student):
                notes.append(f"ignored {name!r}: not usable as a student id")
                continue
            if student in entries:
                raise BatchError(f"two submissions for student {student}: "
                                 f"{entries[student].path.name} and {name}")
            entries[student] = SubmissionEntry(student, child, kind)
    if not entries:
        raise BatchError(f"no submissions of {assignment} found in {Path(submissions)}")
    return Discovery(entries=[entries[k] for k in sorted(entries)], layout=layout,
                     course_dir=course_dir, notes=notes)
