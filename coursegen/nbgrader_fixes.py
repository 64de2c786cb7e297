"""A fix for nbgrader 0.9.6's ``OverwriteCells.add_missing_cells``.

nbgrader puts a deleted grade cell back after "the previous source cell", but
looks that cell up only among the submitted grade/solution cells: when the
previous cell is a locked instruction cell (the usual case), autograde crashes
with ``KeyError`` and the submission is dropped. This subclass inserts the
missing cell after the nearest earlier source cell that the submission still
has (any nbgrader cell), or at the top.
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader.preprocessors import OverwriteCells
from nbgrader.utils import is_grade


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
