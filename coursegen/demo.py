"""``make demo``: the whole pipeline on data that needs no download.

Assumes ``release/`` was just generated (the Makefile does it). Builds three
submissions under ``build/demo/`` - the reference, the untouched release, and a
partly wrong one (the reference with a few of the mutants from
``tests/fixtures/<assignment>/mutants.toml``) - grades each with the
autograder CLI in a subprocess, exactly as a grader would, and prints their
scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .mutants import apply_mutants, build_reference_submission, load_mutants

REPO = Path(__file__).resolve().parents[1]

#: Mutants applied to the reference to make the "partly wrong" demo submission.
DEFAULT_MUTANTS: tuple[str, ...] = ("svm_vectorized_no_reg_grad", "softmax_vectorized_axis0", "affine_backward_dx_sign")


def _data_note() -> str:
    """What the grader will grade on: the data directory's CIFAR-10, or its generated stand-in."""
    from coursedata import DataNotFound, data_dir, registry

    try:
        return f"CIFAR-10 from {registry.find('cifar10')}"
    except DataNotFound:
        return (f"no CIFAR-10 in {data_dir()}: the grader generates its stand-in in the official "
                "format (the verdicts are the same as on the real data)")


def build_submissions(assignment: str, build: Path, mutants: tuple[str, ...]) -> dict[str, Path]:
    """Write the three demo submissions and return ``{label: folder}``."""
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    reference = build / "reference"
    build_reference_submission(REPO / "source" / assignment, reference)
    untouched = build / "untouched-release"
    shutil.copytree(REPO / "release" / assignment, untouched)
    wrong = build / "partly-wrong"
    shutil.copytree(reference, wrong)
    table = {m.name: m for m in load_mutants(REPO / "tests" / "fixtures" / assignment / "mutants.toml")}
    missing = [name for name in mutants if name not in table]
    if missing:
        raise SystemExit(f"unknown mutant(s) {missing}; known: {sorted(table)}")
    apply_mutants(wrong, [table[name] for name in mutants])
    return {"reference": reference, "untouched release": untouched, "partly wrong": wrong}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursegen.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="assignment1", help="assignment to demonstrate")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "demo", help="scratch folder (recreated)")
    parser.add_argument("--mutant", action="append", dest="mutants", help="mutant for the partly wrong submission")
    args = parser.parse_args(argv)
    if not (REPO / "release" / args.assignment).is_dir():
        print(f"release/{args.assignment} is missing: run `make release` first", file=sys.stderr)
        return 2
    start = time.perf_counter()
    subs = build_submissions(args.assignment, args.build, tuple(args.mutants or DEFAULT_MUTANTS))
    print(f"data: {_data_note()}")
    env = dict(os.environ)
    rows = []
    for label, folder in subs.items():
        results = folder.parent / f"{folder.name}.results.json"
        print(f"\n=== grading the {label} submission ({folder.relative_to(REPO)}) ===", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "autograder", "grade", str(folder), "--assignment", args.assignment,
             "--results", str(results)],
            env=env,
        )
        took = time.perf_counter() - t0
        if proc.returncode != 0 or not results.exists():
            print(f"grading the {label} submission failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        report = json.loads(results.read_text())
        total = sum(t["max_score"] for t in report["tests"])
        rows.append((label, report["score"], total, took))
        sources = report.get("extra_data", {}).get("data_sources", {})
    print("\n=== demo summary ===")
    for label, score, total, took in rows:
        print(f"{label:<20} {score:>7.2f} / {total:<6.2f} ({100 * score / total:5.1f}%)  graded in {took:5.1f} s")
    print("data: " + ("; ".join(f"{n}: {s}" for n, s in sorted(sources.items())) or "none used"))
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
