"""Grader configuration: defaults, ``tasks.toml`` parsing, course root discovery.

``tasks.toml`` format::

    [assignment]
    name = "assignment1"
    library = "cs231n"          # package at the submission root
    required = ["cs231n/layers.py", ...]
    timeout = 60                # default seconds per worker call
    time_limit = 900            # seconds for the whole submission
    preload = ["torch"]         # optional: modules the fork server imports once, so
                                # that each test's worker does not pay for them
    [student_library]           # optional: the shared student files it takes
    common = "cs231n"           # every file of source/_common/cs231n/, at the same path
    [tasks.knn_two_loops]
    title = "..."
    points = 4
    visibility = "visible"      # visible | hidden | after_due_date | after_published
    timeout = 120               # optional per-task override

The course root (holding ``source/<assignment>/<library>``, the reference) is
``--course-root``, else the environment variable ``AUTOGRADER_COURSE_ROOT``,
else the parent of the installed ``autograder`` package when it contains
``source/`` (a repository checkout or editable install).
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The one place for the grader's defaults (the CLI reads them from here).
# None: every grading draws a fresh secret base seed (draw_seed); the report records it
# (report.json, results.json's extra_data) and `--seed N` replays a grading exactly.
DEFAULT_SEED: int | None = None
SEED_BITS = 63  # size of a drawn base seed (fits JSON and SQLite integers)
DEFAULT_RESULTS = "results.json"
DEFAULT_TIMEOUT = 60.0
DEFAULT_TIME_LIMIT = 900.0
DEFAULT_MEMORY_LIMIT_MB = 4096
DEFAULT_FSIZE_LIMIT_MB = 64
DEFAULT_SANDBOX_USER: str | None = None  # confined workers get a uid of their own
COURSE_ROOT_ENV = "AUTOGRADER_COURSE_ROOT"
CACHE_DIR_ENV = "AUTOGRADER_CACHE_DIR"  # where reference results are remembered
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
PACKAGE_DIR = Path(__file__).resolve().parent
SUITES_DIR = PACKAGE_DIR / "suites"
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """A configuration problem (bad tasks.toml, unknown assignment, no course root)."""


@dataclass(frozen=True)
class TaskSpec:
    """One graded task: id, title, points, visibility and optional call timeout."""

    id: str
    title: str
    points: float
    visibility: str = "visible"
    timeout: float | None = None


@dataclass(frozen=True)
class StudentLibrary:
    """The ``[student_library]`` table: which shared student files the assignment takes.

    ``common`` names a folder of ``source/_common/`` that mirrors an assignment
    folder (``submit.py``, ``cs231n/solver.py``...); generation, the solutions and
    the reference loader place all its files at the same paths in the assignment
    (see :mod:`autograder.library`). No table: the assignment takes none.
    """

    common: str | None = None


@dataclass(frozen=True)
class AssignmentSpec:
    """An assignment's grading table, parsed from ``tasks.toml``."""

    name: str
    library: str
    required: tuple[str, ...]
    timeout: float
    time_limit: float
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    path: Path | None = None
    preload: tuple[str, ...] = ()  # modules the fork server imports once (e.g. torch)
    student_library: StudentLibrary = field(default_factory=StudentLibrary)

    @property
    def max_score(self) -> float:
        """Sum of all task points."""
        return float(sum(t.points for t in self.tasks.values()))

    def task_timeout(self, task_id: str) -> float:
        """The per-call timeout for ``task_id`` (task override or the default)."""
        task = self.tasks.get(task_id)
        if task is not None and task.timeout is not None:
            return task.timeout
        return self.timeout


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{where} must be > 0, got {value!r}")
    return float(value)


def parse_student_library(data: dict[str, Any], source: str = "tasks.toml") -> StudentLibrary:
    """Validate the optional ``[student_library]`` table of the parsed TOML ``data``."""
    table = data.get("student_library", {})
    where = f"{source}: [student_library]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - {"common"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    common = table.get("common")
    if common is not None and not (isinstance(common, str) and _ID_RE.match(common)):
        raise ConfigError(f"{where} common must be a folder name of source/_common/, got {common!r}")
    return StudentLibrary(common=common)


