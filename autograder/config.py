"""Grader configuration: defaults, course root discovery; the declaration's API re-exported.

Each assignment's declaration (``autograder/suites/<assignment>/tasks.toml``),
its format and its one parser are in :mod:`autograder.declaration`; its public
names (``load_tasks``, ``load_assignment``, ``available_assignments``,
``AssignmentSpec``, ``ConfigError``, the declaration's defaults...) are
re-exported here, so ``autograder.config`` stays the one place the CLI and the
engine read settings from.

The course root (holding ``source/<assignment>/<library>``, the reference) is
``--course-root``, else the environment variable ``AUTOGRADER_COURSE_ROOT``,
else the parent of the installed ``autograder`` package when it contains
``source/`` (a repository checkout or editable install).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from autograder.declaration import (
    DECLARATION,
    DEFAULT_BUILD_TIMEOUT,
    DEFAULT_EXCLUDE,
    DEFAULT_MAX_FILE_MB,
    DEFAULT_TIME_LIMIT,
    DEFAULT_TIMEOUT,
    PACKAGE_DIR,
    SUITES_DIR,
    VISIBILITIES,
    AssignmentSpec,
    BuildSpec,
    ConfigError,
    ReferenceModelSpec,
    StudentLibrary,
    SubmissionSpec,
    TaskSpec,
    available_assignments,
    course_suites_dir,
    load_assignment,
    load_tasks,
    parse_declaration,
    suite_dir,
)

__all__ = [
    "AssignmentSpec",
    "BuildSpec",
    "ConfigError",
    "ReferenceModelSpec",
    "DECLARATION",
    "DEFAULT_BUILD_TIMEOUT",
    "DEFAULT_EXCLUDE",
    "DEFAULT_MAX_FILE_MB",
    "DEFAULT_TIME_LIMIT",
    "DEFAULT_TIMEOUT",
    "PACKAGE_DIR",
    "SUITES_DIR",
    "StudentLibrary",
    "SubmissionSpec",
    "TaskSpec",
    "VISIBILITIES",
    "available_assignments",
    "course_suites_dir",
    "load_assignment",
    "load_tasks",
    "parse_declaration",
    "suite_dir",
    "CACHE_DIR_ENV", "COURSE_ROOT_ENV", "DEFAULT_FSIZE_LIMIT_MB", "DEFAULT_MEMORY_LIMIT_MB",
    "DEFAULT_RESULTS", "DEFAULT_SANDBOX_USER", "DEFAULT_SEED", "SEED_BITS", "default_cache_dir",
    "draw_seed", "find_course_root",
]

# The one place for the grader's defaults (the CLI reads them from here; those of
# the declaration's optional keys are autograder.declaration's, imported above).
# None: every grading draws a fresh secret base seed (draw_seed); the report records it
# (report.json, results.json's extra_data) and `--seed N` replays a grading exactly.
DEFAULT_SEED: int | None = None
SEED_BITS = 63  # size of a drawn base seed (fits JSON and SQLite integers)
DEFAULT_RESULTS = "results.json"
DEFAULT_MEMORY_LIMIT_MB = 4096
DEFAULT_FSIZE_LIMIT_MB = 64
DEFAULT_SANDBOX_USER: str | None = None  # confined workers get a uid of their own
COURSE_ROOT_ENV = "AUTOGRADER_COURSE_ROOT"
CACHE_DIR_ENV = "AUTOGRADER_CACHE_DIR"  # where reference results are remembered


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
