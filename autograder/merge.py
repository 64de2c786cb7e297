"""``autograder merge SHARD_OUTPUT... --output DIR``: one gradebook from N shards.

Each ``SHARD_OUTPUT`` is the output folder of one ``grade-all --shard K/N``
(:mod:`autograder.shards`). Before anything is written, the shards must agree
(their ``shard.json`` manifests): the same assignment, grader key (hidden
suite, reference library and grading options, :mod:`autograder.fingerprints`),
feedback audience, ``N`` and whole class (count and digest of every student id
each shard discovered); every shard ``0..N-1`` must be given exactly once, no
student may appear in two shards, the students of the shards together must be
exactly the class, and every student's ``batch.json`` must carry the shards'
grader key. Any disagreement is refused with one line and exit code 2.

Then each student's folder is copied into ``DIR`` (built in a staging folder
and swapped in whole, as ``grade-all`` does), ``gradebook.csv`` is written
from the students' ``batch.json`` in the same order and format as one
``grade-all`` of the whole class (only the ``seconds`` column, a timing,
differs), and ``DIR/shard.json`` records the whole class as shard ``0/1``, so
``DIR`` is a ``grade-all`` output itself (a later ``grade-all --output DIR``
skips the unchanged students). With ``--gradebook`` the scores also go into
nbgrader's gradebook, as ``grade-all`` writes them (shards never do).

Exit codes: 0 when every student has a complete report, 1 when some
grading failed inside the grader in its shard (listed on stderr; re-run that
shard, then merge again) or nbgrader's gradebook could not be written, 2 for
misuse or shards that do not fit together.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import config as cfg
from autograder.batch_store import (
    GRADEBOOK_CSV,
    StudentOutcome,
    install,
    load_outcome,
    write_atomic,
    write_gradebook_csv,
)
from autograder.shards import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    class_digest,
    read_manifest,
)

__all__ = ["MergeError", "MergeResult", "add_parser", "main_command", "merge"]

COMMAND = "merge"
STAGING_DIR = ".staging"


class MergeError(Exception):
    """Shards that cannot be merged (nothing has been written)."""


@dataclass
class MergeResult:
    """What :func:`merge` wrote."""

    output: Path
    gradebook_csv: Path
    outcomes: list[StudentOutcome]
    nbgrader_gradebook: str | None = None
    nbgrader_recorded: int = 0
    nbgrader_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[StudentOutcome]:
        """Students whose grading failed inside the grader (zero placeholder reports)."""
        return [o for o in self.outcomes if not o.complete]

    @property
    def complete(self) -> bool:
        """Every student has a complete report and nbgrader's gradebook (if any) took them."""
        return not self.failed and self.nbgrader_error is None


def _check_agree(shards: list[tuple[Path, Manifest]]) -> Manifest:
    """The common manifest of ``shards``; :class:`MergeError` naming the first disagreement."""
    first_dir, first = shards[0]
    checks = [
        ("assignment", "shards graded different assignments"),
        ("grader_key", "shards graded with different suites, options or reference (grader "
                       "keys differ)"),
        ("audience", "shards wrote feedback for different audiences (--feedback)"),
        ("shards", "shards split the class into different numbers of shards"),
        ("class_digest", "shards saw different classes (the submissions folder changed "
                         "between shards; grade every shard from one copy of it)"),
    ]
    for where, m in shards[1:]:
        for name, what in checks:
            a, b = getattr(first, name), getattr(m, name)
            if a != b:
                shown = (a[:12], b[:12]) if name in ("grader_key", "class_digest") else (a, b)
                raise MergeError(f"{what}: {shown[0]} in {first_dir}, {shown[1]} in {where}")
    seen: dict[int, Path] = {}
    for where, m in shards:
        if m.shard in seen:
            raise MergeError(f"shard {m.shard}/{m.shards} given twice: {seen[m.shard]} and "
                             f"{where}")
        seen[m.shard] = where
    missing = [k for k in range(first.shards) if k not in seen]
    if missing:
        raise MergeError(f"missing shard(s) {', '.join(f'{k}/{first.shards}' for k in missing)}"
                         f" (got {len(seen)} of {first.shards})")
    return first


def _collect(shards: list[tuple[Path, Manifest]], common: Manifest
             ) -> dict[str, tuple[Path, StudentOutcome]]:
    """Every student's folder and outcome; :class:`MergeError` for duplicates and gaps."""
    found: dict[str, tuple[Path, StudentOutcome]] = {}
    for where, m in shards:
        for student in m.students:
            if student in found:
                raise MergeError(f"student {student} is in two shards: {found[student][0]} "
                                 f"and {where}")
            folder = where / student
            outcome = load_outcome(folder)
            if outcome is None or outcome.student != student:
                raise MergeError(f"{folder}: no complete report of {student} (re-run shard "
                                 f"{m.shard}/{m.shards})")
            if outcome.grader_key != common.grader_key:
                raise MergeError(f"{folder}: graded by another grader than its shard "
                                 f"(re-run shard {m.shard}/{m.shards})")
            found[student] = (folder, outcome)
    if len(found) != common.class_count or class_digest(found) != common.class_digest:
        raise MergeError(f"the shards hold {len(found)} students, not the class of "
                         f"{common.class_count} they discovered (re-run the shards)")
    return found