def parse_tasks(data: dict[str, Any], source: str = "tasks.toml") -> AssignmentSpec:
    """Validate the parsed TOML ``data`` and build an :class:`AssignmentSpec`."""
    a = data.get("assignment")
    if not isinstance(a, dict):
        raise ConfigError(f"{source}: missing [assignment] table")
    for key in ("name", "library"):
        if not isinstance(a.get(key), str) or not a[key]:
            raise ConfigError(f"{source}: [assignment] {key} must be a non-empty string")
    if not _ID_RE.match(a["library"]):
        raise ConfigError(f"{source}: library {a['library']!r} is not a package name")
    required = a.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ConfigError(f"{source}: [assignment] required must be a list of paths")
    for r in required:
        if r.startswith("/") or ".." in Path(r).parts:
            raise ConfigError(f"{source}: required path {r!r} must be relative")
    unknown = set(a) - {"name", "library", "required", "timeout", "time_limit", "preload"}
    if unknown:
        raise ConfigError(f"{source}: unknown [assignment] keys {sorted(unknown)}")
    timeout = _number(a.get("timeout", DEFAULT_TIMEOUT), f"{source}: [assignment] timeout")
    time_limit = _number(a.get("time_limit", DEFAULT_TIME_LIMIT),
                         f"{source}: [assignment] time_limit")
    preload = a.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(m, str) and m for m in preload):
        raise ConfigError(f"{source}: [assignment] preload must be a list of module names")
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        raise ConfigError(f"{source}: no [tasks.<id>] tables")
    tasks: dict[str, TaskSpec] = {}
    for tid, t in raw_tasks.items():
        where = f"{source}: [tasks.{tid}]"
        if not _ID_RE.match(tid):
            raise ConfigError(f"{where}: task id must be an identifier")
        if not isinstance(t, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(t) - {"title", "points", "visibility", "timeout"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        if not isinstance(t.get("title"), str) or not t["title"]:
            raise ConfigError(f"{where}: title must be a non-empty string")
        points = _number(t.get("points"), f"{where} points", positive=False)
        if points < 0:
            raise ConfigError(f"{where}: points must be >= 0")
        vis = t.get("visibility", "visible")
        if vis not in VISIBILITIES:
            raise ConfigError(f"{where}: visibility must be one of {', '.join(VISIBILITIES)}")
        tt = t.get("timeout")
        tasks[tid] = TaskSpec(
            id=tid, title=t["title"], points=points, visibility=vis,
            timeout=None if tt is None else _number(tt, f"{where} timeout"),
        )
    return AssignmentSpec(
        name=a["name"], library=a["library"], required=tuple(required), timeout=timeout,
        time_limit=time_limit, tasks=tasks, preload=tuple(preload),
        student_library=parse_student_library(data, source),
    )


def load_tasks(path: str | os.PathLike[str]) -> AssignmentSpec:
    """Read and validate a ``tasks.toml`` file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    spec = parse_tasks(data, str(p))
    return AssignmentSpec(**{**spec.__dict__, "path": p})


def available_assignments(suites_dir: Path = SUITES_DIR) -> list[str]:
    """Assignments that have a suite with a ``tasks.toml``."""
    if not suites_dir.is_dir():
        return []
    return sorted(p.parent.name for p in suites_dir.glob("*/tasks.toml"))


def suite_dir(assignment: str, suites_dir: Path = SUITES_DIR) -> Path:
    """The hidden-suite directory of ``assignment``; ConfigError if unknown."""
    if not _ID_RE.match(assignment):
        raise ConfigError(f"unknown assignment {assignment!r}")
    d = suites_dir / assignment
    if not (d / "tasks.toml").is_file():
        known = ", ".join(available_assignments(suites_dir)) or "none"
        raise ConfigError(f"unknown assignment {assignment!r} (known: {known})")
    return d


def find_course_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate the course root (see the module docstring for the order)."""
    if explicit:
        root = Path(explicit).resolve()
        if not root.is_dir():
            raise ConfigError(f"course root {root} is not a directory")
        return root
    env = os.environ.get(COURSE_ROOT_ENV)
    if env:
        root = Path(env).resolve()
        if not root.is_dir():
            raise ConfigError(f"{COURSE_ROOT_ENV}={env} is not a directory")
        return root
    candidate = PACKAGE_DIR.parent
    if (candidate / "source").is_dir():
        return candidate
    raise ConfigError(
        f"cannot find the course root: pass --course-root or set {COURSE_ROOT_ENV}"
    )


def default_cache_dir(confined: bool) -> Path | None:
    """Where reference results (e.g. the reference's accuracy after training) are kept.

    ``$AUTOGRADER_CACHE_DIR`` when set; otherwise ``~/.cache/cvcourse/autograder``
    but only when workers are confined (they then run as another uid and
    cannot read or poison it); ``None`` (memory only) for unconfined runs.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    if confined:
        return Path.home() / ".cache" / "cvcourse" / "autograder"
    return None


def draw_seed() -> int:
    """A fresh secret base seed (``SEED_BITS`` random bits from the OS's CSPRNG).

    Not guessable from earlier seeds or from the per-test seeds derived from it
    (:func:`autograder.plugin.derive_seed` hashes it): see docs/threat-model.md.
    """
    return secrets.randbits(SEED_BITS)
