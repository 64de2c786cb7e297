"""Do Assignment 1's timed tests flake? Grade the reference and loop implementations N times.

The hidden suite has three performance tests: the no-loop k-NN distances must
be 50x faster than the reference's two loops, the vectorized SVM and softmax
losses 10x faster than the reference's naive loops, each timed against the
reference in the same run. This script keeps the machine's other core busy
with a CPU-burning process, then grades, N times back to back, the reference
submission and each "loop implementation" (the mutants of
``tests/fixtures/assignment1/mutants.toml`` that are correct but loop), with
the real grader (``autograder.runner.grade``) restricted to the speed-test
tasks, and prints per variant and speed test: passes and fails across the runs
(from the grader's report) and the min / median / max of the measured
speed-up (the very ratio the grader compared, read from
``autograder.checks.SPEEDUPS``; grading runs in this process).

It exits 1 when the reference failed a speed test in any run, a loop
implementation passed its speed test in any run, or a loop implementation
failed any other test of its task (it must lose exactly the speed test's
share); 0 otherwise.

    .venv/bin/python benchmarks/perf_stability.py --runs 50            # with load
    .venv/bin/python benchmarks/perf_stability.py --runs 5 --no-load
    .venv/bin/python benchmarks/perf_stability.py --tasks knn_no_loops --load-kind matmul
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from autograder import checks  # noqa: E402
from autograder.runner import grade  # noqa: E402
from coursegen.mutants import apply_mutants, build_reference_submission, load_mutants  # noqa: E402

ASSIGNMENT = "assignment1"
SOURCE = REPO / "source" / ASSIGNMENT
MUTANTS_FILE = REPO / "tests" / "fixtures" / ASSIGNMENT / "mutants.toml"


@dataclass(frozen=True)
class SpeedTest:
    task: str
    test: str  # the test's name in the report
    measure: str  # the name its assert_speedup records in checks.SPEEDUPS


SPEED_TESTS: dict[str, SpeedTest] = {
    t.task: t for t in (
        SpeedTest("knn_no_loops", "test_knn.py::test_distances_no_loops_speed",
                  "compute_distances_no_loops"),
        SpeedTest("svm_loss_vectorized", "test_linear.py::test_svm_vectorized_speed",
                  "svm_loss_vectorized"),
        SpeedTest("softmax_loss_vectorized", "test_linear.py::test_softmax_vectorized_speed",
                  "softmax_loss_vectorized"),
    )
}

#: Loop implementations (mutant names) and the task whose speed test each must fail.
LOOP_VARIANTS: dict[str, str] = {
    "knn_two_loops_as_no_loops": "knn_no_loops",
    "knn_one_loop_as_no_loops": "knn_no_loops",
    "svm_vectorized_loops_over_examples": "svm_loss_vectorized",
    "softmax_vectorized_loops_over_examples": "softmax_loss_vectorized",
}

REFERENCE = "reference"

#: The background load: one process that never sleeps.
_BURNERS = {
    "python": "while True:\n    pass\n",
    "matmul": ("import numpy as np\na = np.random.default_rng(0).standard_normal((256, 256))\n"
               "while True:\n    a = np.tanh(a @ a)\n"),
}


@contextlib.contextmanager
def background_load(kind: str | None,
                    processes: int = 1) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``processes`` CPU-burning processes of ``kind`` (None: none) while inside.

    Yields the processes (check ``poll() is None`` to see they still burn);
    kills and reaps them on the way out.
    """
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if kind is not None:
            env = dict(os.environ)
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env[name] = "1"
            for _ in range(processes):
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", _BURNERS[kind]], env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)  # let them start burning
            dead = [p.pid for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"background load process(es) {dead} exited at once")
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


@dataclass
class Row:
    """One (variant, speed test) line of the table, accumulated over the runs."""

    variant: str
    task: str
    expect_pass: bool
    passes: int = 0
    fails: int = 0
    other_failures: int = 0  # runs where another test of the task did not pass
    ratios: list[float] = field(default_factory=list)
    seconds: list[tuple[float, float]] = field(default_factory=list)  # best student, reference
    messages: list[str] = field(default_factory=list)  # failure messages (unexpected ones)

    @property
    def ok(self) -> bool:
        wrong = self.fails if self.expect_pass else self.passes
        return wrong == 0 and self.other_failures == 0 and self.passes + self.fails > 0


@dataclass
class Result:
    runs: int
    load: str
    rows: list[Row]
    seconds: float
    seeds: tuple[int, int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.rows)


