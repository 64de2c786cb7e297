"""Gradescope autograder bundles: ``autograder build ASSIGNMENT``.

:func:`build_bundle` writes one zip that Gradescope's "Zip file upload"
accepts. Gradescope unpacks it into ``/autograder/source``, runs ``setup.sh``
once as root when it builds the image, and runs ``run_autograder`` for every
submission with the student's files in ``/autograder/submission``; whatever
``/autograder/results/results.json`` holds afterwards is the grade.

Layout of the zip (every path relative, so it unpacks in place)::

    setup.sh            installs Python X.Y if needed, a venv, the pinned requirements
    run_autograder      grades /autograder/submission, always leaves results.json
    requirements.txt    the grading runtime, every package pinned with ==
    bundle.json         versions, settings and the sha256 of every other file
    course/             the course root handed to the grader (--course-root)
      autograder/       the grading engine, with only suites/<assignment>/
      source/<assignment>/<library>/   the reference library (no notebooks)
    packages/coursedata/   the data package, installed into the venv

The grader process runs the engine from ``course/`` (``PYTHONPATH``), where
the hidden suite sits inside the package as the configuration expects.
``setup.sh`` also copies the engine *without* ``suites/`` into the venv,
next to ``coursedata`` and the third-party packages: workers start with
``python -I`` and import ``autograder.sandbox`` from their interpreter's own
site-packages. A confined worker may read its interpreter's whole prefix (the
venv), so the venv holds nothing secret; everything else under
``/autograder`` (the bundle with the suites and the reference, the results)
is hidden from it.

Both scripts read ``AUTOGRADER_ROOT`` (default ``/autograder``), so the
unpacked bundle can be exercised against a temporary root laid out like
Gradescope's; ``setup.sh`` with ``AUTOGRADER_SKIP_INSTALL=1`` installs nothing
and checks the interpreter named by ``AUTOGRADER_PYTHON`` instead.

The scripts are templates in ``autograder/gradescope_templates/``; the files,
the scripts and the zip are handled by :mod:`autograder.gradescope_files`,
the pinned requirements by :mod:`autograder.gradescope_requirements`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shlex
import sys
import zipfile
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder import library
from autograder.gradescope_files import (
    BuildError,
    collect,
    extract_bundle,
    git_state,
    package_dir,
    render_script,
    write_zip,
)
from autograder.gradescope_requirements import (
    AUTHORING_ONLY,
    PROJECT_DISTRIBUTION,
    PYTORCH_CPU_INDEX,
    assignment_dependencies,
    project_dependencies,
    requirements_txt,
    runtime_requirements,
)

__all__ = [
    "AUTHORING_ONLY",
    "BUNDLE_FORMAT",
    "PYTORCH_CPU_INDEX",
    "BuildError",
    "add_build_parser",
    "build_bundle",
    "build_command",
    "bundle_name",
    "extract_bundle",
    "runtime_requirements",
    "visibility_warnings",
]

#: Version of the bundle layout described in the module docstring.
BUNDLE_FORMAT = 1
#: Seconds added to the assignment's ``time_limit`` before ``run_autograder``
#: stops the grader outright (the grader normally stops on its own well before).
HARD_LIMIT_MARGIN_S = 300

SETUP = "setup.sh"
RUN = "run_autograder"
REQUIREMENTS = "requirements.txt"
MANIFEST = "bundle.json"
COURSE_DIR = "course"
PACKAGES_DIR = "packages"
_VERSION_RE = re.compile(r"^[0-9A-Za-z.+!_-]+$")


def visibility_warnings(spec: cfg.AssignmentSpec) -> list[str]:
    """Gradescope caveats of ``spec``'s visibility settings, one line each.

    Gradescope keeps the total score from students only for ``after_due_date``
    and ``after_published`` tests; its documentation expects ``hidden`` tests
    to be worth no points, so a ``hidden`` task with points still shows up in
    the total a student sees.
    """
    hidden = [t.id for t in spec.tasks.values() if t.visibility == "hidden" and t.points > 0]
    if not hidden:
        return []
    return [f"{', '.join(hidden)}: visibility 'hidden' with points; students still see these "
            "points in their total (use after_due_date or after_published to hold them back)"]


def bundle_name(assignment: str) -> str:
    """The default file name of ``assignment``'s bundle."""
    return f"{assignment}-gradescope.zip"


