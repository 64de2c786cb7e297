"""How fast does ``autograder grade-all`` grade a class? Generate one, grade it, time it.

Generates ``--count`` submissions (default 100) of Assignment 1 (or any declared
assignment: ``--assignment``) under
``--build``: the reference solution (built from ``source/`` by
:func:`coursegen.mutants.build_reference_submission`), the untouched release
(every function a stub that raises at once), and the reference with each of the
wrong solutions of ``tests/fixtures/<assignment>/mutants.toml``, in turn; every
``--zip-every``-th one is zipped, as students often submit. (``--assignment
toy`` does the same with the engine's toy assignment in ``tests/fixtures/toy``,
for a quick check.) Then grades the whole folder with
:func:`autograder.batch.grade_all` (exactly what ``autograder grade-all`` runs,
``--force``, no nbgrader gradebook) once per value of ``--jobs`` (default ``1``
and the number of cores), and prints, per run:

* per-submission time: mean, median, 90th percentile and max of each grading
  process's wall time (fork to exit: intake, every test, report, feedback);
* throughput: submissions per minute of the whole batch's wall time, and its
  ratio to the ``-j 1`` run's (ideal: the number of jobs, up to the cores);
* the grader's overhead over the student code's own run time, per submission:
  ``overhead = wall time - student code``, where "student code" is the time
  the grader waited on the student's worker for a request (a call into student
  code, or storing / fetching a value), measured by the grader's clock around
  each request. It includes moving arguments and results over the pipe, so the
  overhead here is slightly *under*-stated; the engine does not report the
  worker's own compute time. The overhead has two parts: the suite's own work
  inside the tests (the reference's computations, timing the reference for the
  speed tests, comparisons: the tests' call phases minus the worker calls),
  which the suite's author chooses, and the grader's machinery (everything
  outside the tests' call phases: starting, confining and closing the fresh
  worker of each test - "worker lifecycle" - and the rest: the fork, the
  intake, pytest's collection, loading the reference and the data, starting
  the worker fork server, the report and the feedback files). The 2-second
  target is checked against both;
* the machine's own parallel scaling, measured just before each run with
  CPU-bound processes: the ceiling for the ``-j`` speed-up (shared or
  throttled cores give less than the number of cores);
* the "stub floor": the wall time of grading the untouched release, whose
  student code returns (raises) at once: what grading costs when the student's
  code costs nothing.

Exits 1 when a grading failed inside the grader or the reference submission
did not get full marks. The raw numbers go to ``--json`` when given.

    .venv/bin/python benchmarks/grade_all.py                    # 100 submissions, -j 1 and -j cores
    .venv/bin/python benchmarks/grade_all.py --count 10 --jobs 2
    .venv/bin/python benchmarks/grade_all.py --assignment toy --count 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # as the autograder command does

from autograder.batch import GradeOptions, StudentOutcome, default_jobs, grade_all  # noqa: E402
from autograder.config import available_assignments  # noqa: E402

TOY = REPO / "tests" / "fixtures" / "toy"
SHARED_DATA = REPO.parent / "shared" / "data"

#: Wrong solutions of the toy assignment: (name, file, find, replace).
TOY_VARIANTS: list[tuple[str, str, str, str]] = [
    ("add_minus", "mylib/ops.py", "return a + b", "return a - b"),
    ("relu_raises", "mylib/ops.py", "return np.maximum(x, 0)",
     "raise ValueError('relu is broken')"),
    ("scaler_ignores_k", "mylib/model.py", 'return x * self.params["k"]', "return x"),
]


@dataclass
class Variant:
    """A kind of submission: its label and how to make it in ``dest``."""

    label: str
    kind: str  # reference | release | mutant
    payload: Any = None


def _zip_dir(src: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())


def _variants(assignment: str) -> list[Variant]:
    if assignment == "toy":
        return [Variant("reference", "reference"), Variant("release", "release"),
                *(Variant(name, "mutant", (f, a, b)) for name, f, a, b in TOY_VARIANTS)]
    from coursegen.mutants import load_mutants

    mutants = load_mutants(REPO / "tests" / "fixtures" / assignment / "mutants.toml")
    return [Variant("reference", "reference"), Variant("release", "release"),
            *(Variant(m.name, "mutant", m) for m in mutants)]


def make_class(assignment: str, count: int, dest: Path, zip_every: int) -> dict[str, str]:
    """Write ``count`` submissions into ``dest`` (recreated); returns ``{student: variant}``."""
    from coursegen.mutants import apply_mutants, build_reference_submission

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    cache = dest.parent / f"{dest.name}-cache"
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir()
    reference = cache / "reference"
    if assignment == "toy":
        shutil.copytree(TOY / "source" / "toy", reference)
        release = cache / "release"
        shutil.copytree(reference, release)
        for _name, rel, find, _wrong in TOY_VARIANTS:
            path = release / rel
            path.write_text(path.read_text().replace(find, "raise NotImplementedError"))
    else:
        build_reference_submission(REPO / "source" / assignment, reference)
        release = REPO / "release" / assignment
        if not release.is_dir():
            raise SystemExit(f"release/{assignment} is missing: run `make release` first")
    variants = _variants(assignment)
    roster: dict[str, str] = {}
    for i in range(count):
        v = variants[i % len(variants)]
        student = f"student{i + 1:03d}"
        work = cache / student
        shutil.copytree(release if v.kind == "release" else reference, work)
        if v.kind == "mutant":
            if assignment == "toy":
                rel, find, replace = v.payload
                path = work / rel
                path.write_text(path.read_text().replace(find, replace))
            else:
                apply_mutants(work, [v.payload])
        if zip_every and (i + 1) % zip_every == 0:
            _zip_dir(work, dest / f"{student}.zip")
        else:
            shutil.move(str(work), dest / student)
        roster[student] = v.label
    shutil.rmtree(cache, ignore_errors=True)
    return roster


def _data_dir(build: Path, assignment: str) -> str | None:
    """The data directory the grader will use (printed), generating a fixture if needed."""
    if assignment == "toy":
        return None
    if os.environ.get("CVCOURSE_DATA_DIR"):
        return os.environ["CVCOURSE_DATA_DIR"]
    if (SHARED_DATA / "cifar-10-batches-py").is_dir():
        return str(SHARED_DATA)
    from coursedata import DataNotFound, cifar10

    try:
        return str(Path(cifar10.find()).parent)
    except DataNotFound:
        data = build / "data"
        if not (data / "cifar-10-batches-py").is_dir():
            cifar10.write_fixture(data / "cifar-10-batches-py")
        return str(data)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"mean": statistics.fmean(values), "median": statistics.median(values),
            "p90": p90, "max": ordered[-1], "min": ordered[0]}


def _breakdown(o: StudentOutcome) -> dict[str, float] | None:
    t = o.timing
    if not t or t.get("worker_call_s") is None:
        return None
    calls = float(t["worker_call_s"])
    tests = float(t.get("tests_s", 0.0))
    lifecycle = float(t.get("workers_s", 0.0))
    machinery = max(0.0, o.seconds - tests)
    return {"seconds": o.seconds, "worker_calls_s": calls, "overhead_s": o.seconds - calls,
            "suite_work_s": max(0.0, tests - calls), "machinery_s": machinery,
            "worker_lifecycle_s": lifecycle, "worker_starts": float(t.get("worker_calls", 0)),
            "rest_s": max(0.0, machinery - lifecycle)}


def _burn(seconds_of_work: int) -> None:
    x = 0
    for i in range(seconds_of_work * 12_000_000):
        x += i


def machine_scaling(jobs: int) -> float:
    """How much faster ``jobs`` CPU-bound processes finish than one would, run by run.

    The ceiling for any parallel speed-up on this machine right now (shared or
    throttled cores give less than ``jobs``).
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")

    def timed(n: int) -> float:
        procs = [ctx.Process(target=_burn, args=(1,)) for _ in range(n)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return time.perf_counter() - t0

    one = timed(1)
    return jobs * one / timed(jobs) if jobs > 1 else 1.0


def run_once(subs: Path, out: Path, assignment: str, jobs: int,
             options: GradeOptions) -> dict[str, Any]:
    """Grade the class once with ``jobs`` processes; returns the measurements."""
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    result = grade_all(subs, assignment, output=out, jobs=jobs, force=True, options=options,
                       gradebook=False)
    wall = time.perf_counter() - t0
    outcomes = result.outcomes
    parts = [b for b in (_breakdown(o) for o in outcomes) if b is not None]
    return {
        "jobs": jobs, "count": len(outcomes), "wall_s": wall,
        "throughput_per_min": 60.0 * len(outcomes) / wall,
        "seconds": _stats([o.seconds for o in outcomes]),
        "overhead": {k: _stats([p[k] for p in parts]) for k in (parts[0] if parts else {})},
        "statuses": {s: sum(o.status == s for o in outcomes) for s in
                     sorted({o.status for o in outcomes})},
        "scores": {o.student: o.score for o in outcomes},
        "max_score": outcomes[0].max_score if outcomes else 0.0,
        "per_student": {o.student: {"status": o.status, "score": o.score,
                                    **(_breakdown(o) or {"seconds": o.seconds})}
                        for o in outcomes},
    }


def _fmt(s: dict[str, float]) -> str:
    if not s:
        return "n/a"
    return (f"mean {s['mean']:6.2f}  median {s['median']:6.2f}  p90 {s['p90']:6.2f}  "
            f"max {s['max']:6.2f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/grade_all.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="submissions (default 100)")
    parser.add_argument("--jobs", default=None,
                        help=f"comma-separated -j values (default 1,{default_jobs()})")
    parser.add_argument("--assignment", choices=(*available_assignments(), "toy"), default="assignment1",
                        help="a declared assignment, or the engine's toy one (default: assignment1)")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "bench-grade-all",
                        help="scratch folder (recreated)")
    parser.add_argument("--zip-every", type=int, default=5,
                        help="zip every N-th submission (0: none; default 5)")
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    parser.add_argument("--no-machine-check", action="store_true",
                        help="skip measuring the machine's own parallel scaling")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    cores = default_jobs()
    try:
        jobs = [int(j) for j in (args.jobs or f"1,{cores}").split(",") if j.strip()]
    except ValueError:
        parser.error("--jobs takes comma-separated integers")
    jobs = list(dict.fromkeys(j for j in jobs if j >= 1)) or [1]

    build = args.build.resolve()
    build.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subs = build / "submissions"
    roster = make_class(args.assignment, args.count, subs, args.zip_every)
    made = time.perf_counter() - t0
    data = _data_dir(build, args.assignment)
    options = GradeOptions(data_dir=data) if args.assignment != "toy" else \
        GradeOptions(suite_dir=str(TOY / "suite"), course_root=str(TOY))
    kinds = sorted(set(roster.values()))
    print(f"{args.count} {args.assignment} submissions ({len(kinds)} kinds: reference, release, "
          f"{len(kinds) - 2} wrong solutions; every {args.zip_every or 'no'}th zipped) made in "
          f"{made:.1f} s under {subs}")
    print(f"machine: {cores} core(s) usable; data: {data or 'not used'}")

    runs = []
    for j in jobs:
        ceiling = 1.0 if args.no_machine_check else machine_scaling(j)
        print(f"\ngrading with -j {j} (machine's own scaling for {j} CPU-bound process(es) "
              f"right now: x{ceiling:.2f}) ...", flush=True)
        run = run_once(subs, build / f"out-j{j}", args.assignment, j, options)
        run["machine_scaling"] = ceiling
        runs.append(run)
        o = run["overhead"]
        print(f"  wall {run['wall_s']:.1f} s, throughput {run['throughput_per_min']:.2f} "
              f"submissions/min, statuses {run['statuses']}")
        print(f"  per submission             {_fmt(run['seconds'])}")
        if o:
            print(f"  student code (worker calls) {_fmt(o['worker_calls_s'])}")
            print(f"  overhead = wall - student  {_fmt(o['overhead_s'])}")
            print(f"    suite's work in tests    {_fmt(o['suite_work_s'])}")
            print(f"    grader machinery         {_fmt(o['machinery_s'])}")
            print(f"      worker lifecycle       {_fmt(o['worker_lifecycle_s'])}  "
                  f"({o['worker_starts']['mean']:.0f} workers per submission)")
            print(f"      the rest               {_fmt(o['rest_s'])}")
        else:
            print("  overhead: n/a (the sandbox's timing points were not found)")

    base = runs[0]
    print("\nsummary")
    for run in runs:
        scale = run["throughput_per_min"] / base["throughput_per_min"]
        projected = 100 * 60.0 / run["throughput_per_min"]
        print(f"  -j {run['jobs']}: {run['throughput_per_min']:6.2f} submissions/min "
              f"(x{scale:.2f} of -j {base['jobs']}"
              + ("" if args.no_machine_check else
                 f"; machine ceiling x{run['machine_scaling'] / base['machine_scaling']:.2f}")
              + f"); 100 submissions would take {projected / 60:.1f} min")
    stub = [run["per_student"][s]["seconds"] for run in runs[:1]
            for s, label in roster.items() if label == "release"]
    if stub:
        print(f"  stub floor (grading the untouched release, -j {base['jobs']}): "
              f"{statistics.fmean(stub):.2f} s per submission")
    if base["overhead"]:
        o = base["overhead"]
        for label, key in (("grader machinery", "machinery_s"),
                           ("wall - student code", "overhead_s")):
            mean = o[key]["mean"]
            print(f"  target 'overhead < 2 s per submission', as {label} (-j {base['jobs']}): "
                  f"{'met' if mean < 2.0 else 'NOT met'} (mean {mean:.2f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"assignment": args.assignment, "count": args.count,
                                         "cores": cores, "roster": roster, "runs": runs},
                                        indent=1))
    failed = [s for run in runs for s, r in run["per_student"].items()
              if r["status"] not in ("graded", "submission_problem")]
    wrong_ref = [s for run in runs for s, label in roster.items()
                 if label == "reference" and run["scores"][s] != run["max_score"]]
    if failed or wrong_ref:
        print(f"FAILED: grader failures {sorted(set(failed))}, reference not full marks "
              f"{sorted(set(wrong_ref))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