def build_variants(workdir: Path, variants: Sequence[str]) -> dict[str, Path]:
    """Write the reference submission and one submission per loop variant under ``workdir``."""
    table = {m.name: m for m in load_mutants(MUTANTS_FILE)}
    missing = [v for v in variants if v != REFERENCE and v not in table]
    if missing:
        raise SystemExit(f"unknown loop variant(s) {missing}; mutants: {sorted(table)}")
    ref = workdir / REFERENCE
    build_reference_submission(SOURCE, ref)
    out = {REFERENCE: ref}
    for name in variants:
        if name == REFERENCE:
            continue
        sub = workdir / name
        shutil.copytree(ref, sub)
        apply_mutants(sub, [table[name]])
        out[name] = sub
    return out


def _plan(tasks: Sequence[str], variants: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(variant, tasks to grade) pairs: the reference on every task, a loop variant on its own."""
    plan = [(REFERENCE, list(tasks))]
    for name in variants:
        if name != REFERENCE and LOOP_VARIANTS[name] in tasks:
            plan.append((name, [LOOP_VARIANTS[name]]))
    return plan


def run_benchmark(runs: int, *, load: str | None = "python", load_processes: int = 1,
                  tasks: Sequence[str] | None = None, variants: Sequence[str] | None = None,
                  base_seed: int = 1000, progress: TextIO | None = None) -> Result:
    """Grade the reference and the loop variants ``runs`` times under ``load``; tally the speed tests.

    ``load`` is a kind of :data:`_BURNERS` or None (``load_processes`` of
    them run in the background). Each run grades every
    variant once (round robin, so a slow spell of the machine hits all of
    them) with the seed ``base_seed + run``.
    """
    tasks = list(tasks or SPEED_TESTS)
    unknown = [t for t in tasks if t not in SPEED_TESTS]
    if unknown:
        raise ValueError(f"not a speed-test task: {unknown}; choose from {list(SPEED_TESTS)}")
    variants = list(variants if variants is not None else LOOP_VARIANTS)
    plan = _plan(tasks, variants)
    rows = {(v, t): Row(v, t, expect_pass=v == REFERENCE) for v, ts in plan for t in ts}
    problems: list[str] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="perf-stability-") as tmp:
        subs = build_variants(Path(tmp), [v for v, _ in plan])
        with background_load(load, load_processes) as burners:
            for run in range(runs):
                seed = base_seed + run
                for variant, graded in plan:
                    checks.SPEEDUPS.clear()
                    report = grade(subs[variant], ASSIGNMENT, tasks=graded, seed=seed, quiet=True)
                    measured = {s.name: s for s in checks.SPEEDUPS}
                    if report.internal_errors or report.submission_problem:
                        problems.append(f"run {run} ({variant}, seed {seed}): "
                                        f"{report.submission_problem or report.internal_errors}")
                    for task in report.tasks:
                        if task.id not in graded:
                            continue
                        _tally(rows[variant, task.id], task.tests, measured, seed, problems)
                if progress is not None:
                    print(f"run {run + 1}/{runs} done ({time.perf_counter() - start:.0f} s)",
                          file=progress, flush=True)
            stopped = [p.pid for p in burners if p.poll() is not None]
            if stopped:
                problems.append(f"background load process(es) {stopped} stopped during the runs")
    load_text = (f"{load_processes} busy process{'es' if load_processes > 1 else ''} ({load})"
                 if load else "none")
    return Result(runs=runs, load=load_text, rows=list(rows.values()),
                  seconds=time.perf_counter() - start,
                  seeds=(base_seed, base_seed + runs - 1), problems=problems)


def _tally(row: Row, tests: list, measured: dict[str, checks.Speedup], seed: int,
           problems: list[str]) -> None:
    spec = SPEED_TESTS[row.task]
    speed = [t for t in tests if t.name == spec.test]
    if len(speed) != 1:
        problems.append(f"{row.variant}, seed {seed}: {len(speed)} results for {spec.test}")
        return
    result = speed[0]
    passed = result.outcome == "passed"
    if passed:
        row.passes += 1
    else:
        row.fails += 1
    if passed != row.expect_pass:
        row.messages.append(f"seed {seed}: {result.outcome}: {result.message}")
    if any(t.outcome != "passed" for t in tests if t is not result):
        row.other_failures += 1
        bad = [f"{t.name} {t.outcome}: {t.message}" for t in tests
               if t is not result and t.outcome != "passed"]
        row.messages.append(f"seed {seed}: other tests of {row.task} did not pass: {bad}")
    m = measured.get(spec.measure)
    if m is not None:
        row.ratios.append(m.ratio)
        row.seconds.append((m.student_s, m.reference_s))
        if m.passed != passed:
            problems.append(f"{row.variant}, seed {seed}: the grader says {result.outcome} but "
                            f"the recorded speed-up {m.ratio:.3g}x vs {m.at_least:g}x disagrees")
    elif result.outcome in ("passed", "failed"):
        problems.append(f"{row.variant}, seed {seed}: no speed-up recorded for {spec.test}")


def _ms(x: float) -> str:
    return f"{x * 1e3:.3g}"


def format_table(result: Result) -> str:
    """The summary table (one line per variant and speed test) and the verdict."""
    lines = [
        f"perf_stability: {result.runs} runs back to back, load: {result.load}, "
        f"seeds {result.seeds[0]}..{result.seeds[1]}, {os.cpu_count()} CPUs, "
        f"{result.seconds:.0f} s",
        "",
    ]
    head = ("variant", "speed test", "expect", "pass", "fail", "speed-up min / median / max",
            "needs", "student ms (median)", "reference CPU ms (median)", "ok")
    body = []
    for r in result.rows:
        spec = SPEED_TESTS[r.task]
        if r.ratios:
            rs = sorted(r.ratios)
            ratio = f"{rs[0]:.1f} / {statistics.median(rs):.1f} / {rs[-1]:.1f}"
            st = statistics.median(s for s, _ in r.seconds)
            rt = statistics.median(t for _, t in r.seconds)
            times = (_ms(st), _ms(rt))
        else:
            ratio, times = "-", ("-", "-")
        body.append((r.variant, spec.test.split("::")[1], "pass" if r.expect_pass else "fail",
                     str(r.passes), str(r.fails), ratio, _threshold(spec), *times,
                     "yes" if r.ok else "NO"))
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines.append(fmt.format(*head))
    lines.append(fmt.format(*("-" * w for w in widths)))
    lines.extend(fmt.format(*b) for b in body)
    lines.append("")
    for r in result.rows:
        for msg in r.messages[:5]:
            lines.append(f"{r.variant} / {r.task}: {msg}")
    lines.extend(f"problem: {p}" for p in result.problems)
    verdict = ("OK: the reference passed every speed test in every run and every loop "
               "implementation failed its speed test in every run, and nothing else"
               if result.ok else "FAILED: see the rows marked NO and the lines above")
    lines.append(verdict)
    return "\n".join(lines)


_THRESHOLDS: dict[str, str] = {}


def _threshold(spec: SpeedTest) -> str:
    """The suite's factor for a speed test (read once from the hidden test modules)."""
    if spec.task not in _THRESHOLDS:
        import ast

        suite = REPO / "autograder" / "suites" / ASSIGNMENT / spec.test.split("::")[0]
        tree = ast.parse(suite.read_text(encoding="utf-8"))
        value = "?"
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "SPEED_FACTOR"):
                value = f"{ast.literal_eval(node.value):g}x"
        _THRESHOLDS[spec.task] = value
    return _THRESHOLDS[spec.task]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="perf_stability.py",
        description="Grade the reference and the loop implementations of Assignment 1 N times "
                    "back to back (optionally with another process keeping a core busy) and "
                    "tally the speed tests. Exit 1 if the reference ever failed one or a loop "
                    "implementation ever passed one.")
    parser.add_argument("--runs", type=int, default=50, help="runs per variant (default 50)")
    parser.add_argument("--load", action=argparse.BooleanOptionalAction, default=True,
                        help="keep another core busy with a CPU-burning process (default: yes)")
    parser.add_argument("--load-kind", choices=sorted(_BURNERS), default="python",
                        help="the busy process: a pure Python loop or single-threaded numpy "
                             "matrix products (default python)")
    parser.add_argument("--load-processes", type=int, default=1, metavar="N",
                        help="how many busy processes (default 1: the second core of a "
                             "2-core machine; more to stress-test)")
    parser.add_argument("--tasks", nargs="+", choices=list(SPEED_TESTS), default=list(SPEED_TESTS),
                        metavar="TASK",
                        help=f"speed-test tasks to grade (default all: {', '.join(SPEED_TESTS)})")
    parser.add_argument("--variants", nargs="+", choices=list(LOOP_VARIANTS),
                        default=list(LOOP_VARIANTS), metavar="MUTANT",
                        help="loop implementations to grade besides the reference "
                             f"(default all: {', '.join(LOOP_VARIANTS)})")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first run (default 1000)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.load_processes < 1:
        parser.error("--load-processes must be at least 1 (use --no-load for none)")
    result = run_benchmark(args.runs, load=args.load_kind if args.load else None,
                           load_processes=args.load_processes,
                           tasks=args.tasks, variants=args.variants, base_seed=args.seed,
                           progress=None if args.quiet else sys.stderr)
    print(format_table(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