# --------------------------------------------------------------------------- build
def _check_data(spec: cfg.AssignmentSpec, names: tuple[str, ...],
                allow_ungradable: bool, allow_generated: bool) -> tuple[str, ...]:
    """The data sets to download (registered, verified, deduplicated), or BuildError.

    Every data set the declaration names (``[assignment] datasets``) must be
    downloaded, so that the bundle grades on the data the course uses (scores
    on generated stand-ins differ from local grading): otherwise the build
    fails unless ``allow_generated`` (or ``allow_ungradable``) says so.
    """
    from coursedata import registry

    from autograder import data

    chosen: list[str] = []
    for name in names:
        try:
            ds = registry.get(name)
        except ValueError as exc:
            raise BuildError(f"--with-data: {exc}") from None
        unverified = [f.name for f in ds.official if f.sha256 is None or not f.urls]
        if unverified:
            raise BuildError(f"--with-data {name}: no verified checksum for "
                             f"{', '.join(unverified)}, so setup.sh cannot download it safely")
        if name not in chosen:
            chosen.append(name)
    generated = [n for n in spec.datasets if n not in chosen]
    if generated and not (allow_generated or allow_ungradable):
        raise BuildError(f"{spec.name} uses {', '.join(generated)}, which this bundle would not "
                         "download, so it would grade on generated stand-ins (scores differ from "
                         "grading on the real data): add --with-data "
                         + " --with-data ".join(generated)
                         + " (or --allow-generated-data to grade on the stand-ins anyway)")
    missing = {t: n for t, n in data.real_data_tasks(spec).items() if n not in chosen}
    if missing and not allow_ungradable:
        raise BuildError("; ".join(f"task {t} cannot be graded on generated {n} data" for t, n
                                   in sorted(missing.items()))
                         + ": add --with-data " + " --with-data ".join(sorted(set(missing.values())))
                         + " (or --allow-ungradable to grade it as 'not graded')")
    return tuple(chosen)


