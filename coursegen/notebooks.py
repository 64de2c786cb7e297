"""Notebook helpers: nbgrader's cell markers, applied to notebook cells.

Notebook cells use nbgrader's own plain markers (no task id)::

    ### BEGIN SOLUTION        ...  ### END SOLUTION
    ### BEGIN HIDDEN TESTS    ...  ### END HIDDEN TESTS

nbgrader itself turns them into the student's release. This module produces the
*solution* form of a cell, the counterpart of
``coursegen.modules.transform_source(..., mode="solution")`` for modules: the
marker lines vanish, the solution (code or markdown answer) stays, and hidden
test regions vanish entirely.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

_CELL_MARKER = re.compile(r"^[ \t]*###\s*(?P<kind>BEGIN|END)\s+(?P<what>SOLUTION|HIDDEN TESTS)\s*$")
_LOOSE = re.compile(r"###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)")


class CellMarkerError(ValueError):
    """A malformed nbgrader marker in a notebook cell."""

    def __init__(self, where: str, line: int, reason: str) -> None:
        super().__init__(f"{where}:{line}: {reason}")
        self.where = where
        self.line = line
        self.reason = reason


def solution_cell_source(text: str, *, where: str = "<cell>") -> str:
    """Return a cell's source in solution form: markers removed, hidden tests dropped.

    Raises :class:`CellMarkerError` for an unclosed, unopened, nested or
    mismatched marker, or a marker that does not stand alone on its line.
    """
    lines = text.splitlines()
    out: list[str] = []
    open_: tuple[str, int] | None = None
    for i, line in enumerate(lines, start=1):
        m = _CELL_MARKER.match(line)
        if m is None:
            if _LOOSE.search(line):
                raise CellMarkerError(where, i, "marker must stand alone on its line: " + line.strip())
            if open_ is None or open_[0] == "SOLUTION":
                out.append(line)
            continue
        kind, what = m.group("kind"), m.group("what")
        if kind == "BEGIN":
            if open_ is not None:
                raise CellMarkerError(where, i, f"BEGIN {what} inside the {open_[0]} region opened at line {open_[1]}")
            open_ = (what, i)
        else:
            if open_ is None:
                raise CellMarkerError(where, i, f"END {what} without a matching BEGIN")
            if open_[0] != what:
                raise CellMarkerError(where, i, f"END {what} closes the {open_[0]} region opened at line {open_[1]}")
            open_ = None
    if open_ is not None:
        raise CellMarkerError(where, open_[1], f"BEGIN {open_[0]} is never closed")
    # Drop blank lines left dangling at the end (e.g. before a removed hidden-test region).
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def solution_notebook(nb: NotebookNode, *, name: str = "<notebook>") -> NotebookNode:
    """A copy of ``nb`` with every cell in solution form and no outputs."""
    new = copy.deepcopy(nb)
    for index, cell in enumerate(new.cells):
        cell.source = solution_cell_source(cell.source, where=f"{name}[cell {index}]")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return new


def check_notebook_markers(path: Path, *, name: str | None = None) -> None:
    """Validate every cell's markers of the notebook at ``path``.

    Raises :class:`CellMarkerError` reading ``NAME[cell K]:LINE: reason`` (``name``
    defaults to the file name; ``K`` is the 0-based cell index).
    """
    solution_notebook(read_notebook(path), name=name or path.name)


def code_sources(nb: NotebookNode) -> list[str]:
    """The sources of the code cells of ``nb``, in order."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def read_notebook(path: Path) -> NotebookNode:
    """Read a notebook as nbformat version 4."""
    return nbformat.read(path, as_version=4)
