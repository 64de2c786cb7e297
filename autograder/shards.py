"""Splitting a class into shards, and what each shard records about itself.

``grade-all --shard K/N`` grades the students whose shard is ``K`` (``0 <= K <
N``); ``autograder merge`` (:mod:`autograder.merge`) combines the N outputs.

Which shard a student is in (:func:`shard_of`)
    The first 8 bytes of the sha256 of the student id (UTF-8), as a big-endian
    integer, modulo N. It depends on nothing but the id and N, so adding or
    removing students never moves another student to another shard, and every
    machine agrees without talking to the others. Shards are only roughly equal
    in size (a binomial spread around ``class / N``).

The manifest (:data:`MANIFEST_FILE`, ``shard.json`` in every ``grade-all`` output)
    Written last by every ``grade-all`` run (a whole-class run is shard ``0/1``):
    the assignment, ``shard``/``shards``, the grader key (sha256 of the hidden
    suite, reference library and grading options, see
    :mod:`autograder.fingerprints`), the feedback audience, the suite's
    ``tasks.toml`` text (the gradebook's columns), the count and a sha256 of
    every student id discovered in the whole class (so that shards that saw
    different submission folders are told apart), and the ids this shard
    graded. ``merge`` refuses shards whose manifests disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_FILE", "MANIFEST_FORMAT", "Manifest", "ManifestError", "Shard",
           "WHOLE_CLASS", "class_digest", "read_manifest", "shard_of"]

MANIFEST_FILE = "shard.json"
MANIFEST_FORMAT = 1  # bumped when the manifest's meaning changes
_SHARD_RE = re.compile(r"(\d{1,6})/(\d{1,6})")


class ManifestError(Exception):
    """A ``grade-all`` output without a usable manifest."""


def shard_of(student: str, shards: int) -> int:
    """The shard (``0 .. shards-1``) that grades ``student`` (see the module docstring)."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def class_digest(students: Iterable[str]) -> str:
    """sha256 of the sorted student ids, one per line."""
    text = "".join(s + "\n" for s in sorted(students))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` -> ``Shard(K, N)``; raises :class:`ValueError` with a one-line reason."""
        m = _SHARD_RE.fullmatch(text.strip())
        if m is None:
            raise ValueError(f"--shard {text!r}: expected K/N, e.g. 0/4 (K counts from 0)")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or index >= count:
            raise ValueError(f"--shard {text!r}: K must be in 0..N-1 and N at least 1")
        return cls(index, count)

    def holds(self, student: str) -> bool:
        """True when this shard grades ``student``."""
        return shard_of(student, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE_CLASS = Shard(0, 1)


@dataclass(frozen=True)
class Manifest:
    """The content of ``shard.json`` (see the module docstring)."""

    assignment: str
    shard: int
    shards: int
    grader_key: str
    audience: str
    tasks_toml: str
    class_count: int
    class_digest: str
    students: list[str]
    format: int = MANIFEST_FORMAT

    def to_text(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def _plain_id(student: str) -> bool:
    """A student id usable as a folder name of the output (as discovery accepts them)."""
    return bool(student) and not student.startswith(".") and "/" not in student \
        and "\\" not in student and student.isprintable()


def read_manifest(output: Path) -> Manifest:
    """The manifest of the ``grade-all`` output folder ``output``; :class:`ManifestError`
    when it is missing, damaged or of another format."""
    path = output / MANIFEST_FILE
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{output} is not a grade-all output (no {MANIFEST_FILE}; "
                            f"re-run grade-all into it)") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: not a shard manifest of format {MANIFEST_FORMAT} "
                            f"(re-run grade-all with this version)")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise ManifestError(f"{path}: damaged ({exc})") from None
    ok = (isinstance(manifest.students, list)
          and all(isinstance(s, str) and _plain_id(s) for s in manifest.students)
          and all(isinstance(v, int) and not isinstance(v, bool)
                  for v in (manifest.shard, manifest.shards, manifest.class_count))
          and 0 <= manifest.shard < manifest.shards
          and all(isinstance(v, str) for v in (manifest.assignment, manifest.grader_key,
                                                manifest.audience, manifest.tasks_toml,
                                                manifest.class_digest)))
    if not ok:
        raise ManifestError(f"{path}: damaged (a field has the wrong type or range, or a "
                            f"student id is not a plain folder name)")
    return manifest
