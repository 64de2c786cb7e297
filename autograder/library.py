"""An assignment's student library: its own folder plus the shared files it declares.

Files that every assignment of a course gives its students (CS231n's
``solver.py``, ``gradient_check.py``, ``vis_utils.py``, ``data_utils.py``, the
self-check machinery and ``submit.py``) are written once, in a folder of
``source/_common/`` laid out like an assignment folder::

    source/_common/cs231n/submit.py              -> <assignment>/submit.py
    source/_common/cs231n/cs231n/solver.py       -> <assignment>/cs231n/solver.py

An assignment takes all of them by declaring, in its ``tasks.toml``::

    [student_library]
    common = "cs231n"

and everything that reads the master copy sees the assembled folder: generation
(``release/<a>``), the executed solutions (``solutions/<a>``), the reference
submission of the tests and the grader's reference loader. A file may have only
one source: an assignment file at the path of a shared one is an error, never a
silent override. ``_common`` (like any folder of ``source/`` whose name starts
with ``_`` or ``.``) is not an assignment.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from autograder.config import SUITES_DIR, ConfigError, StudentLibrary, load_tasks

#: The folder of ``source/`` that holds the shared student files, one subfolder per set.
COMMON_DIR = "_common"
#: Names never taken from a shared folder (caches, build products).
SKIPPED = ("__pycache__", ".ipynb_checkpoints", "build")
SKIPPED_SUFFIXES = (".pyc", ".so", ".c")


class LibraryError(ConfigError):
    """The shared student library is missing or clashes with an assignment's own files."""


def is_assignment_dir(path: Path) -> bool:
    """Whether ``path`` (a folder of ``source/``) is an assignment, not ``_common`` or hidden."""
    return path.is_dir() and not path.name.startswith(("_", "."))


def assignment_dirs(source_root: Path) -> list[Path]:
    """The assignment folders of ``source_root`` (``source/``), sorted by name."""
    if not source_root.is_dir():
        return []
    return sorted(p for p in source_root.iterdir() if is_assignment_dir(p))


def declared(assignment: str, suites_dir: Path = SUITES_DIR) -> StudentLibrary:
    """The ``[student_library]`` declaration of ``assignment``'s installed suite.

    An assignment without a suite (a test's toy course) takes no shared files.
    """
    tasks = suites_dir / assignment / "tasks.toml"
    if not tasks.is_file():
        return StudentLibrary()
    return load_tasks(tasks).student_library


def _counts(path: Path, base: Path) -> bool:
    parts = path.relative_to(base).parts
    return (path.is_file() and not any(p in SKIPPED for p in parts)
            and not path.name.endswith(SKIPPED_SUFFIXES))


def shared_folder(assignment_dir: Path, decl: StudentLibrary) -> Path | None:
    """``source/_common/<common>`` for the assignment at ``assignment_dir`` (None: takes none)."""
    if decl.common is None:
        return None
    folder = Path(assignment_dir).parent / COMMON_DIR / decl.common
    if not folder.is_dir():
        raise LibraryError(f"{folder}: the shared student library that [student_library] "
                           f"common = {decl.common!r} names does not exist")
    return folder


def shared_files(assignment_dir: Path, decl: StudentLibrary) -> dict[str, Path]:
    """The shared files the assignment takes: path in the assignment -> the one source file.

    Raises :class:`LibraryError` when the shared folder is missing or when the
    assignment has a file of its own at the path of a shared one.
    """
    assignment_dir = Path(assignment_dir)
    folder = shared_folder(assignment_dir, decl)
    if folder is None:
        return {}
    files = {p.relative_to(folder).as_posix(): p
             for p in sorted(folder.rglob("*")) if _counts(p, folder)}
    clashes = [rel for rel in files if (assignment_dir / rel).exists()]
    if clashes:
        raise LibraryError(
            f"{assignment_dir}: {', '.join(clashes)} also in the shared library {folder}; a file "
            f"has one source: delete the assignment's copy (or stop sharing the file)")
    return files


def overlay(assignment_dir: Path, decl: StudentLibrary, dest: Path) -> list[Path]:
    """Copy the shared files into ``dest`` (a copy of the assignment folder); return them.

    The copies are plain writable files (mode 0644), whatever the source's mode.
    """
    written = []
    for rel, src in shared_files(assignment_dir, decl).items():
        target = Path(dest) / rel
        if target.exists():
            raise LibraryError(f"{target}: already exists; the shared file {src} would replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        target.chmod(0o644)
        written.append(target)
    return written


def assemble(assignment_dir: Path, decl: StudentLibrary, dest: Path,
             ignore: Callable[[str, list[str]], set[str]] | None = None) -> None:
    """Copy the assignment folder to ``dest`` (which must not exist) with its shared files."""
    shared_files(assignment_dir, decl)  # fail before writing anything
    shutil.copytree(assignment_dir, dest, ignore=ignore)
    overlay(assignment_dir, decl, dest)


def package_dirs(assignment_dir: Path, library: str, decl: StudentLibrary) -> list[Path]:
    """The folders that make up the package ``library``: the assignment's own, then the shared one.

    The grader imports the reference with this list as the package's ``__path__``,
    so it sees the assembled library without a copy. Shared modules must sit
    directly in the package (a shared subpackage would hide the assignment's).
    """
    own = Path(assignment_dir) / library
    files = shared_files(assignment_dir, decl)
    in_package = [rel for rel in files if rel.startswith(f"{library}/")]
    nested = [rel for rel in in_package if rel.count("/") > 1]
    if nested:
        raise LibraryError(f"shared files must sit directly in the package {library}/, not in "
                           f"a subpackage: {', '.join(nested)}")
    if not in_package:
        return [own]
    return [own, files[in_package[0]].parent]


def library_files(assignment_dir: Path, library: str, decl: StudentLibrary) -> dict[str, Path]:
    """Every file of the assembled package ``library``: path inside it -> its source file."""
    own = Path(assignment_dir) / library
    found = {p.relative_to(own).as_posix(): p for p in sorted(own.rglob("*")) if _counts(p, own)}
    for rel, src in shared_files(assignment_dir, decl).items():
        if rel.startswith(f"{library}/"):
            found[rel[len(library) + 1:]] = src
    return dict(sorted(found.items()))
