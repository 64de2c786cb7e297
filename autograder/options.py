"""Grading settings: the command-line options shared by ``autograder grade`` and
``autograder grade-all``, and :class:`GradeOptions`, the settings a batch passes to
every grading.

One definition, so both commands take the same grading settings with the same
defaults (read from :mod:`autograder.config`) and help texts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from autograder import config as cfg


@dataclass(frozen=True)
class GradeOptions:
    """Options passed to :func:`autograder.runner.grade` for every submission."""

    seed: int = cfg.DEFAULT_SEED
    course_root: str | None = None
    data_dir: str | None = None
    timeout: float | None = None
    time_limit: float | None = None
    memory_limit_mb: int | None = cfg.DEFAULT_MEMORY_LIMIT_MB
    sandbox_user: str | None = None
    suite_dir: str | None = None
    require_isolation: bool = False


def add_grading_options(g: argparse.ArgumentParser) -> None:
    """Add the options that decide how each submission is graded."""
    g.add_argument("--seed", type=int, default=cfg.DEFAULT_SEED,
                   help=f"base seed for the per-test seeds (default {cfg.DEFAULT_SEED})")
    g.add_argument("--course-root", default=None,
                   help=f"course root holding source/<assignment>/ (default: ${cfg.COURSE_ROOT_ENV}"
                        " or the checkout containing the autograder package)")
    g.add_argument("--data-dir", default=None,
                   help="data directory holding cifar-10-batches-py (default: coursedata's "
                        "setting, $CVCOURSE_DATA_DIR)")
    g.add_argument("--timeout", type=float, default=None,
                   help="seconds per call into student code, for every task (default: "
                        "tasks.toml)")
    g.add_argument("--time-limit", type=float, default=None,
                   help="seconds for each whole submission (default: tasks.toml)")
    g.add_argument("--memory-limit", type=int, default=cfg.DEFAULT_MEMORY_LIMIT_MB,
                   help=f"address-space limit of a worker in MB "
                        f"(default {cfg.DEFAULT_MEMORY_LIMIT_MB})")
    g.add_argument("--sandbox-user", default=None,
                   help="user a confined worker runs as when the grader is root (default: a "
                        "uid of each submission's own, so limits and clean-up are per "
                        "submission)")
    g.add_argument("--require-isolation", action="store_true",
                   help="grade nothing (internal error) unless workers can be confined "
                        "(root and Linux namespaces); use it on Gradescope and in CI")
    g.add_argument("--suite-dir", default=None,
                   help="use this suite directory instead of the installed one (for testing)")
