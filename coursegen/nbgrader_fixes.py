"""Fixes for nbgrader 0.9.6, installed by ``nbgrader_config.py``.

:class:`RestoreMissingCells` -- ``OverwriteCells.add_missing_cells`` puts a
deleted grade cell back after "the previous source cell", but looks that cell
up only among the submitted grade/solution cells: when the previous cell is a
locked instruction cell (the usual case), autograde crashes with ``KeyError``
and the submission is dropped. This subclass inserts the missing cell after the
nearest earlier source cell that the submission still has (any nbgrader cell),
or at the top.

:class:`HideHiddenTests` -- autograde puts the instructor's grade cells, hidden
tests included, back into the submitted notebook and executes it, and
``generate_feedback`` renders that notebook as it is: the student's feedback
would show the hidden tests' source, and the traceback of a failing hidden
assert quotes them again. This preprocessor, run first by
``GenerateFeedback``, removes them from the feedback.
"""

from __future__ import annotations

import html
import re

from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells
from nbgrader.utils import is_grade
from traitlets import Int, Unicode


class RestoreMissingCells(OverwriteCells):
    """``OverwriteCells`` whose missing-cell restoration never crashes."""

    def add_missing_grade_cells(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = source_nb.source_cells
        source_ids = [cell.name for cell in source_cells]
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}

        def present() -> dict[str, int]:
            return {
                cell.metadata["nbgrader"]["grade_id"]: idx
                for idx, cell in enumerate(nb.cells)
                if "grade_id" in cell.metadata.get("nbgrader", {})
            }

        for grade_id in source_ids:  # source order, so earlier restorations anchor later ones
            if grade_id not in grade_cells:
                continue
            where = present()
            if grade_id in where and is_grade(nb.cells[where[grade_id]]):
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_id)
            idx = source_ids.index(grade_id)
            cell = self.missing_cell_transform(
                source_cells[idx], grade_cells[grade_id].max_score, is_solution=grade_id in solution_ids
            )
            anchor = next((where[prev] for prev in reversed(source_ids[:idx]) if prev in where), -1)
            nb.cells.insert(anchor + 1, cell)
        return nb, resources


# CSI escape sequences: IPython colours tracebacks with them, even inside a source line.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


class HideHiddenTests(ClearHiddenTests):
    """Keep hidden tests out of the HTML feedback (for ``GenerateFeedback.preprocessors``).

    On the autograded notebook, before it is rendered:

    - every hidden-test region (markers included) is removed from the cell
      sources; a code cell keeps one ``placeholder`` comment line at the
      indentation of the region's BEGIN marker, so the student sees that the
      check has hidden parts;
    - an error raised in a cell that has hidden tests keeps its exception type
      and message (for an ``assert``, the message written for the student), but
      its traceback, which quotes the source around the failing line, is
      replaced by ``traceback_note``;
    - in every output of every cell (printed text, warnings, rich text outputs,
      error messages and tracebacks) a line that quotes a hidden-test line
      verbatim, ANSI colours and HTML escapes aside, is replaced by
      ``redaction``. Hidden lines that also occur outside the hidden regions of
      the notebook, or that are shorter than ``min_quote_length`` or have no
      letter or digit, are not searched for.

    Unlike ``ClearHiddenTests`` (whose delimiter settings it shares) it never
    raises: a region left open hides the rest of its cell, nested regions end
    at the outermost END, and regions in any cell are removed, not only in
    grade cells. It guards against the ways nbgrader itself shows hidden tests
    (the cell source and the tracebacks), and against verbatim quotes by
    student code; student code runs unsandboxed during ``nbgrader
    autograde``, so it could still encode what it reads (use the sandboxed
    ``autograder`` where that matters).
    """

    placeholder = Unicode(
        "# (hidden tests: not shown)",
        help="Comment line that stands for a removed hidden-test region in a code cell.",
    ).tag(config=True)

    traceback_note = Unicode(
        "(The traceback is not shown: this check includes hidden tests.)",
        help="Replaces the traceback of an error raised in a cell that has hidden tests.",
    ).tag(config=True)

    redaction = Unicode(
        "[a line quoting a hidden test was removed]",
        help="Replaces an output line that quotes a hidden-test line.",
    ).tag(config=True)

    min_quote_length = Int(
        8,
        help="Hidden-test lines shorter than this (stripped) are not searched for in outputs.",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        hidden_cells: set[int] = set()
        hidden_lines: set[str] = set()
        visible_lines: set[str] = set()
        for index, cell in enumerate(nb.cells):
            placeholder = self.placeholder if cell.cell_type == "code" else None
            source, hidden, visible = self._split_hidden(cell.source, placeholder)
            if source != cell.source:
                hidden_cells.add(index)
                cell.source = source
            hidden_lines.update(line.strip() for line in hidden)
            visible_lines.update(line.strip() for line in visible)
        quotes = sorted(
            (
                line
                for line in hidden_lines - visible_lines
                if len(line) >= self.min_quote_length and any(ch.isalnum() for ch in line)
            ),
            key=len,
            reverse=True,
        )
        pattern = re.compile("|".join(map(re.escape, quotes))) if quotes else None
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and index in hidden_cells:
                    output.traceback = [
                        self.traceback_note,
                        f"{output.get('ename', 'Error')}: {output.get('evalue', '')}",
                    ]
                if pattern is not None:
                    self._scrub_output(output, pattern)
        return nb, resources

    def _split_hidden(self, source: str, placeholder: str | None) -> tuple[str, list[str], list[str]]:
        """``(source without hidden regions, hidden lines, visible lines)`` of a cell's source."""
        kept: list[str] = []
        hidden: list[str] = []
        visible: list[str] = []
        depth = 0
        for line in source.split("\n"):
            if self.begin_test_delimeter in line:
                if depth == 0 and placeholder is not None:
                    kept.append(line[: len(line) - len(line.lstrip())] + placeholder)
                depth += 1
            elif self.end_test_delimeter in line:
                depth = max(depth - 1, 0)
            elif depth:
                hidden.append(line)
            else:
                kept.append(line)
                visible.append(line)
        return "\n".join(kept), hidden, visible

    def _scrub_output(self, output: NotebookNode, pattern: re.Pattern[str]) -> None:
        """Replace every line of ``output`` that matches ``pattern`` by ``redaction``."""
        if isinstance(output.get("text"), str):
            output.text = self._scrub_text(output.text, pattern)
        if isinstance(output.get("evalue"), str):
            output.evalue = self._scrub_text(output.evalue, pattern)
        if isinstance(output.get("traceback"), list):
            output.traceback = [self._scrub_text(str(entry), pattern) for entry in output.traceback]
        data = output.get("data", {})
        for mime, value in data.items():
            if isinstance(value, str):
                data[mime] = self._scrub_text(value, pattern)
            elif isinstance(value, list) and all(isinstance(part, str) for part in value):
                data[mime] = self._scrub_text("".join(value), pattern)

    def _scrub_text(self, text: str, pattern: re.Pattern[str]) -> str:
        lines = text.splitlines(keepends=True)
        for k, line in enumerate(lines):
            plain = _ANSI.sub("", line)
            if pattern.search(plain) or pattern.search(html.unescape(plain)):
                ending = line[len(line.rstrip("\r\n")) :]
                lines[k] = self.redaction + ending
        return "".join(lines)
