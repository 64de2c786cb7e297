"""Command-line options shared by ``autograder grade`` and ``autograder grade-all``.

One definition, so both commands take the same grading settings with the same
defaults (read from :mod:`autograder.config`) and help texts.
"""

from __future__ import annotations

import argparse

from autograder import config as cfg


def add_grading_options(g: argparse.ArgumentParser) -> None:
    """Add the options that decide how each submission is graded."""
    g.add_argument("--seed", type=int, default=cfg.DEFAULT_SEED,
                   help="base seed of the per-test seeds (default: a fresh secret random "
                        "seed for each submission, recorded in report.json/batch.json and "
                        "results.json's extra_data, never shown to students; pass a recorded "
                        "seed to replay that grading)")
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
