"""``autograder grade-all``: the command-line face of :mod:`autograder.batch`.

Exit codes: 0 when every student has a complete report from the grader
(whatever the scores), 1 when the grading of one or more students failed
inside the grader (they get a zero report saying so and are listed on stderr;
a re-run retries them), 2 for misuse (one line on stderr), 130 when
interrupted (what was finished is kept; a re-run continues).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from autograder import config as cfg
from autograder.options import GradeOptions, OptionsError, add_grading_options, unwritable

COMMAND = "grade-all"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``grade-all`` on the CLI's subparsers (defaults from the library)."""
    from autograder.batch import DEFAULT_OUTPUT_ROOT, HARD_LIMIT_GRACE
    from autograder.feedback import AUDIENCES, DEFAULT_AUDIENCE

    g = sub.add_parser(
        COMMAND, help="grade a folder of submissions in parallel (resumable) and write "
                      "per-student feedback and a gradebook",
        description="Grade every submission in SUBMISSIONS: a folder with one directory or "
                    ".zip per student (named by the student id), or an nbgrader course "
                    "directory (or its submitted/ folder) with submitted/<student>/"
                    "<assignment>/. A re-run skips students whose submission and grader "
                    "are unchanged.")
    g.add_argument("submissions", help="folder of submissions, or an nbgrader course directory")
    g.add_argument("--assignment", required=True, help="assignment name, e.g. assignment1")
    g.add_argument("-j", "--jobs", type=int, default=None,
                   help="submissions graded at once (default: the number of CPU cores)")
    g.add_argument("--output", default=None,
                   help=f"folder for the per-student reports and gradebook.csv (default "
                        f"./{DEFAULT_OUTPUT_ROOT}/<assignment>)")
    g.add_argument("--shard", default=None, metavar="K/N",
                   help="grade only shard K of N (K from 0 to N-1): the students whose id "
                        "hashes to K, so adding students never moves others; combine the N "
                        "outputs with 'autograder merge' (default: the whole class)")
    g.add_argument("--force", action="store_true",
                   help="regrade every submission, even unchanged ones")
    book = g.add_mutually_exclusive_group()
    book.add_argument("--gradebook", default=None, metavar="PATH",
                      help="also write the scores into this nbgrader gradebook (a gradebook.db "
                           "path or a database URL; default: <course>/gradebook.db for "
                           "nbgrader's layout, none otherwise)")
    book.add_argument("--no-gradebook", action="store_true",
                      help="do not write nbgrader's gradebook")
    g.add_argument("--course-id", default=None,
                   help="nbgrader course id for a new assignment (default: the gradebook's "
                        "only course, else nbgrader's default_course)")
    g.add_argument("--feedback", choices=AUDIENCES, default=DEFAULT_AUDIENCE,
                   help="what the feedback files show: student (visible tasks only; the "
                        "default), released (every task's result, details of all but "
                        "hidden tasks) or instructor (everything)")
    add_grading_options(g)
    g.add_argument("--hard-limit", type=float, default=None,
                   help=f"seconds after which a grading process is stopped and the student "
                        f"gets an internal-error report (default: the time limit + "
                        f"{HARD_LIMIT_GRACE:g})")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar (a line per student is printed when stderr is not "
                        "a terminal)")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="print only problems and the final summary line")
    return g


class _Reporter:
    """Progress on stderr: a tqdm bar on a terminal, else one line per student."""

    def __init__(self, stream: TextIO, *, bar: bool, quiet: bool) -> None:
        self.stream = stream
        self.bar_wanted = bar and not quiet and stream.isatty()
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, event: Any) -> None:
        o = event.outcome
        if event.kind == "grading":
            if self.bar_wanted:
                from tqdm import tqdm

                self.bar = tqdm(total=event.to_grade, desc="grading", unit="submission",
                                file=self.stream, dynamic_ncols=True)
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"{o.student}: {o.score:g}/{o.max_score:g}", refresh=False)
            self.bar.update(1)
            if not o.complete:
                self.bar.write(f"{o.student}: {o.message}", file=self.stream)
            return
        if self.quiet and o.complete:
            return
        if event.kind == "skipped" and not self.quiet:
            if event.done == event.total - event.to_grade:
                print(f"kept {event.done} unchanged report(s)", file=self.stream, flush=True)
            return
        line = f"[{event.done}/{event.total}] {o.student}: {o.score:g}/{o.max_score:g} " \
               f"({o.status.replace('_', ' ')}, {o.seconds:.1f} s)"
        if not o.complete:
            line += f": {o.message}"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    """Run ``grade-all`` for parsed ``args``; returns the exit code."""
    from autograder.batch import BatchError, Shard, grade_all

    err = sys.stderr
    if args.jobs is not None and args.jobs < 1:
        return _misuse("-j/--jobs must be at least 1")
    if args.hard_limit is not None and not args.hard_limit > 0:
        return _misuse("--hard-limit must be positive")
    try:
        options = GradeOptions.from_args(args)
    except OptionsError as exc:
        return _misuse(str(exc))
    try:
        shard = Shard.parse(args.shard) if args.shard is not None else None
    except ValueError as exc:
        return _misuse(str(exc))
    from autograder.batch import default_output

    output = args.output if args.output is not None else default_output(args.assignment)
    why = unwritable(output, folder=True)
    if why:
        return _misuse(f"--output {output} cannot be written: {why}")
    gradebook: Any = False if args.no_gradebook else args.gradebook
    reporter = _Reporter(err, bar=not args.no_progress, quiet=args.quiet)
    try:
        result = grade_all(
            args.submissions, args.assignment, output=args.output, jobs=args.jobs,
            force=args.force, options=options, audience=args.feedback, gradebook=gradebook,
            course_id=args.course_id, hard_limit=args.hard_limit, progress=reporter,
            shard=shard,
        )
    except (BatchError, cfg.ConfigError) as exc:
        reporter.close()
        return _misuse(str(exc))
    except KeyboardInterrupt:
        reporter.close()
        print("autograder: interrupted; finished reports are kept, a re-run continues",
              file=err)
        return 130
    reporter.close()
    if not args.quiet:
        for note in result.notes:
            print(f"note: {note}", file=err)
    graded, kept, failed = len(result.graded), len(result.skipped), result.failed
    where = f" in shard {shard}" if shard is not None else ""
    summary = (f"{len(result.outcomes)} students{where}: {graded} graded, {kept} unchanged, "
               f"{len(failed)} failed in the grader; gradebook: {result.gradebook_csv}")
    if result.nbgrader_gradebook:
        summary += f"; nbgrader: {result.nbgrader_recorded} recorded in " \
                   f"{result.nbgrader_gradebook}"
    print(summary)
    for o in failed:
        print(f"FAILED {o.student}: {o.message}", file=err)
    if result.nbgrader_error:
        print(f"autograder: could not write nbgrader's gradebook "
              f"{result.nbgrader_gradebook}: {result.nbgrader_error}", file=err)
    return 0 if result.complete else 1


def _misuse(message: str) -> int:
    print(f"autograder: error: {message}", file=sys.stderr)
    return 2
