"""nbgrader configuration: the repository root is the nbgrader course directory.

``nbgrader generate_assignment assignment1`` (from this directory) writes
``release/assignment1``: notebooks through nbgrader's own preprocessors, library
modules through :mod:`coursegen.nbgrader_hooks` (solutions replaced by stubs,
``submission.toml`` written from the declaration). Use ``python -m
coursegen.release assignment1`` (``make release``): it runs the same command
into a staging folder and keeps the committed release when generation fails.
"""

from pathlib import Path

from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.preprocessors import OverwriteCells

from autograder.library import assignment_dirs
from coursegen import nbgrader_hooks
from coursegen.nbgrader_fixes import HideHiddenTests, RestoreMissingCells

c = get_config()  # noqa: F821 - injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "cv-course"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.so", "*.c", "build"]

# Strip solutions from the library modules too (nbgrader copies them verbatim).
c.GenerateAssignment.pre_convert_hook = nbgrader_hooks.pre_convert
c.GenerateAssignment.post_convert_hook = nbgrader_hooks.post_convert

# Grade the student's own modules: by default autograde overwrites every
# submitted non-notebook file with the instructor's copy.
# (source/_common holds the shared student files, not an assignment: see autograder/library.py.)
_source = Path(__file__).resolve().parent / "source"
c.Autograde.exclude_overwriting = {
    a.name: nbgrader_hooks.student_modules(_source, a.name) for a in assignment_dirs(_source)
}
# A deleted or altered test cell must not escape grading (with a fix for
# nbgrader 0.9.6, which crashes restoring a cell that follows a locked cell).
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    RestoreMissingCells if p is OverwriteCells else p for p in Autograde.class_traits()["sanitize_preprocessors"].default()
]
# Feedback must not show hidden tests: autograde executes the instructor's grade
# cells, hidden tests included, and generate_feedback would render their source
# and the tracebacks that quote it. HideHiddenTests removes both (it runs first).
c.GenerateFeedback.preprocessors = [
    HideHiddenTests, *GenerateFeedback.class_traits()["preprocessors"].default()
]
