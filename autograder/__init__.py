"""The grading engine: submission intake, sandboxed workers, hidden suites, reports.

Entry points: :func:`autograder.runner.grade` and the ``autograder`` command
(:mod:`autograder.cli`). Suites use the fixtures of :mod:`autograder.plugin` and
the helpers of :mod:`autograder.checks`.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