def build_bundle(
    assignment: str,
    dest: str | os.PathLike[str],
    *,
    course_root: str | os.PathLike[str] | None = None,
    suite_dir: str | os.PathLike[str] | None = None,
    require_isolation: bool = True,
    download_cifar10: bool = False,
    python_version: str | None = None,
    with_data: tuple[str, ...] = (),
    allow_ungradable: bool = False,
    allow_generated_data: bool = False,
) -> Path:
    """Write ``assignment``'s Gradescope autograder zip and return its path.

    ``dest`` is the zip's path when it ends in ``.zip``, else a directory that
    receives ``<assignment>-gradescope.zip`` (created if missing).
    ``course_root`` holds ``source/<assignment>/`` (default: as for grading,
    see :func:`autograder.config.find_course_root`); ``suite_dir`` replaces
    the installed hidden suite (it is bundled as ``suites/<assignment>``).
    ``require_isolation=False`` makes ``run_autograder`` grade even where
    student code cannot be confined (see docs/threat-model.md).
    ``with_data`` names registered data sets (:mod:`coursedata.registry`) that
    ``setup.sh`` downloads into the image (``download_cifar10`` adds
    ``cifar10``); the others are generated stand-ins at grading time. A data
    set of the declaration (``[assignment] datasets``) that is not downloaded
    makes the build fail unless ``allow_generated_data`` is set (or
    ``allow_ungradable``, which implies it). A data
    set without a verified checksum cannot be bundled for download; a task
    that cannot be graded on a stand-in (:func:`autograder.data.real_data_tasks`)
    makes the build fail unless its data set is downloaded or
    ``allow_ungradable`` is set.
    ``python_version`` (``"3.11"``) is the Python that ``setup.sh`` installs;
    the default, this interpreter's, is the one the pins were resolved with.
    The zip is deterministic: the same inputs give the same bytes. Raises
    :class:`BuildError` (a :class:`~autograder.config.ConfigError`) with a
    one-line reason.
    """
    suite = Path(suite_dir) if suite_dir is not None else cfg.suite_dir(assignment)
    spec = cfg.load_tasks(suite / "tasks.toml")
    data_sets = _check_data(spec, (*with_data, *(("cifar10",) if download_cifar10 else ())),
                            allow_ungradable, allow_generated_data)
    if spec.name != assignment:
        raise BuildError(f"{suite / 'tasks.toml'} is for {spec.name!r}, not {assignment!r}")
    root = cfg.find_course_root(course_root)
    reference = root / "source" / assignment / spec.library
    if not (reference / "__init__.py").is_file():
        raise BuildError(f"reference library not found: {reference}/__init__.py")
    py_version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    if not re.fullmatch(r"3\.\d+", py_version):
        raise BuildError(f"python_version must look like 3.11, got {py_version!r}")

    grader_dir = cfg.PACKAGE_DIR
    files: dict[str, Path] = {}
    files.update(collect(grader_dir, f"{COURSE_DIR}/autograder", skip=[grader_dir / "suites"]))
    suites_root = grader_dir / "suites"
    if suites_root.is_dir():  # files shared by every suite (not other assignments' suites)
        shared = collect(suites_root, f"{COURSE_DIR}/autograder/suites",
                          skip=[p for p in suites_root.iterdir() if p.is_dir()])
        files.update(shared)
    files.update(collect(suite, f"{COURSE_DIR}/autograder/suites/{assignment}"))
    # the reference package: its own folder and its shared one (autograder/library.py)
    for folder in library.package_dirs(reference.parent, spec.library, spec.student_library):
        files.update(collect(folder, f"{COURSE_DIR}/{folder.relative_to(root).as_posix()}"))
    files.update(collect(package_dir("coursedata"), f"{PACKAGES_DIR}/coursedata"))

    declared = {p for name in cfg.available_assignments()
                for p in cfg.load_assignment(name).packages}
    deps = assignment_dependencies(project_dependencies(root), spec.packages,
                                   declared | set(spec.packages))
    pins = runtime_requirements(deps, python_version=py_version)
    try:
        pip_version = metadata.version("pip")
    except metadata.PackageNotFoundError:
        pip_version = ""
    try:
        version = metadata.version(PROJECT_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "unknown"
    for value in (pip_version, version):
        if value and not _VERSION_RE.match(value):
            raise BuildError(f"unexpected version string {value!r}")
    hard_limit = int(spec.time_limit) + HARD_LIMIT_MARGIN_S
    common = {"ASSIGNMENT": shlex.quote(assignment), "VERSION": version,
              "COURSE_DIR": COURSE_DIR}
    setup = render_script(SETUP, {
        **common, "PY_VERSION": py_version, "PIP_VERSION": shlex.quote(pip_version),
        "WITH_DATA": shlex.quote(" ".join(data_sets)), "MANIFEST": MANIFEST,
        "REQUIREMENTS": REQUIREMENTS, "PACKAGES_DIR": PACKAGES_DIR,
    })
    run = render_script(RUN, {**common, "REQUIRE": "1" if require_isolation else "0",
                                "HARD_LIMIT": str(hard_limit)})

    members: dict[str, tuple[bytes, int]] = {}
    for name, path in files.items():
        members[name] = (path.read_bytes(), 0o644)
    members[SETUP] = (setup.encode(), 0o755)
    members[RUN] = (run.encode(), 0o755)
    members[REQUIREMENTS] = (requirements_txt(pins, assignment, py_version).encode(), 0o644)
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "assignment": assignment,
        "library": spec.library,
        "max_score": spec.max_score,
        "tasks": {t.id: {"points": t.points, "visibility": t.visibility}
                  for t in spec.tasks.values()},
        "time_limit_s": spec.time_limit,
        "hard_limit_s": hard_limit,
        "require_isolation": require_isolation,
        "download_cifar10": "cifar10" in data_sets,
        "with_data": list(data_sets),
        "cvcourse": version,
        "python": py_version,
        "pip": pip_version or None,
        **git_state(root),
        "requirements": pins,
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, (data, _) in sorted(members.items())},
    }
    members[MANIFEST] = ((json.dumps(manifest, indent=2) + "\n").encode(), 0o644)

    out = Path(dest)
    if out.suffix.lower() != ".zip":
        out = out / bundle_name(assignment)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_zip(out, members)
    except OSError as exc:
        raise BuildError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


