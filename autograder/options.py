"""Grading settings: the command-line options shared by ``autograder grade`` and
``autograder grade-all``, and :class:`GradeOptions`, the settings a batch passes to
every grading.

One definition, so both commands take the same grading settings with the same
defaults (read from :mod:`autograder.config`) and help texts.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import config as cfg


class OptionsError(ValueError):
    """A grading setting is unusable; the message names the option, in one line."""


@dataclass(frozen=True)
class GradeOptions:
    """How each submission is graded: the settings ``grade`` and ``grade-all`` share.

    Built from the command line by :meth:`from_args` (which validates them,
    once, for both commands) and handed to :func:`autograder.runner.grade` as
    :meth:`grade_kwargs`. Fields: ``seed`` (base seed; ``None``: a fresh secret one
    per grading, see :func:`autograder.config.draw_seed`), ``course_root``,
    ``data_dir``, ``timeout`` (seconds per call, overriding ``tasks.toml``),
    ``time_limit`` (seconds per submission), ``memory_limit_mb`` (per worker),
    ``sandbox_user``, ``suite_dir``, ``require_isolation``.
    """

    seed: int | None = cfg.DEFAULT_SEED  # None: each grading draws its own secret seed
    course_root: str | None = None
    data_dir: str | None = None
    timeout: float | None = None
    time_limit: float | None = None
    memory_limit_mb: int | None = cfg.DEFAULT_MEMORY_LIMIT_MB
    sandbox_user: str | None = None
    suite_dir: str | None = None
    require_isolation: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> GradeOptions:
        """The options of :func:`add_grading_options` in ``args``, validated."""
        options = cls(
            seed=args.seed, course_root=args.course_root, data_dir=args.data_dir,
            timeout=args.timeout, time_limit=args.time_limit,
            memory_limit_mb=args.memory_limit, sandbox_user=args.sandbox_user,
            suite_dir=args.suite_dir, require_isolation=args.require_isolation)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise :class:`OptionsError` for the first unusable setting."""
        if self.memory_limit_mb is not None and self.memory_limit_mb <= 0:
            raise OptionsError("--memory-limit must be positive")
        for flag, value in (("--timeout", self.timeout), ("--time-limit", self.time_limit)):
            if value is not None and not value > 0:
                raise OptionsError(f"{flag} must be positive")
        if self.course_root is not None and not os.path.isdir(self.course_root):
            raise OptionsError(f"course root {self.course_root} is not a directory")

    def grade_kwargs(self) -> dict[str, Any]:
        """These settings as keyword arguments of :func:`autograder.runner.grade`."""
        return dict(seed=self.seed, course_root=self.course_root, data_dir=self.data_dir,
                    timeout=self.timeout, time_limit=self.time_limit,
                    memory_limit_mb=self.memory_limit_mb, sandbox_user=self.sandbox_user,
                    suite_dir=self.suite_dir, require_isolation=self.require_isolation)


def unwritable(path: str | os.PathLike[str], *, folder: bool = False) -> str | None:
    """Why ``path`` cannot be written, in a few words, or None when it can.

    ``path`` is a file to (over)write, or with ``folder`` a folder to create or
    fill. Checked before grading, so that a bad ``--results`` or ``--output``
    fails at once rather than after every submission was graded. Missing
    parent folders are fine when the nearest existing one is writable.
    """
    target = Path(path).absolute()
    if target.exists():
        if folder and not target.is_dir():
            return f"{target} is not a folder"
        if not folder and target.is_dir():
            return f"{target} is a folder"
        if not os.access(target, os.W_OK | (os.X_OK if folder else 0)):
            return f"{target} is not writable"
        if folder:
            return None
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None


def declared_defaults(setting: str) -> str:
    """What each declared assignment sets for ``setting`` (``timeout`` or ``time_limit``).

    For the help texts: ``"assignment1 60 s, assignment2 60 s (pytorch_my_model 300 s)"``,
    read from the installed declarations (per-task timeouts in parentheses).
    """
    parts = []
    try:
        for name in cfg.available_assignments():
            spec = cfg.load_assignment(name)
            text = f"{name} {getattr(spec, setting):g} s"
            if setting == "timeout":
                own = [f"{t.id} {t.timeout:g} s" for t in spec.tasks.values()
                       if t.timeout is not None]
                if own:
                    text += f" ({', '.join(own)})"
            parts.append(text)
    except cfg.ConfigError:
        return "each assignment's declaration, tasks.toml"
    return ", ".join(parts) or "each assignment's declaration, tasks.toml"


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
                   help="seconds per call into student code, for every task (default: the "
                        f"declaration's: {declared_defaults('timeout')})".replace("%", "%%"))
    g.add_argument("--time-limit", type=float, default=None,
                   help="seconds for each whole submission (default: the declaration's: "
                        f"{declared_defaults('time_limit')})".replace("%", "%%"))
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
