"""Similarity across a class: ``autograder similarity SUBMISSIONS --assignment A``.

For every graded task of the assignment's library, the code each student wrote
in place of the stub (the body of the function whose released stub raises
``NotImplementedError("<task>: ...")``) is fingerprinted with copydetect's
winnowing (https://github.com/blingenf/copydetect: tokens normalised so that
renamed variables and functions do not hide a copy), with the released stub of
that function as boilerplate: the signature, docstring, TODO comments and the
given lines are shared by everyone and never count. Each task is compared
separately, so reordering functions or moving them between files changes
nothing. Pairs are ranked per task and over the whole assignment.

Nothing submitted is run or imported: files are read as text after the same
intake as grading (zip limits, links refused), parsed with :mod:`ast` only to
find function boundaries. Cython (``.pyx``) modules and notebooks are not
compared (listed in the report's notes).

Output (``--output``, default ``grades/<assignment>/similarity``):
``similarity.csv`` (every pair of every task above ``--min-tokens`` of shared
code: task, students, both similarities, shared tokens) and ``similarity.html``
(the overall ranking, then per task the ``--top`` most similar pairs side by
side with the shared code highlighted). The numbers are evidence for a human
to read, never a verdict.
"""

from __future__ import annotations

import argparse
import ast
import csv
import html
import io
import itertools
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder import config as cfg

__all__ = [
    "DEFAULT_MIN_TOKENS",
    "DEFAULT_NOISE",
    "DEFAULT_TOP",
    "DEFAULT_WINDOW",
    "PairScore",
    "Region",
    "SimilarityReport",
    "add_parser",
    "compare_class",
    "main_command",
    "stub_regions",
]

#: k-gram length (filtered tokens): shorter shared runs are noise.
DEFAULT_NOISE = 12
#: Winnowing window: every shared run of NOISE + WINDOW - 1 tokens is found.
DEFAULT_WINDOW = 4
#: Pairs sharing fewer tokens than this in a task are not listed.
DEFAULT_MIN_TOKENS = 20
#: Pairs shown per task in the HTML report.
DEFAULT_TOP = 10
_MAX_FILE_BYTES = 2 * 2**20


@dataclass(frozen=True)
class Region:
    """Where a task's stub lives: module path (relative to the library) and function qualname."""

    task: str
    module: str
    qualname: str
    stub: str  # the released function's source (boilerplate)


@dataclass
class PairScore:
    """Two students' code for one task (or overall, ``task == "*"``)."""

    task: str
    a: str
    b: str
    similarity_a: float  # share of a's own tokens found in b's
    similarity_b: float
    shared_tokens: int
    slices_a: list[tuple[int, int]] = field(default_factory=list)
    slices_b: list[tuple[int, int]] = field(default_factory=list)

    @property
    def score(self) -> float:
        return max(self.similarity_a, self.similarity_b)


@dataclass
class SimilarityReport:
    """Everything :func:`compare_class` found."""

    assignment: str
    students: list[str]
    regions: list[Region]
    code: dict[str, dict[str, str]]  # student -> task -> their function's source
    pairs: list[PairScore]  # per task, sorted by score
    overall: list[PairScore]  # per pair of students, over every task
    notes: list[str]