# --------------------------------------------------------------------------- CLI
def add_build_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``autograder build`` on the CLI's subparsers object ``sub``."""
    b = sub.add_parser("build", help="write a Gradescope autograder zip for an assignment")
    b.add_argument("assignment", help="assignment name, e.g. assignment1")
    b.add_argument("--output", default="build",
                   help="the zip to write, or a directory for <assignment>-gradescope.zip "
                        "(default: ./build/)")
    b.add_argument("--course-root", default=None,
                   help=f"course root holding source/<assignment>/ (default: ${cfg.COURSE_ROOT_ENV}"
                        " or the checkout containing the autograder package)")
    b.add_argument("--suite-dir", default=None,
                   help="bundle this suite directory instead of the installed one")
    b.add_argument("--with-data", action="append", default=[], metavar="NAME",
                   help="have setup.sh download this registered data set into the image "
                        "(repeatable; default: the grader generates stand-ins in the official "
                        "format)")
    b.add_argument("--with-cifar10", action="store_true", help="the same as --with-data cifar10")
    b.add_argument("--allow-generated-data", action="store_true",
                   help="build even when the bundle does not download a data set the "
                        "assignment declares: it then grades on generated stand-ins, whose "
                        "scores differ from grading on the real data (default: refuse)")
    b.add_argument("--allow-ungradable", action="store_true",
                   help="build even when a task cannot be graded on the generated stand-in "
                        "of a data set the bundle does not download (it scores 0, 'not "
                        "graded'); implies --allow-generated-data")
    b.add_argument("--allow-unconfined", action="store_true",
                   help="grade even when student code cannot be confined (not root, or no "
                        "namespaces); see docs/threat-model.md before using it")
    return b


def build_command(args: argparse.Namespace) -> int:
    """Run ``autograder build`` for parsed ``args``; errors raise :class:`BuildError`."""
    if args.course_root is not None and not os.path.isdir(args.course_root):
        raise BuildError(f"course root {args.course_root} is not a directory")
    path = build_bundle(args.assignment, args.output, course_root=args.course_root,
                        suite_dir=args.suite_dir, require_isolation=not args.allow_unconfined,
                        download_cifar10=args.with_cifar10, with_data=tuple(args.with_data),
                        allow_ungradable=args.allow_ungradable,
                        allow_generated_data=args.allow_generated_data)
    size = path.stat().st_size
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST))
    print(f"wrote {path} ({size / 1024:.1f} KiB, {count} files)")
    spec = cfg.load_tasks(Path(args.suite_dir or cfg.suite_dir(args.assignment)) / "tasks.toml")
    for line in visibility_warnings(spec):
        print(f"autograder: warning: {line}", file=sys.stderr)
    print(f"Gradescope's autograder timeout must exceed {manifest['time_limit_s'] / 60:g} min "
          f"(the grader is stopped at {manifest['hard_limit_s'] / 60:g} min)")
    print("upload it in Gradescope: the assignment's Configure Autograder page, Zip file upload")
    print(f"set the assignment's Autograder Points to {manifest['max_score']:g} in Gradescope "
          "(results.json gives each task's points, but not the total)")
    return 0