def merge(shard_outputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *,
          gradebook: str | os.PathLike[str] | None = None,
          course_id: str | None = None) -> MergeResult:
    """Merge the ``grade-all --shard`` outputs into ``output`` (see the module docstring).

    ``gradebook`` (a ``gradebook.db`` path or database URL) also records the
    scores in nbgrader's gradebook (``course_id``: see
    :func:`autograder.nbgrader_gradebook.record_scores`). Raises
    :class:`MergeError`, having written nothing, when the shards do not fit
    together.
    """
    if not shard_outputs:
        raise MergeError("no shard outputs given")
    out = Path(output).resolve()
    shards: list[tuple[Path, Manifest]] = []
    for given in shard_outputs:
        where = Path(given).resolve()
        if where == out or out.is_relative_to(where) or where.is_relative_to(out):
            raise MergeError(f"the output {out} must be outside the shard output {where}")
        try:
            shards.append((where, read_manifest(where)))
        except ManifestError as exc:
            raise MergeError(str(exc)) from None
    common = _check_agree(shards)
    try:
        spec = cfg.parse_declaration(common.tasks_toml, f"{MANIFEST_FILE} tasks.toml")
    except cfg.ConfigError as exc:
        raise MergeError(f"{shards[0][0] / MANIFEST_FILE}: damaged tasks.toml ({exc})") from None
    found = _collect(shards, common)

    out.mkdir(parents=True, exist_ok=True)
    staging_root = out / STAGING_DIR
    shutil.rmtree(staging_root, ignore_errors=True)
    staging_root.mkdir()
    try:
        for student in sorted(found):
            staging = staging_root / f"{student}-{uuid.uuid4().hex[:8]}"
            shutil.copytree(found[student][0], staging, symlinks=True)
            install(staging, out / student)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    ordered = [found[s][1] for s in sorted(found)]
    result = MergeResult(output=out, gradebook_csv=out / GRADEBOOK_CSV, outcomes=ordered)
    write_gradebook_csv(result.gradebook_csv, spec, ordered)
    if gradebook is not None:
        from autograder.nbgrader_gradebook import GradebookEntry, db_url, record_scores

        left = [o.student for o in ordered if not o.complete]
        if left:
            result.notes.append("not written to nbgrader's gradebook (grading failed, re-run "
                                "its shard and merge again): " + ", ".join(left))
        result.nbgrader_gradebook = db_url(gradebook)
        try:
            result.nbgrader_recorded = record_scores(
                gradebook, spec, [GradebookEntry(o.student, o.tasks, o.timestamp)
                                  for o in ordered if o.complete], course_id=course_id)
        except Exception as exc:  # the reports and the CSV are written: say so, go on
            result.nbgrader_error = f"{type(exc).__name__}: {exc}"[:1000]
    whole = Manifest(assignment=common.assignment, shard=0, shards=1,
                     grader_key=common.grader_key, audience=common.audience,
                     tasks_toml=common.tasks_toml, class_count=common.class_count,
                     class_digest=common.class_digest, students=sorted(found))
    write_atomic(out / MANIFEST_FILE, whole.to_text())
    return result


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``autograder merge`` on the CLI's subparsers."""
    p = sub.add_parser(
        COMMAND, help="combine the outputs of 'grade-all --shard K/N' into one gradebook",
        description="Combine the output folders of 'grade-all --shard 0/N' .. "
                    "'--shard N-1/N' into one output with every student's folder and one "
                    "gradebook.csv, as one grade-all of the whole class writes. Refuses "
                    "shards graded with different suites, options, reference or "
                    "assignment, missing shards and students in two shards.")
    p.add_argument("shard_outputs", nargs="+", metavar="SHARD_OUTPUT",
                   help="output folder of one 'grade-all --shard K/N'")
    p.add_argument("--output", required=True, help="folder for the merged outputs")
    p.add_argument("--gradebook", default=None, metavar="PATH",
                   help="also write the scores into this nbgrader gradebook (a gradebook.db "
                        "path or a database URL; default: none)")
    p.add_argument("--course-id", default=None,
                   help="nbgrader course id for a new assignment (default: the gradebook's "
                        "only course, else nbgrader's default_course)")
    return p


def main_command(args: argparse.Namespace) -> int:
    """Run ``autograder merge`` for parsed ``args``; returns the exit code."""
    err = sys.stderr
    try:
        result = merge(args.shard_outputs, args.output, gradebook=args.gradebook,
                       course_id=args.course_id)
    except MergeError as exc:
        print(f"autograder: error: {exc}", file=err)
        return 2
    except OSError as exc:  # copying or writing the merged output failed
        print(f"autograder: error: could not write {args.output}: {exc}", file=err)
        return 1
    for note in result.notes:
        print(f"note: {note}", file=err)
    summary = (f"{len(result.outcomes)} students from {len(args.shard_outputs)} shard(s), "
               f"{len(result.failed)} failed in the grader; gradebook: {result.gradebook_csv}")
    if result.nbgrader_gradebook:
        summary += (f"; nbgrader: {result.nbgrader_recorded} recorded in "
                    f"{result.nbgrader_gradebook}")
    print(summary)
    for o in result.failed:
        print(f"FAILED {o.student}: {o.message}", file=err)
    if result.nbgrader_error:
        print(f"autograder: could not write nbgrader's gradebook {result.nbgrader_gradebook}: "
              f"{result.nbgrader_error}", file=err)
    return 0 if result.complete else 1
