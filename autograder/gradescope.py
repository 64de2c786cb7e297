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
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from autograder import config as cfg

__all__ = [
    "AUTHORING_ONLY",
    "BUNDLE_FORMAT",
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
#: Project dependencies used only to author and generate assignments (nbgrader
#: and the notebook stack); grading never imports them, so bundles leave them out.
AUTHORING_ONLY: frozenset[str] = frozenset(
    {"nbgrader", "nbformat", "nbconvert", "nbclient", "ipykernel"})
#: The distribution that carries the project's own dependency list.
PROJECT_DISTRIBUTION = "cvcourse"
#: Seconds added to the assignment's ``time_limit`` before ``run_autograder``
#: stops the grader outright (the grader normally stops on its own well before).
HARD_LIMIT_MARGIN_S = 300
#: Largest single file a bundle may carry (anything bigger is data, not code).
MAX_FILE_BYTES = 5 * 1024 * 1024

SETUP = "setup.sh"
RUN = "run_autograder"
REQUIREMENTS = "requirements.txt"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MANIFEST = "bundle.json"
COURSE_DIR = "course"
PACKAGES_DIR = "packages"

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same bytes
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".c", ".o", ".ipynb", "~", ".swp")
_VERSION_RE = re.compile(r"^[0-9A-Za-z.+!_-]+$")
#: Markers are evaluated for the machine that grades, not the one that builds.
_TARGET_MARKERS = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "platform_machine": "x86_64", "implementation_name": "cpython",
                   "platform_python_implementation": "CPython"}


class BuildError(cfg.ConfigError):
    """The bundle cannot be built; the message says why in one line."""


