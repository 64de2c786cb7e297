"""nbgrader hooks that make ``generate_assignment`` strip library modules too.

nbgrader copies non-notebook files verbatim and swallows any ``Exception`` a
hook raises (it only logs it at INFO level). So these hooks fail closed with
``SystemExit``, which nbgrader does not catch: the command exits non-zero, the
message is on stderr, and the partial output is removed. Run through
``python -m coursegen.release`` (``make release``), nbgrader writes into a
staging folder, so a failed generation leaves the committed ``release/<a>``
as it was.

Before anything is written, :func:`pre_convert` checks the assignment against
its declaration (``autograder/suites/<a>/tasks.toml``): every
``### BEGIN SOLUTION <id>`` of the library names a declared task (or a declared
ungraded region), and every marker of every notebook cell is well formed (an
error names the notebook and the cell). :func:`post_convert` strips the
solutions from the released modules, removes the declared instructor-only
files and writes the students' ``submission.toml`` from the declaration.

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
from autograder.config import AssignmentSpec, ConfigError, course_suites_dir, load_assignment

from .manifest import write_submission_toml
from .modules import MarkerError, check_tree, transform_tree
from .notebooks import CellMarkerError, check_notebook_markers


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


def _declaration(assignment: str, source: Path, release: Path) -> AssignmentSpec:
    """The assignment's declaration (in the course's ``autograder/suites``, else the installed suites)."""
    try:
        return load_assignment(assignment, course_suites_dir(source.parent.parent))
    except ConfigError as err:
        _fail(f"no valid declaration of {assignment}, nothing generated: {err}", release)
        raise  # unreachable: _fail exits


def pre_convert(assignment: str, student: str, notebooks: Sequence[str]) -> None:
    """Validate the modules' and notebooks' markers and the shared library against the declaration."""
    source, release = _course_dirs(assignment, notebooks)
    if not library.is_assignment_dir(source):
        _fail(f"{source.name} is not an assignment (folders of source/ named _* hold the shared "
              f"student library, and go into the assignments that declare them)")
    spec = _declaration(assignment, source, release)
    try:
        check_tree(source, spec.region_ids)
        library.shared_files(source, spec.student_library)  # the shared folder exists, no file has two sources
        shared = library.shared_folder(source, spec.student_library)
        if shared is not None:
            check_tree(shared, spec.region_ids)
        for path in sorted(source.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                check_notebook_markers(path, name=str(path.relative_to(source.parent)))
    except (MarkerError, CellMarkerError) as err:
        _fail(f"malformed marker, nothing generated: {err}", release)
    except ConfigError as err:
        _fail(f"the shared student library of {assignment}: {err}", release)
    except Exception as err:  # noqa: BLE001 - nbgrader would swallow it otherwise
        _fail(f"could not read the modules or notebooks of {assignment}: {err}", release)


def post_convert(assignment: str, student: str, notebooks: Sequence[str]) -> None:
    """Add the shared student files, stub the solutions, drop instructor-only files, write ``submission.toml``."""
    source, release = _course_dirs(assignment, notebooks)
    spec = _declaration(assignment, source, release)
    try:
        library.overlay(source, spec.student_library, release)
        changed = transform_tree(release, mode="release")
        for rel in spec.instructor_only:
            (release / rel).unlink(missing_ok=True)
        write_submission_toml(spec, release)
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
