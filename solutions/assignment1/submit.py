"""Check your work and package it for upload (run from this folder).

    python submit.py check [TASK ...] [--seed N]   run the self-checks (cs231n/selfcheck.py)
    python submit.py collect [--output FILE] [--allow-unrun]
                                                   check the submission is complete and zip it

``check`` runs, for every task (or the ones named), checks of laws any correct
solution obeys (numerical gradients, naive == vectorized, shapes, known
values); it prints one line per task and exits 1 unless all pass. It warns
first when a compiled source (``.pyx``) is newer than its build (``.so``): the
checks would test the old build, the grader compiles the source.

``collect`` checks that every required module is here (``submission.toml``),
that the files the notebooks write (``artifacts``, e.g. saved weights) exist,
that every notebook was run top to bottom and saved (every code cell has been
executed and none ended in an error), warns about tasks that still raise
``NotImplementedError``, and writes the zip to upload. Exit codes: 0 done,
1 the submission is not ready (the message says why), 2 misuse.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUB = re.compile(r'raise NotImplementedError\(\s*"([A-Za-z_][A-Za-z0-9_]*): ')


def load_manifest(folder: Path = HERE) -> dict:
    """The ``[submission]`` table of ``submission.toml`` in ``folder``."""
    with open(folder / "submission.toml", "rb") as fh:
        return tomllib.load(fh)["submission"]


def notebook_problems(path: Path) -> list[str]:
    """Why the notebook at ``path`` does not look run top to bottom (empty if it does)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{path.name}: not a readable notebook ({exc})"]
    problems = []
    code = [(i, c) for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and "".join(c.get("source", "")).strip()]
    unrun = [i for i, c in code if c.get("execution_count") is None]
    if unrun:
        problems.append(f"{path.name}: {len(unrun)} of {len(code)} code cells were never run "
                        f"(first: cell {unrun[0] + 1}); use Kernel > Restart & Run All, then save")
    errors = [i for i, c in code
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    if errors:
        problems.append(f"{path.name}: cell {errors[0] + 1} ended with an error")
    return problems


def unfinished_tasks(folder: Path, modules: list[str]) -> list[str]:
    """Task ids whose ``NotImplementedError`` stub is still in the modules."""
    found: list[str] = []
    for rel in modules:
        try:
            text = (folder / rel).read_text(encoding="utf-8")
        except OSError:
            continue
        found += [t for t in STUB.findall(text) if t not in found]
    return found


def stale_builds(folder: Path, modules: list[str]) -> list[str]:
    """Compiled sources (``.pyx`` beside the required modules) edited after their last build.

    A build is a ``.so``/``.pyd`` beside the ``.pyx`` whose name starts with its
    stem; a source never built is not reported (the self-checks say so already).
    """
    stale = []
    for directory in sorted({(folder / m).parent for m in modules}):
        for pyx in sorted(directory.glob("*.pyx")):
            builds = [p for p in directory.iterdir()
                      if p.suffix in (".so", ".pyd") and p.name.split(".")[0] == pyx.stem]
            if builds and pyx.stat().st_mtime > max(b.stat().st_mtime for b in builds):
                stale.append(pyx.relative_to(folder).as_posix())
    return stale


def _excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatch(p, pat) for p in parts for pat in patterns)


def collect(folder: Path, output: Path | None = None, allow_unrun: bool = False) -> Path:
    """Check ``folder`` and write the zip; raises ``SystemExit(1)`` with the reasons."""
    man = load_manifest(folder)
    missing = [m for m in [*man["modules"], *man["notebooks"]] if not (folder / m).is_file()]
    problems = [f"missing required file {m}" for m in missing]
    problems += [f"missing required file {a}: the notebooks write it; run them to the end "
                 f"(Kernel > Restart & Run All), then collect again"
                 for a in man.get("artifacts", []) if not (folder / a).is_file()]
    for nb in man["notebooks"]:
        if (folder / nb).is_file():
            problems += notebook_problems(folder / nb)
    if allow_unrun:
        problems = [p for p in problems if p.startswith("missing")]
    if problems:
        raise SystemExit("Not ready to submit:\n  - " + "\n  - ".join(problems))
    todo = unfinished_tasks(folder, man["modules"])
    if todo:
        print(f"warning: these tasks still raise NotImplementedError: {', '.join(todo)}",
              file=sys.stderr)
    limit = int(man.get("max_file_mb", 20)) << 20
    out = (output or folder / man["zip_name"]).resolve()
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file() or path == out:
            continue
        if _excluded(rel, man.get("exclude", [])):
            continue
        if path.stat().st_size > limit:
            print(f"warning: left out {rel} (larger than {limit >> 20} MB)", file=sys.stderr)
            continue
        files.append((path, rel))
    fd, tmp = tempfile.mkstemp(prefix=".submission-", suffix=".zip", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, rel in files:
                zf.write(path, rel)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {out} ({len(files)} files, {out.stat().st_size / 1024:.0f} KiB): upload it")
    return out


def check(tasks: list[str], seed: int) -> int:
    """Run the self-checks and print a table; returns the exit code."""
    from cs231n.selfcheck import run_checks

    stale = stale_builds(HERE, load_manifest(HERE)["modules"])
    if stale:
        how = "python build_ext.py" if (HERE / "build_ext.py").is_file() else "rebuild it"
        print(f"warning: {', '.join(stale)} changed after the last build: these checks use the "
              f"old build, while the grader compiles your source; run {how} first",
              file=sys.stderr)
    outcomes = run_checks(tasks or None, seed=seed)
    width = max(len(o.task) for o in outcomes)
    for o in outcomes:
        line = f"{o.status.upper():4s}  {o.task:{width}s}"
        if o.detail:
            line += f"  {o.detail}"
        print(line.rstrip())
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "todo")}
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['todo']} not implemented"
          f" (seed {seed}; replay one with: python submit.py check TASK --seed {seed})")
    return 0 if counts["pass"] == len(outcomes) else 1


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code."""
    p = argparse.ArgumentParser(prog="submit.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run the self-checks")
    c.add_argument("tasks", nargs="*", help="task ids (default: all)")
    c.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    z = sub.add_parser("collect", help="check the submission and write the zip to upload")
    z.add_argument("--output", type=Path, default=None,
                   help="zip to write (default: zip_name in submission.toml, in this folder)")
    z.add_argument("--allow-unrun", action="store_true",
                   help="package even if notebooks were not run (your instructor may deduct)")
    args = p.parse_args(argv)
    if args.command == "check":
        return check(args.tasks, args.seed)
    try:
        collect(HERE, args.output, args.allow_unrun)
    except SystemExit as exc:
        print(exc.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
