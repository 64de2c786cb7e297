"""Submitted trees: which files count, walking them safely, fingerprinting them.

The one place that decides, for the intake (:mod:`autograder.submission`), the
class-grading fingerprints (:mod:`autograder.batch`) and the grader's own key
(suite and reference library), which entries of a tree count and how a tree
is walked. A submitted tree is untrusted, so:

- walks are iterative (an explicit stack, never recursion: a 1000-level
  folder chain costs memory, not the interpreter's stack);
- walks never follow symbolic links and never open anything but regular
  files (a FIFO, socket or device is reported, never read: reading a FIFO
  blocks forever);
- :func:`walk` stops with a :class:`TreeProblem` (a message meant for the
  student) on a folder deeper than :data:`MAX_DEPTH`, a name longer than
  :data:`MAX_NAME_BYTES`, a path longer than :data:`MAX_PATH_BYTES`, more than
  :data:`MAX_ENTRIES` entries, a FIFO, socket or device file, or a folder it
  cannot read;
- :func:`fingerprint` never raises for a tree's shape: a tree :func:`walk`
  refuses, or a file it cannot read, still gets a stable fingerprint (the
  problem's text is hashed), so class grading goes on and grades it, and the
  intake then reports the problem to the student.

What counts (:func:`counts`): everything except the folders in
:data:`SKIP_DIRS` (``__pycache__``, ``.git``...), macOS's ``__MACOSX``,
``.DS_Store`` and AppleDouble ``._*`` files, and compiled ``.pyc``/``.pyo``
files. The intake copies exactly the entries that count and fingerprints
hash exactly those, so two submissions with the same fingerprint are graded
the same way.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "BUILD_SUFFIXES",
    "COMPILED_SUFFIXES",
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "SKIP_DIRS",
    "Entry",
    "TreeProblem",
    "check_path",
    "counts",
    "fingerprint",
    "hash_tree",
    "walk",
]

#: Folders that never count (caches, version control, macOS resource forks).
SKIP_DIRS = frozenset({"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"})
#: File suffixes that never count (compiled Python).
COMPILED_SUFFIXES = (".pyc", ".pyo")
#: Build outputs of the reference library (compiled in place) that its fingerprint ignores.
BUILD_SUFFIXES = (".so", ".pyd", ".c")
#: Deepest folder level a submission may have (the library is 1-3 levels deep).
MAX_DEPTH = 32
#: Longest single file or folder name, in bytes of UTF-8 (Linux's NAME_MAX).
MAX_NAME_BYTES = 255
#: Longest path relative to the tree's top, in bytes of UTF-8.
MAX_PATH_BYTES = 1024
#: Most entries (files, folders, links) one walk visits.
MAX_ENTRIES = 20000
_READ_CHUNK = 1 << 20


class TreeProblem(Exception):
    """A tree that cannot be taken as it is; ``message`` says why, for the student."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Entry:
    """One entry of a walk: ``kind`` is ``dir``, ``file`` or ``link``.

    ``rel`` is the path from the tree's top, ``path`` the full path, ``size``
    the file's size (0 for folders and links).
    """

    rel: PurePosixPath
    path: Path
    kind: str
    size: int = 0


def counts(parts: tuple[str, ...]) -> bool:
    """True when the file at relative path ``parts`` counts (see the module docstring)."""
    if not parts:
        return False
    name = parts[-1]
    return not (any(p in SKIP_DIRS for p in parts[:-1]) or name.startswith("._")
                or name in (".DS_Store", "__MACOSX") or name.endswith(COMPILED_SUFFIXES))


def _shown(rel: PurePosixPath | str) -> str:
    text = str(rel)
    return text if len(text) <= 200 else text[:120] + "..." + text[-60:]


def check_path(parts: tuple[str, ...]) -> None:
    """Raise :class:`TreeProblem` when a relative path is too deep or too long."""
    if len(parts) > MAX_DEPTH:
        raise TreeProblem(f"the submission has folders nested more than {MAX_DEPTH} levels "
                          f"deep: {_shown('/'.join(parts))}")
    total = 0
    for part in parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            raise TreeProblem(f"the submission has a file or folder name longer than "
                              f"{MAX_NAME_BYTES} bytes: {_shown(part)}")
        total += size + 1
    if total > MAX_PATH_BYTES:
        raise TreeProblem(f"the submission has a path longer than {MAX_PATH_BYTES} bytes: "
                          f"{_shown('/'.join(parts))}")


def _special(mode: int) -> str | None:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        return "a special file"
    return None