# --------------------------------------------------------------------------- requirements
def _project_dependencies(course_root: Path) -> list[str]:
    """The project's ``[project] dependencies``: pyproject.toml, else installed metadata."""
    pyproject = course_root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise BuildError(f"{pyproject}: cannot read the dependencies: {exc}") from None
        deps = data.get("project", {}).get("dependencies")
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BuildError(f"{pyproject}: [project] dependencies must be a list of strings")
        return list(deps)
    try:
        reqs = metadata.requires(PROJECT_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise BuildError(f"no pyproject.toml in {course_root} and {PROJECT_DISTRIBUTION} is "
                         "not installed: cannot tell which packages grading needs") from None
    return list(reqs)  # lines for the project's extras are dropped by their markers


def runtime_requirements(dependencies: Iterable[str], *,
                         exclude: Iterable[str] = AUTHORING_ONLY,
                         python_version: str | None = None) -> dict[str, str]:
    """Pin ``dependencies`` and everything they pull in to the installed versions.

    Walks the installed distributions' metadata (``importlib.metadata``) from
    the given requirement strings, evaluating environment markers for Linux
    x86_64 CPython ``python_version`` (default: this interpreter's) and
    following requested extras. ``exclude`` names top-level dependencies to
    leave out. Returns ``{distribution name: version}`` sorted by name.
    Raises :class:`BuildError` when a needed package is not installed here or
    its installed version does not satisfy a top-level specifier.
    """
    from packaging.markers import default_environment  # pytest's dependency: always here
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env: dict[str, str] = dict(default_environment())
    env.update(_TARGET_MARKERS)
    if python_version and python_version != env["python_version"]:
        env["python_version"] = python_version
        env["python_full_version"] = f"{python_version}.0"
    skip = {canonicalize_name(n) for n in exclude}
    pins: dict[str, tuple[str, str]] = {}  # canonical name -> (display name, version)
    todo: list[tuple[Requirement, str | None]] = []  # (requirement, required by)
    for line in dependencies:
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise BuildError(f"invalid dependency {line!r}: {exc}") from None
        if canonicalize_name(req.name) in skip:
            continue
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        todo.append((req, None))
    seen: set[tuple[str, str]] = set()
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            why = f"needed by {parent}" if parent else "a dependency of the project"
            raise BuildError(
                f"{req.name} ({why}) is not installed here, so its version cannot be pinned; "
                "install the project (pip install -e .) and build again") from None
        version = dist.version
        if parent is None and req.specifier and \
                not req.specifier.contains(version, prereleases=True):
            raise BuildError(f"installed {req.name} {version} does not satisfy {req}")
        pins[name] = (dist.metadata["Name"] or req.name, version)
        for extra in ("", *sorted(canonicalize_name(e) for e in req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in dist.requires or []:
                sub = Requirement(line)
                if sub.marker is not None and not sub.marker.evaluate({**env, "extra": extra}):
                    continue
                if extra and sub.marker is None:
                    continue  # a base requirement, handled with extra ""
                todo.append((sub, req.name))
    return {display: version for _, (display, version) in sorted(pins.items())}


def _requirements_txt(pins: Mapping[str, str], assignment: str, python_version: str) -> str:
    lines = [
        f"# Grading runtime of {assignment}, generated by `autograder build`: every package",
        f"# pinned to the version the bundle was built and tested with (Python {python_version}).",
        "# Notebook-authoring tools (nbgrader, nbconvert, ...) are left out: grading does not",
        "# import them.",
    ]
    if any("+cpu" in version for version in pins.values()):
        lines += ["# PyTorch's CPU builds (e.g. torch==2.13.0+cpu) are on PyTorch's own index,",
                  "# not on PyPI, which would serve a CUDA build of several GB.",
                  f"--extra-index-url {PYTORCH_CPU_INDEX}"]
    lines += [f"{name}=={version}" for name, version in pins.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- files
def _collect(src: Path, prefix: str, *, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """Files under ``src`` as ``{prefix/relative path: path}``, without caches and junk."""
    if not src.is_dir():
        raise BuildError(f"{src} is not a directory")
    skipped = {p.resolve() for p in skip}
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            path = here / d
            if d in _SKIP_DIRS or d.startswith(".") or d.endswith(".egg-info") or \
                    path.resolve() in skipped:
                continue
            if path.is_symlink():
                raise BuildError(f"{path} is a symbolic link; bundles hold only plain files")
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            path = here / f
            if f.startswith(".") or f.endswith(_SKIP_SUFFIXES):
                continue
            if path.is_symlink() or not path.is_file():
                raise BuildError(f"{path} is not a plain file; bundles hold only plain files")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise BuildError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MB; "
                                 "bundles carry code, not data")
            out[str(PurePosixPath(prefix, *path.relative_to(src).parts))] = path
    return out


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BuildError(f"cannot find the {name} package")
    return Path(locations[0])


def _git_state(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status)}


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


# --------------------------------------------------------------------------- scripts
_SETUP_TEMPLATE = r"""#!/usr/bin/env bash
# Gradescope image setup for @ASSIGNMENT@, generated by `autograder build` (cvcourse @VERSION@).
# Gradescope runs it once, as root, when it builds the autograder image.
#
# Environment (Gradescope sets none of these; they are for trying the bundle elsewhere):
#   AUTOGRADER_ROOT            the Gradescope root (default /autograder)
#   AUTOGRADER_VENV            the virtual environment to create (default $AUTOGRADER_ROOT/venv)
#   AUTOGRADER_SKIP_INSTALL=1  install nothing (no apt, no pip, no download): check that the
#                              interpreter AUTOGRADER_PYTHON can run the bundled grader instead
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
COURSE="$SRC/@COURSE_DIR@"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
ASSIGNMENT=@ASSIGNMENT@
PY_VERSION=@PY_VERSION@
PIP_VERSION=@PIP_VERSION@
WITH_DATA=@WITH_DATA@  # registered data sets setup.sh downloads (space-separated)

say() { printf 'setup.sh: %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

# A Python $PY_VERSION, if this image has one.
find_python() {
    local cand
    for cand in "python$PY_VERSION" python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c '
import sys
sys.exit(0 if "%d.%d" % sys.version_info[:2] == sys.argv[1] else 1)' "$PY_VERSION" >/dev/null 2>&1
        then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

# Python $PY_VERSION and its venv module from Ubuntu's archive when it has them (22.04 has
# python3.11 in universe), else from the deadsnakes PPA.
install_python() {
    export DEBIAN_FRONTEND=noninteractive
    say "installing Python $PY_VERSION with apt"
    apt-get update -q
    if ! apt-get install -y -q --no-install-recommends "python$PY_VERSION" "python$PY_VERSION-venv"; then
        say "python$PY_VERSION is not in this image's archive: adding the deadsnakes PPA"
        apt-get install -y -q --no-install-recommends software-properties-common gpg-agent
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update -q
        apt-get install -y -q --no-install-recommends "python$PY_VERSION" "python$PY_VERSION-venv"
    fi
}

# Every file of the bundle must be the one `autograder build` wrote.
verify_bundle() {
    "$1" - "$SRC" "@MANIFEST@" <<'PYEOF' || die "the bundle in $SRC is damaged; upload it again"
import hashlib, json, pathlib, sys
src = pathlib.Path(sys.argv[1])
files = json.loads((src / sys.argv[2]).read_text())["files"]
bad = sorted(name for name, meta in files.items()
             if not (src / name).is_file()
             or hashlib.sha256((src / name).read_bytes()).hexdigest() != meta["sha256"])
if bad:
    sys.exit("setup.sh: files missing or changed since the bundle was built: " + ", ".join(bad[:10]))
PYEOF
}

if [ "${AUTOGRADER_SKIP_INSTALL:-0}" = 1 ]; then
    PY="${AUTOGRADER_PYTHON:-}"
    [ -n "$PY" ] || die "AUTOGRADER_SKIP_INSTALL=1 needs AUTOGRADER_PYTHON (an interpreter with the requirements)"
    say "AUTOGRADER_SKIP_INSTALL=1: installing nothing, checking $PY"
    verify_bundle "$PY"
else
    BASE_PY="$(find_python)" || { install_python; BASE_PY="$(find_python)" || die "no usable Python $PY_VERSION after apt"; }
    say "using $BASE_PY ($("$BASE_PY" -V 2>&1))"
    verify_bundle "$BASE_PY"
    say "creating the virtual environment $VENV"
    if ! "$BASE_PY" -m venv --clear "$VENV"; then
        say "the venv module is incomplete (Ubuntu ships it separately)"
        install_python
        "$BASE_PY" -m venv --clear "$VENV"
    fi
    PY="$VENV/bin/python"
    export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    if [ -n "$PIP_VERSION" ]; then
        "$PY" -m pip install -q "pip==$PIP_VERSION"
    fi
    say "installing the pinned requirements"
    "$PY" -m pip install --prefer-binary -r "$SRC/@REQUIREMENTS@"
    SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    rm -rf "$SITE/coursedata" "$SITE/autograder"
    cp -R "$SRC/@PACKAGES_DIR@/coursedata" "$SITE/coursedata"
    # The engine for the workers (python -I imports from site-packages only): no suites.
    cp -R "$COURSE/autograder" "$SITE/autograder"
    rm -rf "$SITE/autograder/suites"
    chmod -R a+rX "$VENV"
    "$PY" -m pip freeze
    for name in $WITH_DATA; do
        say "downloading $name into $ROOT/data"
        "$PY" -m coursedata download "$name" --data-dir "$ROOT/data" --no-progress
        chmod -R go-rwx "$ROOT/data"
    done
fi

# The grader must import from the bundle, with everything it needs; workers, started
# with `python -I` from elsewhere, must import the engine from the interpreter itself.
say "checking the grader"
(
    cd /
    "$PY" -I -c 'import autograder.sandbox.jail, autograder.sandbox.protocol, coursedata, numpy' ||
        die "a worker ($PY -I) cannot import the engine, coursedata or numpy"
    if [ "${AUTOGRADER_SKIP_INSTALL:-0}" != 1 ]; then
        "$PY" -I -c '
import pathlib, sys, autograder
if (pathlib.Path(autograder.__file__).parent / "suites").exists():
    sys.exit("setup.sh: the venv copy of the engine must not hold the hidden suites")'
    fi
    cd "$COURSE"
    PYTHONPATH="$COURSE" "$PY" - "$COURSE" <<'PYEOF'
import pathlib, sys
import coursedata, numpy, pytest  # noqa: F401
import autograder.runner  # noqa: F401
import autograder
where = pathlib.Path(autograder.__file__).resolve().parent
expected = (pathlib.Path(sys.argv[1]) / "autograder").resolve()
if where != expected:
    sys.exit(f"setup.sh: the grader was imported from {where}, not from the bundle ({expected})")
print(f"setup.sh: grader {where}, Python {sys.version.split()[0]}, numpy {numpy.__version__}")
PYEOF
    PYTHONPATH="$COURSE" "$PY" -m autograder tasks --assignment "$ASSIGNMENT"
    # Information only: the image may be built where namespaces are not allowed.
    PYTHONPATH="$COURSE" "$PY" -c '
import sys
from autograder.sandbox import isolation_available
ok, note = isolation_available(sys.executable)
print("setup.sh: confinement here:", "available" if ok else "NOT available", "-", note)' || true
)
say "done"
"""

_RUN_TEMPLATE = r"""#!/usr/bin/env bash
# Gradescope entry point for @ASSIGNMENT@, generated by `autograder build` (cvcourse @VERSION@).
# Grades $AUTOGRADER_ROOT/submission and ALWAYS leaves $AUTOGRADER_ROOT/results/results.json:
# when the grader cannot start or stops without its report, a zero report saying so.
#
# Environment (Gradescope sets none of these; they are for trying the bundle elsewhere):
#   AUTOGRADER_ROOT               the Gradescope root (default /autograder)
#   AUTOGRADER_VENV               the environment setup.sh created (default $AUTOGRADER_ROOT/venv)
#   AUTOGRADER_PYTHON             the interpreter to grade with (default $AUTOGRADER_VENV/bin/python)
#   AUTOGRADER_REQUIRE_ISOLATION  1: grade nothing unless student code can be confined (needs root
#                                 and Linux namespaces); 0: grade unconfined (default @REQUIRE@)
#   AUTOGRADER_HARD_LIMIT         seconds before the grader is stopped outright (default @HARD_LIMIT@)
set -u

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
COURSE="$SRC/@COURSE_DIR@"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
PY="${AUTOGRADER_PYTHON:-$VENV/bin/python}"
RESULTS_DIR="$ROOT/results"
RESULTS="$RESULTS_DIR/results.json"
ASSIGNMENT=@ASSIGNMENT@
HARD_LIMIT="${AUTOGRADER_HARD_LIMIT:-@HARD_LIMIT@}"

mkdir -p "$RESULTS_DIR"
rm -f "$RESULTS"  # only a report written by this run counts

# The student's files; a single uploaded zip is graded as the zip.
SUBMISSION="$ROOT/submission"
shopt -s nullglob dotglob
entries=("$SUBMISSION"/*)
shopt -u nullglob dotglob
if [ "${#entries[@]}" -eq 1 ] && [ -f "${entries[0]}" ]; then
    case "${entries[0]}" in
        *.zip|*.ZIP|*.Zip) SUBMISSION="${entries[0]}" ;;
    esac
fi

args=(grade "$SUBMISSION" --assignment "$ASSIGNMENT" --results "$RESULTS" --course-root "$COURSE")
if [ "${AUTOGRADER_REQUIRE_ISOLATION:-@REQUIRE@}" != 0 ]; then
    args+=(--require-isolation)
fi
if [ -d "$ROOT/data" ]; then
    args+=(--data-dir "$ROOT/data")
fi

echo "run_autograder: grading $SUBMISSION with $PY (hard limit ${HARD_LIMIT}s)"
status=0
(
    cd "$COURSE" || exit 70
    export PYTHONPATH="$COURSE"
    exec timeout --kill-after=15 "$HARD_LIMIT" "$PY" -m autograder "${args[@]}"
) || status=$?

# 0: report written; 1: report written, and it records an internal grader error.
if { [ "$status" -eq 0 ] || [ "$status" -eq 1 ]; } && [ -s "$RESULTS" ]; then
    echo "run_autograder: grader exit status $status, report written to $RESULTS"
    exit 0
fi

case "$status" in
    124|137) why="the grader ran out of time (${HARD_LIMIT} s)" ;;
    *) why="the grader did not start or stopped before writing its report (exit status $status)" ;;
esac
echo "run_autograder: $why; writing a zero report" >&2
tmp="$RESULTS.tmp.$$"
cat > "$tmp" <<JSON
{
  "score": 0.0,
  "execution_time": 0,
  "output": "$ASSIGNMENT: this submission could not be graded: $why. This is a problem on the course's side, not in your code; please tell the course staff, who can regrade it.",
  "stdout_visibility": "hidden",
  "extra_data": {"internal_error": true, "fallback": true, "grader_exit_status": $status},
  "tests": []
}
JSON
mv -f "$tmp" "$RESULTS"
exit 0
"""


def _fill(template: str, values: Mapping[str, str]) -> str:
    text = template
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_0-9]+@", text)
    if left:  # pragma: no cover - a template/code mismatch
        raise BuildError(f"unfilled placeholders in a script template: {sorted(set(left))}")
    return text


# --------------------------------------------------------------------------- build
def _check_data(spec: cfg.AssignmentSpec, names: tuple[str, ...],
                allow_ungradable: bool) -> tuple[str, ...]:
    """The data sets to download (registered, verified, deduplicated), or BuildError."""
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
                            allow_ungradable)
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
    files.update(_collect(grader_dir, f"{COURSE_DIR}/autograder", skip=[grader_dir / "suites"]))
    suites_root = grader_dir / "suites"
    if suites_root.is_dir():  # files shared by every suite (not other assignments' suites)
        shared = _collect(suites_root, f"{COURSE_DIR}/autograder/suites",
                          skip=[p for p in suites_root.iterdir() if p.is_dir()])
        files.update(shared)
    files.update(_collect(suite, f"{COURSE_DIR}/autograder/suites/{assignment}"))
    files.update(_collect(reference, f"{COURSE_DIR}/source/{assignment}/{spec.library}"))
    files.update(_collect(_package_dir("coursedata"), f"{PACKAGES_DIR}/coursedata"))

    pins = runtime_requirements(_project_dependencies(root), python_version=py_version)
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
    setup = _fill(_SETUP_TEMPLATE, {
        **common, "PY_VERSION": py_version, "PIP_VERSION": shlex.quote(pip_version),
        "WITH_DATA": shlex.quote(" ".join(data_sets)), "MANIFEST": MANIFEST,
        "REQUIREMENTS": REQUIREMENTS, "PACKAGES_DIR": PACKAGES_DIR,
    })
    run = _fill(_RUN_TEMPLATE, {**common, "REQUIRE": "1" if require_isolation else "0",
                                "HARD_LIMIT": str(hard_limit)})

    members: dict[str, tuple[bytes, int]] = {}
    for name, path in files.items():
        members[name] = (path.read_bytes(), 0o644)
    members[SETUP] = (setup.encode(), 0o755)
    members[RUN] = (run.encode(), 0o755)
    members[REQUIREMENTS] = (_requirements_txt(pins, assignment, py_version).encode(), 0o644)
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
        **_git_state(root),
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
        _write_zip(out, members)
    except OSError as exc:
        raise BuildError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _write_zip(path: Path, members: Mapping[str, tuple[bytes, int]]) -> None:
    """Write ``members`` (``{name: (data, mode)}``) atomically, sorted, with fixed times."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted(members):
                data, mode = members[name]
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix: unzip restores the modes below
                info.external_attr = (stat.S_IFREG | mode) << 16
                zf.writestr(info, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def extract_bundle(bundle: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Unpack ``bundle`` into ``dest`` as Gradescope does, keeping the executable bits.

    Refuses members with absolute paths or ``..``. Returns ``dest``.
    """
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise BuildError(f"unsafe path in the bundle: {info.filename}")
            path = target.joinpath(*name.parts)
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(path, mode or 0o644)
    return target


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
    b.add_argument("--allow-ungradable", action="store_true",
                   help="build even when a task cannot be graded on the generated stand-in "
                        "of a data set the bundle does not download (it scores 0, 'not graded')")
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
                        allow_ungradable=args.allow_ungradable)
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
    return 0
