"""Command line: ``autograder grade SUBMISSION --assignment A`` and ``autograder tasks``.

Exit codes: 0 whenever a complete report was written, whatever the score and
even when the grader itself failed (the report then says so, and a warning
goes to stderr); 1 when the report could not be written; 2 for command-line
misuse (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy is imported below

from autograder import config as cfg  # noqa: E402
from autograder.options import (  # noqa: E402
    GradeOptions,
    OptionsError,
    add_grading_options,
    unwritable,
)


class _Misuse(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Misuse(message)


def _version() -> str:
    """The installed cvcourse version ("unknown" when the project is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("cvcourse")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (defaults come from :mod:`autograder.config`)."""
    p = _Parser(prog="autograder", description="Grade submissions against hidden test suites.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("grade", help="grade one submission and write results.json")
    g.add_argument("submission", help="the submission: a directory or a .zip file")
    g.add_argument("--assignment", required=True, help="assignment name, e.g. assignment1")
    g.add_argument("--results", default=cfg.DEFAULT_RESULTS,
                   help=f"where to write Gradescope's JSON (default ./{cfg.DEFAULT_RESULTS})")
    add_grading_options(g)
    g.add_argument("--task", action="append", default=None, metavar="TASK",
                   help="grade only this task id (repeatable; default: every task of the "
                        "assignment); the others are reported as not graded")
    g.add_argument("-q", "--quiet", action="store_true", help="do not print the score table")
    t = sub.add_parser("tasks", help="list an assignment's tasks and points")
    t.add_argument("--assignment", required=True, help="assignment name, e.g. assignment1")
    t.add_argument("--suite-dir", default=None,
                   help="use this suite directory instead of the installed one (for testing)")
    _add_classroom_parser(sub)
    from autograder.gradescope import add_build_parser

    add_build_parser(sub)
    from autograder import batch_cli

    batch_cli.add_parser(sub)
    from autograder import merge

    merge.add_parser(sub)
    from autograder import similarity

    similarity.add_parser(sub)
    return p


def _add_classroom_parser(sub: argparse._SubParsersAction) -> None:
    from autograder import classroom

    c = sub.add_parser("classroom-fetch",
                       help="clone a GitHub Classroom's student repositories for grade-all")
    c.add_argument("--org", required=True, help="the classroom's GitHub organisation")
    c.add_argument("--prefix", required=True,
                   help="the assignment's repository prefix, e.g. 'assignment1-'")
    c.add_argument("--dest", required=True, help="folder to write DEST/<login>/ into")
    c.add_argument("--roster", default=None,
                   help="file of student logins, one per line (default: list the "
                        "organisation's repositories with the prefix, via the GitHub API)")
    c.add_argument("--url-template", default=classroom.DEFAULT_URL_TEMPLATE,
                   help="clone URL with {org}, {repo}, {student} (default "
                        f"{classroom.DEFAULT_URL_TEMPLATE})")
    c.add_argument("--api", default=classroom.DEFAULT_API,
                   help=f"GitHub API root (default {classroom.DEFAULT_API})")


def _classroom_fetch(args: argparse.Namespace) -> int:
    from autograder import classroom

    try:
        roster = classroom.read_roster(args.roster) if args.roster else None
        results = classroom.fetch_all(
            args.org, args.prefix, args.dest, roster=roster, token=classroom.token_from_env(),
            url_template=args.url_template, api=args.api)
    except (classroom.ClassroomError, OSError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.student:20s} {r.commit[:12] or r.message}")
    failed = sum(not r.ok for r in results)
    print(f"fetched {len(results) - failed} of {len(results)} repositories into {args.dest}")
    return 0


def _spec(assignment: str, suite_dir: str | None) -> tuple[Path, cfg.AssignmentSpec]:
    suite = Path(suite_dir) if suite_dir else cfg.suite_dir(assignment)
    return suite, cfg.load_tasks(suite / "tasks.toml")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``autograder`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "grade-all":
            from autograder import batch_cli

            return batch_cli.run(args)
        if args.command == "merge":
            from autograder import merge

            return merge.main_command(args)
        if args.command == "classroom-fetch":
            return _classroom_fetch(args)
        if args.command == "build":
            from autograder.gradescope import build_command

            return build_command(args)
        if args.command == "similarity":
            from autograder import similarity

            return similarity.main_command(args)
        suite, spec = _spec(args.assignment, args.suite_dir)
        if args.command == "tasks":
            for task in spec.tasks.values():
                print(f"{task.id:28s} {task.points:6g}  {task.visibility:15s} {task.title}")
            print(f"{'total':28s} {spec.max_score:6g}")
            return 0
        if not os.path.exists(args.submission):
            raise _Misuse(f"submission {args.submission} does not exist")
        options = GradeOptions.from_args(args)
        why = unwritable(args.results)
        if why:
            raise _Misuse(f"--results {args.results} cannot be written: {why}")
        unknown = [t for t in args.task or [] if t not in spec.tasks]
        if unknown:
            raise _Misuse(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(spec.tasks)}")
    except (_Misuse, OptionsError, cfg.ConfigError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2

    from autograder.report import print_table
    from autograder.runner import grade

    try:
        report = grade(args.submission, args.assignment, results_path=args.results,
                       tasks=args.task, quiet=True,
                       **{**options.grade_kwargs(), "suite_dir": suite})
    except OSError as exc:  # the report itself could not be written
        print(f"autograder: error: could not write {args.results}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print_table(report)
    if report.internal_errors or any(t.internal_error for t in report.tasks):
        print(f"autograder: warning: the grader itself failed; {args.results} says why",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