def walk(root: str | os.PathLike[str], *, skip: bool = True) -> Iterator[Entry]:
    """Every entry under ``root`` (not ``root`` itself), folders before their contents.

    Iterative, sorted by name, never follows links. With ``skip`` (default),
    folders in :data:`SKIP_DIRS` are not entered and files that do not
    :func:`count <counts>` are not yielded. Raises :class:`TreeProblem` for the
    limits and entries listed in the module docstring.
    """
    top = Path(root)
    seen = 0
    stack: list[tuple[Path, tuple[str, ...]]] = [(top, ())]
    while stack:
        folder, parts = stack.pop()
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            where = f"the folder {_shown('/'.join(parts))}" if parts else "the top folder"
            raise TreeProblem(f"cannot read {where} of the submission "
                              f"({exc.strerror or exc})") from None
        subdirs: list[tuple[Path, tuple[str, ...]]] = []
        for child in children:
            seen += 1
            if seen > MAX_ENTRIES:
                raise TreeProblem(f"the submission has more than {MAX_ENTRIES} files and "
                                  "folders")
            rel_parts = (*parts, child.name)
            check_path(rel_parts)
            rel = PurePosixPath(*rel_parts)
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as exc:
                raise TreeProblem(f"cannot read {_shown(rel)} in the submission "
                                  f"({exc.strerror or exc})") from None
            mode, size = st.st_mode, st.st_size
            what = _special(mode)
            if what is not None:
                raise TreeProblem(f"the submission contains {what}: {_shown(rel)}; submit "
                                  "only ordinary files and folders")
            if stat.S_ISLNK(mode):
                if not skip or counts(rel_parts):
                    yield Entry(rel, Path(child.path), "link")
            elif stat.S_ISDIR(mode):
                if skip and child.name in SKIP_DIRS:
                    continue
                yield Entry(rel, Path(child.path), "dir")
                subdirs.append((Path(child.path), rel_parts))
            elif not skip or counts(rel_parts):
                yield Entry(rel, Path(child.path), "file", size)
        stack.extend(reversed(subdirs))  # depth first, in name order


def open_regular(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading only if it is a regular file (never a FIFO or a link).

    Returns a file descriptor; raises :class:`OSError` otherwise (``EINVAL``
    for a file that is not regular).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(22, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _hash_file(h: Any, path: Path) -> None:
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            h.update(chunk)


def hash_tree(h: Any, root: str | os.PathLike[str],
              skip_suffixes: tuple[str, ...] = ()) -> None:
    """Feed ``root``'s counting files (names and bytes) and links (targets) into ``h``.

    Files ending with ``skip_suffixes`` do not count either (for the
    reference library: its build outputs). Never raises for the tree's
    shape or an unreadable file: the problem's text is hashed instead.
    """
    try:
        for entry in walk(root):
            if entry.kind == "dir" or entry.rel.name.endswith(skip_suffixes):
                continue
            rel = str(entry.rel).encode("utf-8", "surrogateescape")
            if entry.kind == "link":
                try:
                    target = os.readlink(entry.path)
                except OSError as exc:
                    target = f"<unreadable: {exc.strerror}>"
                h.update(b"L\0" + rel + b"\0" + target.encode("utf-8", "surrogateescape")
                         + b"\0")
                continue
            h.update(b"F\0" + rel + b"\0" + str(entry.size).encode() + b"\0")
            try:
                _hash_file(h, entry.path)
            except OSError as exc:
                h.update(b"E\0" + str(exc.strerror or exc).encode("utf-8", "replace") + b"\0")
    except TreeProblem as problem:
        h.update(b"P\0" + problem.message.encode("utf-8", "surrogateescape") + b"\0")


def fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 of a submission: a file's bytes, or a folder's counting file names and bytes.

    Never raises: a missing, unreadable or special file, or a tree
    :func:`walk` refuses, gets a fingerprint of its problem.
    """
    p = Path(path)
    h = hashlib.sha256()
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        h.update(b"missing\0" + str(exc.strerror or exc).encode("utf-8", "replace"))
        return h.hexdigest()
    if stat.S_ISDIR(mode):
        h.update(b"dir\0")
        hash_tree(h, p)
        return h.hexdigest()
    h.update(b"zip\0")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # the link is the student's
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(22, "not a regular file")
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as fh:
            while chunk := fh.read(_READ_CHUNK):
                h.update(chunk)
    except OSError as exc:
        h.update(b"E\0" + str(exc.strerror or exc).encode("utf-8", "replace"))
    return h.hexdigest()
