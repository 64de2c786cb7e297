"""Wrong-solution fixtures: named text edits applied to a copy of the reference submission.

A mutant is a small, realistic mistake (a sign slip, a missing regularization
term, the wrong axis...) written as an exact ``find`` / ``replace`` pair on one
file of the reference library, together with the tasks it must lose points in.
The end-to-end grading tests apply each mutant to a fresh copy of the
reference submission and check that the grader takes points away in exactly
those tasks. The fixture file is TOML::

    [[mutant]]
    name = "svm_vectorized_no_reg_grad"
    why = "missing regularization term in the vectorized SVM gradient"
    file = "cs231n/classifiers/linear_svm.py"
    find = "<exact snippet of the reference, occurring exactly once>"
    replace = "<the wrong code>"
    loses = ["svm_loss_vectorized"]

A mutant with several edits uses ``[[mutant.edit]]`` tables (each with
``file``, ``find``, ``replace``) instead of the top-level three keys. A
mutant may also (or only) remove files from the submission with
``delete = ["my_model_weights.npz"]`` (a required artifact left out).
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from autograder import library
from autograder.config import available_assignments, load_assignment

from .manifest import write_submission_toml
from .modules import transform_tree

__all__ = [
    "Edit",
    "Mutant",
    "MutantError",
    "apply_mutants",
    "build_reference_submission",
    "load_mutants",
]

#: Folders and files never copied into a submission.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.so", "*.c", "build")


class MutantError(ValueError):
    """A mutant fixture that is malformed or does not fit the reference (stale)."""


@dataclass(frozen=True)
class Edit:
    """One exact text replacement in one file of a submission."""

    file: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    """A named wrong solution: its edits and the tasks that must lose points."""

    name: str
    why: str
    edits: tuple[Edit, ...]
    loses: tuple[str, ...]
    deletes: tuple[str, ...] = ()


def _edit_from(table: dict, where: str) -> Edit:
    for key in ("file", "find", "replace"):
        if not isinstance(table.get(key), str):
            raise MutantError(f"{where}: missing or non-string {key!r}")
    if not table["find"]:
        raise MutantError(f"{where}: 'find' is empty")
    if table["find"] == table["replace"]:
        raise MutantError(f"{where}: 'replace' equals 'find' (the edit changes nothing)")
    file = table["file"]
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise MutantError(f"{where}: 'file' must be a relative path inside the submission, got {file!r}")
    return Edit(file=file, find=table["find"], replace=table["replace"])


def load_mutants(path: Path) -> list[Mutant]:
    """Read the ``[[mutant]]`` tables of the TOML file ``path``.

    Raises :class:`MutantError` for a missing key, a duplicate name or an empty
    ``loses`` list.
    """
    path = Path(path)
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for i, table in enumerate(data.get("mutant", [])):
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise MutantError(f"{path}: mutant #{i + 1} has no name")
        where = f"{path}: mutant {name!r}"
        if name in seen:
            raise MutantError(f"{where}: duplicate name")
        seen.add(name)
        deletes = table.get("delete", [])
        if not isinstance(deletes, list) or not all(
                isinstance(d, str) and d and not Path(d).is_absolute() and ".." not in Path(d).parts
                for d in deletes):
            raise MutantError(f"{where}: 'delete' must be a list of relative paths in the submission")
        if "edit" in table:
            if any(k in table for k in ("file", "find", "replace")):
                raise MutantError(f"{where}: use either [[mutant.edit]] tables or file/find/replace, not both")
            edits = tuple(_edit_from(e, f"{where}, edit #{j + 1}") for j, e in enumerate(table["edit"]))
        elif deletes and not any(k in table for k in ("file", "find", "replace")):
            edits = ()
        else:
            edits = (_edit_from(table, where),)
        if not edits and not deletes:
            raise MutantError(f"{where}: no edits")
        loses = table.get("loses")
        if not isinstance(loses, list) or not loses or not all(isinstance(t, str) for t in loses):
            raise MutantError(f"{where}: 'loses' must be a non-empty list of task ids")
        mutants.append(Mutant(name=name, why=str(table.get("why", "")), edits=edits, loses=tuple(loses),
                              deletes=tuple(deletes)))
    return mutants


def apply_mutants(submission_dir: Path, mutants: list[Mutant]) -> None:
    """Apply every edit of ``mutants`` in place to the files under ``submission_dir``.

    Each ``find`` must occur exactly once in its file at the time it is
    applied; otherwise the fixture is stale and :class:`MutantError` names the
    mutant, the file and the count. All edits are checked before any file is
    written, so a stale fixture leaves the submission untouched.
    """
    submission_dir = Path(submission_dir)
    pending: dict[Path, str] = {}
    for mutant in mutants:
        for edit in mutant.edits:
            target = submission_dir / edit.file
            if target not in pending:
                if not target.is_file():
                    raise MutantError(f"mutant {mutant.name!r}: file {edit.file!r} not found in {submission_dir}")
                pending[target] = target.read_text(encoding="utf-8")
            text = pending[target]
            count = text.count(edit.find)
            if count != 1:
                raise MutantError(
                    f"mutant {mutant.name!r}: the 'find' snippet occurs {count} times in {edit.file} "
                    f"(expected exactly once; the fixture is stale or ambiguous): {edit.find!r}"
                )
            pending[target] = text.replace(edit.find, edit.replace)
    doomed = [submission_dir / d for m in mutants for d in m.deletes]
    for mutant in mutants:
        for d in mutant.deletes:
            if not (submission_dir / d).is_file():
                raise MutantError(f"mutant {mutant.name!r}: file {d!r} to delete not found in {submission_dir}")
    for target, text in pending.items():
        target.write_text(text, encoding="utf-8")
    for target in doomed:
        target.unlink()


def build_reference_submission(source_assignment_dir: Path, dest: Path) -> None:
    """Make ``dest`` a complete, correct submission from the instructor's master copy.

    Copies ``source_assignment_dir`` (the library and the notebooks), with the
    shared student files its assignment declares (:mod:`autograder.library`), to
    ``dest`` (which must not exist yet), then removes the solution markers and
    drops the hidden-test regions of every module, keeping the solution code.
    When the folder's name is a declared assignment, the students'
    ``submission.toml`` is generated into ``dest`` too (as in the release).
    """
    source_assignment_dir = Path(source_assignment_dir)
    dest = Path(dest)
    if not source_assignment_dir.is_dir():
        raise FileNotFoundError(f"no assignment directory at {source_assignment_dir}")
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    decl = library.declared(source_assignment_dir.name)
    library.assemble(source_assignment_dir, decl, dest, ignore=_IGNORED)
    transform_tree(dest, mode="solution")
    if source_assignment_dir.name in available_assignments():
        write_submission_toml(load_assignment(source_assignment_dir.name), dest)