class _FunctionFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.stack: list[str] = []
        self.found: dict[str, ast.AST] = {}

    def _visit_scope(self, node: ast.AST, name: str) -> None:
        self.stack.append(name)
        self.found.setdefault(".".join(self.stack), node)
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # noqa: N802 - ast API
        self._visit_scope(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:  # noqa: N802
        self._visit_scope(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:  # noqa: N802
        self._visit_scope(node, node.name)


def _functions(source: str) -> dict[str, ast.AST]:
    finder = _FunctionFinder()
    finder.visit(ast.parse(source))
    return finder.found


def _stub_task(node: ast.AST) -> str | None:
    """The task id of a ``raise NotImplementedError("<task>: ...")`` directly in ``node``."""
    for child in ast.walk(node):
        if isinstance(child, ast.Raise) and isinstance(child.exc, ast.Call) \
                and isinstance(child.exc.func, ast.Name) \
                and child.exc.func.id == "NotImplementedError" and child.exc.args \
                and isinstance(child.exc.args[0], ast.Constant) \
                and isinstance(child.exc.args[0].value, str):
            task = child.exc.args[0].value.split(":", 1)[0].strip()
            if task.isidentifier():
                return task
    return None


def stub_regions(release_library: Path, tasks: Sequence[str]) -> tuple[list[Region], list[str]]:
    """The function of every task's stub in the released library, and notes on what is skipped."""
    regions: list[Region] = []
    notes: list[str] = []
    for path in sorted(release_library.rglob("*")):
        if path.suffix == ".pyx":
            notes.append(f"{path.relative_to(release_library)}: Cython modules are not compared")
            continue
        if path.suffix != ".py" or "__pycache__" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        functions = _functions(source)
        for qualname, node in functions.items():
            if isinstance(node, ast.ClassDef):
                continue
            task = _stub_task(node)
            inner = [q for q in functions if q.startswith(qualname + ".")]
            if task is None or task not in tasks or any(
                    _stub_task(functions[q]) == task for q in inner):
                continue  # the innermost function holding the stub is the region
            regions.append(Region(task, str(path.relative_to(release_library)), qualname,
                                  ast.get_source_segment(source, node) or ""))
    found = {r.task for r in regions}
    missing = [t for t in tasks if t not in found]
    if missing:
        notes.append("tasks without a stub function in a .py module (not compared): "
                     + ", ".join(missing))
    return regions, notes


def _student_code(root: Path, library: str, regions: list[Region], student: str,
                  notes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    parsed: dict[str, dict[str, ast.AST] | None] = {}
    texts: dict[str, str] = {}
    for region in regions:
        if region.module not in parsed:
            path = root / library / region.module
            try:
                if path.is_symlink() or path.stat().st_size > _MAX_FILE_BYTES:
                    raise OSError("not a regular file of reasonable size")
                texts[region.module] = path.read_text(encoding="utf-8", errors="replace")
                parsed[region.module] = _functions(texts[region.module])
            except (OSError, SyntaxError, ValueError, RecursionError) as exc:
                notes.append(f"{student}: {library}/{region.module} not compared ({exc.__class__.__name__})")
                parsed[region.module] = None
        functions = parsed[region.module]
        if functions is None or region.qualname not in functions:
            continue
        code = ast.get_source_segment(texts[region.module], functions[region.qualname]) or ""
        if code.strip() and code.strip() != region.stub.strip():
            out[region.task] = code
    return out


def _fingerprint(code: str, name: str, k: int, window: int, boilerplate: list[int]) -> object:
    from copydetect import CodeFingerprint

    return CodeFingerprint(name, k, window, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(code))


def _slices(array: object) -> list[tuple[int, int]]:
    import numpy as np

    arr = np.asarray(array)
    if arr.ndim != 2 or arr.shape[1] == 0:
        return []
    return [(int(s), int(e)) for s, e in zip(arr[0], arr[1], strict=True)]


def compare_class(submissions: dict[str, Path], spec: cfg.AssignmentSpec, release_library: Path, *,
                  noise: int = DEFAULT_NOISE, window: int = DEFAULT_WINDOW,
                  min_tokens: int = DEFAULT_MIN_TOKENS) -> SimilarityReport:
    """Compare every pair of ``submissions`` (student -> prepared submission root), task by task."""
    from copydetect import compare_files

    regions, notes = stub_regions(release_library, list(spec.tasks))
    code = {s: _student_code(root, spec.library, regions, s, notes)
            for s, root in sorted(submissions.items())}
    pairs: list[PairScore] = []
    totals: dict[tuple[str, str], list[float]] = {}
    for region in regions:
        boilerplate = list(_fingerprint(region.stub, "stub.py", noise, window, []).hashes)
        prints = {s: _fingerprint(c[region.task], f"{s}.py", noise, window, boilerplate)
                  for s, c in code.items() if region.task in c}
        for a, b in itertools.combinations(sorted(prints), 2):
            fa, fb = prints[a], prints[b]
            shared, (sim_a, sim_b), (sl_a, sl_b) = compare_files(fa, fb)
            cover = totals.setdefault((a, b), [0.0, 0.0, 0.0])
            cover[0] += float(shared)
            cover[1] += float(fa.token_coverage)
            cover[2] += float(fb.token_coverage)
            if shared >= min_tokens:
                pairs.append(PairScore(region.task, a, b, float(sim_a), float(sim_b), int(shared),
                                       _slices(sl_a), _slices(sl_b)))
    pairs.sort(key=lambda p: (p.task, -p.score, -p.shared_tokens, p.a, p.b))
    overall = [PairScore("*", a, b, s / ca if ca else 0.0, s / cb if cb else 0.0, int(s))
               for (a, b), (s, ca, cb) in totals.items() if s >= min_tokens]
    overall.sort(key=lambda p: (-p.score, -p.shared_tokens, p.a, p.b))
    return SimilarityReport(spec.name, sorted(submissions), regions, code, pairs, overall, notes)


# ----------------------------------------------------------------------------- output


def write_csv(report: SimilarityReport, path: Path) -> None:
    """One row per listed pair: task (``*`` = whole assignment), students, similarities, tokens."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["task", "student_a", "student_b", "similarity_a", "similarity_b",
                      "shared_tokens"])
        for p in [*report.overall, *report.pairs]:
            out.writerow([p.task, p.a, p.b, f"{p.similarity_a:.3f}", f"{p.similarity_b:.3f}",
                          p.shared_tokens])


def _highlight(code: str, slices: list[tuple[int, int]]) -> str:
    parts, pos = [], 0
    for start, end in slices:
        start, end = max(start, pos), max(end, pos)
        parts.append(html.escape(code[pos:start]))
        parts.append(f"<mark>{html.escape(code[start:end])}</mark>")
        pos = end
    parts.append(html.escape(code[pos:]))
    return "".join(parts)


_STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em}pre{background:#f7f7f7;padding:.6em;overflow:auto;
font-size:12px;margin:0}mark{background:#ffd54f}.pair{display:grid;grid-template-columns:1fr 1fr;
gap:1em;margin-bottom:2em}h3{margin-bottom:.3em}"""


def write_html(report: SimilarityReport, path: Path, top: int = DEFAULT_TOP) -> None:
    """A self-contained page: overall ranking, then the most similar pairs of every task."""
    e = html.escape
    out = [f"<!doctype html><meta charset='utf-8'><title>Similarity: {e(report.assignment)}</title>",
           f"<style>{_STYLE}</style><h1>Similarity: {e(report.assignment)}</h1>",
           f"<p>{len(report.students)} submissions, {len(report.regions)} task regions compared "
           "(copydetect winnowing; the released stubs are boilerplate). High similarity is a "
           "reason to look, not a verdict: short or heavily guided tasks look alike.</p>"]
    if report.notes:
        out.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    out.append("<h2>Over the whole assignment</h2><table><tr><th>students</th><th>similarity</th>"
               "<th>shared tokens</th></tr>")
    for p in report.overall[: top * 3]:
        out.append(f"<tr><td>{e(p.a)} / {e(p.b)}</td><td>{p.similarity_a:.0%} / "
                   f"{p.similarity_b:.0%}</td><td>{p.shared_tokens}</td></tr>")
    out.append("</table>")
    for region in report.regions:
        shown = [p for p in report.pairs if p.task == region.task][:top]
        out.append(f"<h2 id='{e(region.task)}'>{e(region.task)}</h2><p><code>"
                   f"{e(region.module)}: {e(region.qualname)}</code></p>")
        if not shown:
            out.append("<p>no pair shares enough code to list.</p>")
        for p in shown:
            out.append(f"<h3>{e(p.a)} ({p.similarity_a:.0%}) and {e(p.b)} ({p.similarity_b:.0%}): "
                       f"{p.shared_tokens} shared tokens</h3><div class='pair'>")
            for student, slices in ((p.a, p.slices_a), (p.b, p.slices_b)):
                code = report.code[student][p.task]
                out.append(f"<pre>{_highlight(code, slices)}</pre>")
            out.append("</div>")
    path.write_text("\n".join(out), encoding="utf-8")


# ----------------------------------------------------------------------------- command line


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``autograder similarity`` on the CLI's subparsers object ``sub``."""
    p = sub.add_parser(
        "similarity", help="compare the students' solution code, task by task (copy detection)",
        description="Compare the code every student wrote in place of each stub, pair by pair "
                    "and task by task (copydetect's winnowing fingerprints, the released stubs "
                    "as boilerplate); writes similarity.html and similarity.csv.")
    p.add_argument("submissions", help="a folder with one directory or .zip per student, or "
                                       "nbgrader's course directory (its submitted/ folder)")
    p.add_argument("--assignment", required=True, help="assignment name, e.g. assignment1")
    p.add_argument("--output", default=None,
                   help="output folder (default: grades/<assignment>/similarity)")
    p.add_argument("--course-root", default=None,
                   help="course root holding release/<assignment>/ (default: as for grade)")
    p.add_argument("--top", type=int, default=DEFAULT_TOP,
                   help=f"pairs shown per task in the HTML report (default {DEFAULT_TOP})")
    p.add_argument("--min-tokens", type=int, default=DEFAULT_MIN_TOKENS,
                   help="pairs sharing fewer tokens in a task are not listed "
                        f"(default {DEFAULT_MIN_TOKENS})")
    p.add_argument("--noise", type=int, default=DEFAULT_NOISE,
                   help=f"k-gram length in tokens: shorter shared runs are ignored (default {DEFAULT_NOISE})")
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                   help=f"winnowing window (default {DEFAULT_WINDOW})")
    return p


def main_command(args: argparse.Namespace) -> int:
    """Run ``autograder similarity`` for parsed ``args``; returns the exit code."""
    from autograder.batch import BatchError, discover
    from autograder.submission import SubmissionProblem, prepare_submission

    for name in ("top", "min_tokens", "noise", "window"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    try:
        spec = cfg.load_tasks(cfg.suite_dir(args.assignment) / "tasks.toml")
        course_root = cfg.find_course_root(args.course_root)
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    release_library = course_root / "release" / args.assignment / spec.library
    if not release_library.is_dir():
        print(f"error: no released library at {release_library} (run `make release`)",
              file=sys.stderr)
        return 2
    output = Path(args.output) if args.output else Path("grades") / args.assignment / "similarity"
    try:
        found = discover(args.submissions, args.assignment, exclude=[output])
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    notes = list(found.notes)
    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        roots: dict[str, Path] = {}
        for entry in found.entries:
            try:
                sub = prepare_submission(entry.path, Path(tmp) / entry.student, spec)
            except SubmissionProblem as exc:
                notes.append(f"{entry.student}: not compared ({exc})")
                continue
            roots[entry.student] = Path(sub.root)
        report = compare_class(roots, spec, release_library, noise=args.noise,
                               window=args.window, min_tokens=args.min_tokens)
    report.notes[:0] = notes
    output.mkdir(parents=True, exist_ok=True)
    for name in ("similarity.csv", "similarity.html"):
        partial = output / f".{name}.partial"
        if name.endswith(".html"):
            write_html(report, partial, top=args.top)
        else:
            write_csv(report, partial)
        os.replace(partial, output / name)
    best = report.overall[0] if report.overall else None
    print(f"{len(report.students)} submissions compared over {len(report.regions)} tasks; "
          + (f"most similar pair: {best.a} / {best.b} ({best.score:.0%})" if best else
             "no pair shares enough code to list")
          + f"; report: {output / 'similarity.html'}")
    return 0
