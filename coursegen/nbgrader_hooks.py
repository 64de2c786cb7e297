"""nbgrader hooks that make ``generate_assignment`` strip library modules too.

nbgrader copies non-notebook files verbatim and swallows any ``Exception`` a
hook raises (it only logs it at INFO level). So these hooks fail closed with
``SystemExit``, which nbgrader does not catch: the command exits non-zero, the
message is on stderr, and no partial release is left behind.

``nbgrader_config.py`` installs them::

    c.GenerateAssignment.pre_convert_hook = coursegen.nbgrader_hooks.pre_convert
    c.GenerateAssignment.post_convert_hook = coursegen.nbgrader_hooks.post_convert
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from autograder import library
from autograder.config import ConfigError

from .modules import MarkerError, check_tree, transform_tree

#: Files of the master copy that are the reference's own and never go to students:
#: the reference's trained PyTorch weights (Assignment 2). The reference submission
#: (``coursegen.mutants.build_reference_submission``) keeps them.
INSTRUCTOR_ONLY_FILES = ("my_model_weights.npz",)


def _course_dirs(assignment: str, notebooks: Sequence[str]) -> tuple[Path, Path]:
    """(source dir, release dir) of ``assignment`` for the running nbgrader app."""
    from traitlets.config import Application

    app = Application.instance() if Application.initialized() else None
    coursedir = getattr(app, "coursedir", None)
    if coursedir is not None:
        source = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
        release = Path(coursedir.format_path(coursedir.release_directory, ".", assignment))
        return source, release
    # Fallback: the standard layout root/source/<assignment>/<notebook>.
    if not notebooks:
        raise SystemExit(f"coursegen: cannot locate the course directory of {assignment!r}")
    source = Path(notebooks[0]).resolve().parent
    return source, source.parent.parent / "release" / assignment


def _fail(message: str, release: Path | None = None) -> None:
    if release is not None and release.exists():
        shutil.rmtree(release, ignore_errors=True)
    print(f"[coursegen] ERROR: {message}", file=sys.stderr)
    if release is not None:
        print(f"[coursegen] removed the partial release {release}", file=sys.stderr)
    raise SystemExit(1)


def pre_convert(assignment: str, student: str, notebooks: Sequence[str]) -> None:
    """Validate every module's markers before nbgrader writes anything."""
    source, release = _course_dirs(assignment, notebooks)
    if not library.is_assignment_dir(source):
        _fail(f"{source.name} is not an assignment (folders of source/ named _* hold the shared "
              f"student library, and go into the assignments that declare them)")
    try:
        check_tree(source)
        decl = library.declared(assignment)
        library.shared_files(source, decl)  # the shared folder exists, no file has two sources
        shared = library.shared_folder(source, decl)
        if shared is not None:
            check_tree(shared)
    except MarkerError as err:
        _fail(f"malformed marker, nothing generated: {err}", release)
    except ConfigError as err:
        _fail(f"the shared student library of {assignment}: {err}", release)
    except Exception as err:  # noqa: BLE001 - nbgrader would swallow it otherwise
        _fail(f"could not read the modules of {assignment}: {err}", release)


def post_convert(assignment: str, student: str, notebooks: Sequence[str]) -> None:
    """Add the shared student files, replace solution regions with stubs, drop instructor-only files."""
    source, release = _course_dirs(assignment, notebooks)
    try:
        library.overlay(source, library.declared(assignment), release)
        changed = transform_tree(release, mode="release")
        for name in INSTRUCTOR_ONLY_FILES:
            for path in release.rglob(name):
                path.unlink()
    except Exception as err:  # noqa: BLE001 - nbgrader would swallow it otherwise
        _fail(f"stripping the modules of {assignment} failed: {err}", release)
    else:
        print(f"[coursegen] stripped solutions from {len(changed)} module(s) in {release}", file=sys.stderr)


def student_modules(source_root: Path, assignment: str) -> list[str]:
    """Relative paths of every non-notebook file of an assignment, its shared files included.

    ``nbgrader autograde`` would overwrite these with the instructor's copies
    (``Autograde.exclude_overwriting``): we list them all so it grades the
    student's own code.
    """
    base = source_root / assignment
    if not library.is_assignment_dir(base):
        return []
    own = [
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file()
        and p.suffix != ".ipynb"
        and not any(part in {"__pycache__", ".ipynb_checkpoints"} for part in p.parts)
    ]
    return sorted([*own, *library.shared_files(base, library.declared(assignment))])
