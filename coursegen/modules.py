"""The module stripper: nbgrader's solution markers, applied to ``.py`` / ``.pyx`` files.

nbgrader clears solution regions in notebooks only and copies every other file
verbatim, so a course library with solutions in it would leak them. This module
does for library modules what nbgrader does for notebook cells, with one
addition: every region names the task it belongs to, and the stub raises
``NotImplementedError`` naming that task (the same id as the grader's pytest
marker and points-table row).

Marker grammar (each marker alone on its line, ``#`` comments, so it works for
Python and Cython alike)::

    ### BEGIN SOLUTION <task_id>      ...  ### END SOLUTION
    ### BEGIN HIDDEN TESTS            ...  ### END HIDDEN TESTS

Modes:

``release``
    solution regions become a stub at the BEGIN marker's indentation; hidden
    test regions vanish.
``solution``
    marker lines vanish, solution code stays; hidden test regions vanish (this is
    what gets posted to students after the deadline).

Any malformed marker raises :class:`MarkerError` naming ``file:line``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["release", "solution"]
MODES: tuple[str, ...] = ("release", "solution")

#: File suffixes the stripper processes; everything else is copied untouched.
MODULE_SUFFIXES: tuple[str, ...] = (".py", ".pyx", ".pxd")

_MARKER = re.compile(r"^(?P<indent>[ \t]*)###\s*(?P<kind>BEGIN|END)\s+(?P<what>SOLUTION|HIDDEN TESTS)\b(?P<rest>.*)$")
_LOOSE = re.compile(r"(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)")
_TASK_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async\s+def|def|cpdef|cdef)\s+(?:[\w\[\], .*]+\s+)?(?P<name>\w+)\s*\(")


class MarkerError(ValueError):
    """A malformed solution or hidden-test marker in a module."""

    def __init__(self, filename: str, line: int, reason: str) -> None:
        super().__init__(f"{filename}:{line}: {reason}")
        self.filename = filename
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Region:
    """One solution or hidden-test region found in a module."""

    kind: Literal["SOLUTION", "HIDDEN TESTS"]
    task: str | None
    function: str | None
    begin: int  # 1-based line of the BEGIN marker
    end: int  # 1-based line of the END marker
    indent: str
    body: tuple[str, ...]  # the lines strictly between the markers


def _enclosing_function(lines: list[str], index: int, indent: str) -> str | None:
    """Name of the innermost ``def`` above ``lines[index]`` that encloses ``indent``."""
    for j in range(index - 1, -1, -1):
        m = _DEF.match(lines[j])
        if m and len(m.group("indent").expandtabs()) < len(indent.expandtabs()):
            return m.group("name")
    return None


def find_regions(text: str, filename: str = "<string>") -> list[Region]:
    """Parse ``text`` and return its regions, validating every marker.

    Raises :class:`MarkerError` for: a marker that is not alone on its line, an
    unknown marker spelling, END without BEGIN, BEGIN inside an open region, a
    region never closed, END at another indentation than its BEGIN, a solution
    region without a task id (or with an invalid one) or outside any function.
    """
    lines = text.splitlines()
    regions: list[Region] = []
    open_: tuple[str, str | None, int, str] | None = None  # kind, task, line index, indent
    for i, line in enumerate(lines):
        m = _MARKER.match(line)
        if m is None:
            if _LOOSE.search(line) and "###" in line:
                raise MarkerError(filename, i + 1, "marker must stand alone on its line: " + line.strip())
            continue
        kind, what, rest, indent = m.group("kind"), m.group("what"), m.group("rest").strip(), m.group("indent")
        if kind == "BEGIN":
            if open_ is not None:
                raise MarkerError(
                    filename, i + 1, f"BEGIN {what} inside the {open_[0]} region opened at line {open_[2] + 1}"
                )
            task: str | None = None
            if what == "SOLUTION":
                if not rest:
                    raise MarkerError(filename, i + 1, "BEGIN SOLUTION needs a task id: '### BEGIN SOLUTION <task_id>'")
                if not _TASK_ID.match(rest):
                    raise MarkerError(filename, i + 1, f"invalid task id {rest!r} (use a Python identifier)")
                task = rest
                if not indent:
                    raise MarkerError(filename, i + 1, "solution region at module level: put it inside a function")
            elif rest:
                raise MarkerError(filename, i + 1, f"unexpected text after BEGIN HIDDEN TESTS: {rest!r}")
            open_ = (what, task, i, indent)
        else:
            if rest:
                raise MarkerError(filename, i + 1, f"unexpected text after END {what}: {rest!r}")
            if open_ is None:
                raise MarkerError(filename, i + 1, f"END {what} without a matching BEGIN")
            if open_[0] != what:
                raise MarkerError(
                    filename, i + 1, f"END {what} closes the {open_[0]} region opened at line {open_[2] + 1}"
                )
            if indent != open_[3]:
                raise MarkerError(
                    filename, i + 1, f"END {what} is indented differently from its BEGIN at line {open_[2] + 1}"
                )
            begin = open_[2]
            function = _enclosing_function(lines, begin, open_[3])
            if what == "SOLUTION" and function is None:
                raise MarkerError(filename, begin + 1, "solution region outside any function")
            regions.append(
                Region(
                    kind=what,  # type: ignore[arg-type]
                    task=open_[1],
                    function=function,
                    begin=begin + 1,
                    end=i + 1,
                    indent=open_[3],
                    body=tuple(lines[begin + 1 : i]),
                )
            )
            open_ = None
    if open_ is not None:
        raise MarkerError(filename, open_[2] + 1, f"BEGIN {open_[0]} is never closed")
    return regions


def stub_lines(region: Region) -> list[str]:
    """The student's stub for a solution region."""
    message = f"{region.task}: {region.function} is not implemented yet (see the TODO above)"
    return [
        f"{region.indent}# TODO({region.task}): your code here",
        f'{region.indent}raise NotImplementedError("{message}")',
    ]


