"""Executed solutions: ``python -m coursegen.solutions assignment1 [--root .] [--timeout S]``.

Builds ``solutions/<assignment>/`` from the instructor's master copy
``source/<assignment>/``:

1. copy the assignment (course library + notebooks), with the shared student
   files it declares (:mod:`autograder.library`), into a private temp dir;
2. turn the library's solution markers into clean code
   (:func:`coursegen.modules.transform_tree` in ``"solution"`` mode) and the
   notebooks' nbgrader markers likewise (:func:`coursegen.notebooks.solution_notebook`);
3. execute every notebook top to bottom with nbclient (kernel ``python3``, the
   working directory is the copy, so ``import cs231n`` finds the clean library);
   any error fails the whole build naming the notebook and the cell;
4. write the executed notebooks, an HTML export of each, the clean library and
   the ``submission.toml`` generated from the declaration
   (:mod:`coursegen.manifest`) into ``solutions/<assignment>/``, atomically (staged beside it, then swapped
   in), so a failed build never leaves a partial or mixed tree.

The data directory comes from the environment (``CVCOURSE_DATA_DIR``), which the
kernel inherits.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import library
from autograder.config import ConfigError, course_suites_dir, load_assignment

from .manifest import write_submission_toml
from .modules import check_tree, transform_tree
from .notebooks import CellMarkerError, solution_notebook

#: Files and folders never copied from the master copy.
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "build", "*.so", "*.c")

#: Environment settings for the kernel: reproducible hashing, inline figures, and
#: single-threaded BLAS (deterministic sums, and much faster on a busy small machine).
KERNEL_ENV = {"PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
KERNEL_ENV_DEFAULTS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class SolutionsError(RuntimeError):
    """Building the executed solutions failed (a notebook cell raised, a marker is malformed...)."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _short(text: str, limit: int = 4000) -> str:
    """``text`` without terminal colour codes, cut to its last ``limit`` characters."""
    text = _ANSI.sub("", text)
    return text if len(text) <= limit else "..." + text[-limit:]


def execute_notebook(nb: NotebookNode, workdir: Path, *, name: str, timeout: int = 600) -> NotebookNode:
    """Execute ``nb`` in place, cell by cell, with ``workdir`` as the kernel's cwd.

    Raises :class:`SolutionsError` naming the notebook and the (0-based) cell
    index of the first cell that fails or times out, with the cell's source and
    the error.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        record_timing=False,
        allow_errors=False,
    )
    env = dict(KERNEL_ENV_DEFAULTS)
    env.update(os.environ)
    env.update(KERNEL_ENV)
    with client.setup_kernel(env=env, cwd=str(workdir)):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except Exception as err:  # CellExecutionError, CellTimeoutError, DeadKernelError...
                raise SolutionsError(
                    f"{name}: cell {index} failed ({type(err).__name__}).\n"
                    f"--- cell source ---\n{cell.source}\n--- error ---\n{_short(str(err))}"
                ) from err
    return nb


def export_html(nb: NotebookNode) -> str:
    """The notebook as a standalone HTML page (nbconvert's HTMLExporter)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def swap_in(staged: Path, dest: Path) -> None:
    """Replace ``dest`` with ``staged`` (same filesystem), keeping the old tree until the new one is in place."""
    backup: Path | None = None
    if dest.exists():
        backup = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        if backup.exists():
            shutil.rmtree(backup)
        os.replace(dest, backup)
    try:
        os.replace(staged, dest)
    except BaseException:
        if backup is not None:
            os.replace(backup, dest)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def build_solutions(
    assignment: str,
    root: Path,
    dest: Path | None = None,
    timeout: int = 600,
    *,
    log: bool = False,
) -> Path:
    """Build the executed solutions of ``assignment`` and return their folder.

    ``root`` is the course (repository) root holding ``source/<assignment>``;
    ``dest`` defaults to ``root/solutions/<assignment>``. ``timeout`` is the
    per-cell limit in seconds. With ``log``, per-notebook wall times go to stderr.
    Raises :class:`SolutionsError` (nothing is written) when anything fails.
    """
    root = Path(root).resolve()
    source = root / "source" / assignment
    if not library.is_assignment_dir(source):
        raise SolutionsError(f"no master copy of an assignment at {source}")
    dest = Path(dest).resolve() if dest is not None else root / "solutions" / assignment
    notebooks = sorted(source.glob("*.ipynb"))
    if not notebooks:
        raise SolutionsError(f"no notebooks in {source}")
    dest.parent.mkdir(parents=True, exist_ok=True)

    try:
        spec = load_assignment(assignment, course_suites_dir(root))
    except ConfigError as err:
        raise SolutionsError(f"no valid declaration of {assignment}: {err}") from err

    with tempfile.TemporaryDirectory(prefix=f"solutions-{assignment}-") as tmp:
        work = Path(tmp) / assignment
        try:
            library.assemble(source, spec.student_library, work, ignore=IGNORE)
        except ConfigError as err:
            raise SolutionsError(f"the shared student library: {err}") from err
        try:
            check_tree(work, spec.region_ids)
            transform_tree(work, mode="solution")
        except ValueError as err:
            raise SolutionsError(f"malformed marker in the library: {err}") from err
        write_submission_toml(spec, work)

        executed: dict[str, NotebookNode] = {}
        for path in notebooks:
            name = path.name
            try:
                nb = solution_notebook(nbformat.read(path, as_version=4), name=name)
            except CellMarkerError as err:
                raise SolutionsError(f"malformed marker in a notebook: {err}") from err
            (work / name).unlink()  # the clean copy is written after execution
            start = time.perf_counter()
            executed[name] = execute_notebook(nb, work, name=name, timeout=timeout)
            if log:
                print(f"[solutions] {name}: executed in {time.perf_counter() - start:.1f} s", file=sys.stderr)

        staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
        try:
            shutil.copytree(work, staged, ignore=IGNORE, dirs_exist_ok=True)
            for name, nb in executed.items():
                nbformat.validate(nb)
                nbformat.write(nb, staged / name)
                (staged / name).with_suffix(".html").write_text(export_html(nb), encoding="utf-8")
            staged.chmod(0o755)
            swap_in(staged, dest)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m coursegen.solutions",
        description="Execute the instructor notebooks of an assignment into solutions/<assignment>/.",
    )
    parser.add_argument("assignment", help="assignment name, e.g. assignment1")
    parser.add_argument("--root", type=Path, default=Path("."), help="course root (default: .)")
    parser.add_argument("--dest", type=Path, default=None, help="output folder (default: ROOT/solutions/ASSIGNMENT)")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds (default: 600)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = build_solutions(args.assignment, args.root, args.dest, args.timeout, log=True)
    except SolutionsError as err:
        print(f"[solutions] ERROR: {err}", file=sys.stderr)
        print("[solutions] nothing was written", file=sys.stderr)
        return 1
    print(f"[solutions] wrote {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
