"""The students' ``submission.toml``, generated from the assignment's declaration.

``python submit.py collect`` (the student tool shipped in every assignment folder)
reads ``submission.toml`` beside it. Its content is derived from the declaration
(``autograder/suites/<assignment>/tasks.toml``: ``[assignment] library`` and
``required``, and the ``[submission]`` table), never written by hand: generation
writes it into ``release/<assignment>`` (:mod:`coursegen.nbgrader_hooks`),
``solutions/<assignment>`` (:mod:`coursegen.solutions`) and the reference
submission (:func:`coursegen.mutants.build_reference_submission`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from autograder.config import AssignmentSpec

#: The file's name in an assignment folder.
MANIFEST = "submission.toml"


def _list(values: Iterable[str]) -> str:
    items = [json.dumps(v) for v in values]  # a JSON string is a valid TOML basic string
    if len(items) <= 1 or sum(len(i) + 2 for i in items) < 70:
        return "[" + ", ".join(items) + "]"
    return "[\n" + "".join(f"    {i},\n" for i in items) + "]"


def submission_toml(spec: AssignmentSpec) -> str:
    """The text of ``submission.toml`` for ``spec`` (deterministic: generated files are committed)."""
    sub = spec.submission_spec
    source = f"autograder/suites/{spec.name}/tasks.toml"
    return "\n".join([
        f"# What a complete {spec.name} submission holds, read by `python submit.py collect`.",
        f"# Generated from the course's declaration of the assignment ({source}):",
        "# do not edit; the course staff regenerate it.",
        "[submission]",
        f"zip_name = {json.dumps(sub.zip_name)}",
        f"library = {json.dumps(spec.library)}",
        "# Modules the grader requires.",
        f"modules = {_list(spec.required)}",
        "# Notebooks, run top to bottom.",
        f"notebooks = {_list(sub.notebooks)}",
        "# Files the notebooks write: collect refuses to pack without them.",
        f"artifacts = {_list(sub.artifacts)}",
        "# Never packed: data, caches, checkpoints, compiled files and build artefacts.",
        f"exclude = {_list(sub.exclude)}",
        f"max_file_mb = {sub.max_file_mb}",
        "",
    ])


def write_submission_toml(spec: AssignmentSpec, folder: Path) -> Path:
    """Write ``folder/submission.toml`` for ``spec`` (replacing any) and return its path."""
    path = Path(folder) / MANIFEST
    if path.exists():
        path.chmod(path.stat().st_mode | 0o200)  # nbgrader may have made copies read-only
    path.write_text(submission_toml(spec), encoding="utf-8")
    return path