def transform_source(text: str, *, mode: Mode, filename: str = "<string>") -> str:
    """Return ``text`` with its regions turned into the ``mode`` form (see module doc)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    regions = find_regions(text, filename)
    if not regions:
        return text
    lines = text.splitlines()
    out: list[str] = []
    cursor = 0
    for region in regions:
        out.extend(lines[cursor : region.begin - 1])
        if region.kind == "SOLUTION":
            out.extend(stub_lines(region) if mode == "release" else region.body)
        cursor = region.end
    out.extend(lines[cursor:])
    trailing = "\n" if text.endswith("\n") else ""
    return "\n".join(out) + trailing


def module_files(root: Path) -> list[Path]:
    """Every module under ``root`` the stripper processes, sorted, caches skipped."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in MODULE_SUFFIXES
        and not any(part in {"__pycache__", ".ipynb_checkpoints"} for part in p.parts)
    )


def check_tree(root: Path, known_tasks: Iterable[str] | None = None) -> dict[Path, list[Region]]:
    """Validate every module under ``root`` without writing anything.

    With ``known_tasks``, a solution region whose task id is not among them is an
    error too (the declaration and the markers must agree: generation passes the
    declared tasks and ungraded regions).
    """
    known = set(known_tasks) if known_tasks is not None else None
    found: dict[Path, list[Region]] = {}
    for path in module_files(root):
        regions = find_regions(path.read_text(encoding="utf-8"), str(path))
        if known is not None:
            for region in regions:
                if region.kind == "SOLUTION" and region.task not in known:
                    raise MarkerError(
                        str(path), region.begin, f"task id {region.task!r} is not declared (tasks.toml has no [tasks.{region.task}] "
                        "and does not list it in [assignment] ungraded_regions)"
                    )
        found[path] = regions
    return found


def transform_tree(root: Path, *, mode: Mode) -> list[Path]:
    """Rewrite every module under ``root`` in place; return the files that changed.

    All files are parsed before any is written, so a malformed marker anywhere
    leaves the tree untouched.
    """
    planned: list[tuple[Path, str]] = []
    for path in module_files(root):
        text = path.read_text(encoding="utf-8")
        new = transform_source(text, mode=mode, filename=str(path))
        if new != text:
            planned.append((path, new))
    for path, new in planned:
        mode_bits = path.stat().st_mode
        path.chmod(mode_bits | 0o200)  # nbgrader may have made the copy read-only
        path.write_text(new, encoding="utf-8")
        path.chmod(mode_bits)
    return [p for p, _ in planned]
