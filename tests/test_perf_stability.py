"""The timed tests of Assignment 1 must not flake.

Fast tests: the interleaved, best-against-best comparison of
``autograder.checks.assert_speedup``, and that ``benchmarks/perf_stability.py``
names real speed tests and real loop-implementation mutants.

Slow test: ``benchmarks/perf_stability.py`` for a few runs with another process
keeping a core busy: the reference passes every speed test every time, every
loop implementation fails its speed test every time and nothing else. The
50-run version is the script itself (see the README's Benchmarks section).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import sys
import time
from pathlib import Path

import pytest

from autograder import checks
from coursegen.mutants import load_mutants

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "perf_stability.py"
SUITE = REPO / "autograder" / "suites" / "assignment1"
MUTANTS_FILE = REPO / "tests" / "fixtures" / "assignment1" / "mutants.toml"

#: Runs of the slow test, and its time budget in seconds (2 cores, one kept busy).
CI_RUNS = 3
CI_BUDGET_S = 120


def _load_script():
    spec = importlib.util.spec_from_file_location("perf_stability", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["perf_stability"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


perf = _load_script()


# ------------------------------------------------------------- assert_speedup


def test_rounds_interleave_and_compare_best_against_best() -> None:
    calls: list[str] = []
    student = iter([[0.02, 0.011], [0.010, 0.03], [0.05, 0.012]])
    reference = iter([0.9, 0.6, 0.7])

    def s():
        calls.append("s")
        return next(student)

    def r():
        calls.append("r")
        return next(reference)

    got = checks.assert_speedup(s, r, at_least=50, name="f", seed=7, rounds=3)
    assert calls == ["s", "r", "r", "s", "s", "r"]  # who goes first alternates
    assert got.student_s == 0.010 and got.reference_s == 0.6
    assert got.ratio == pytest.approx(60) and got.passed
    assert checks.SPEEDUPS[-1] == got


def test_failure_message_gives_both_times_ratio_threshold_not_the_seed() -> None:
    with pytest.raises(AssertionError) as info:
        checks.assert_speedup(lambda: [0.004], lambda: 0.1, at_least=50, name="dists", seed=99,
                              rounds=2, inputs="X (3, 4)", reference_label="the two loops",
                              hint="Use broadcasting")
    msg = str(info.value)
    for part in ("dists is too slow on X (3, 4)", "4 ms", "the two loops 100 ms", "25x",
                 "at least 50x", "Use broadcasting"):
        assert part in msg, f"{part!r} not in {msg!r}"
    assert "seed" not in msg and "99" not in msg  # students see no seed; the record keeps it
    assert not checks.SPEEDUPS[-1].passed and checks.SPEEDUPS[-1].seed == 99


def test_hopeless_code_is_not_timed_round_after_round() -> None:
    rounds = []

    def s():
        rounds.append(1)
        return [1.0]

    with pytest.raises(AssertionError, match="best of 1 calls"):
        checks.assert_speedup(s, lambda: 1.5, at_least=10, name="f", rounds=5)
    assert len(rounds) == 1


def test_conclusive_first_round_stops_only_for_a_cpu_timed_reference() -> None:
    def count(log: list[int], value: float):
        def f():
            log.append(1)
            return [value]
        return f

    # 100x against a 10x bar: conclusive (>= 10 * CONCLUSIVE) after one round...
    cpu: list[int] = []
    got = checks.assert_speedup(count(cpu, 0.001), lambda: 0.1, at_least=10, name="f", rounds=5,
                                reference_cpu_time=True)
    assert got.passed and len(cpu) == 1
    # ...but a wall-clock reference may have been slowed by noise: every round runs.
    wall: list[int] = []
    checks.assert_speedup(count(wall, 0.001), lambda: 0.1, at_least=10, name="f", rounds=5)
    assert len(wall) == 5
    # 15x is a pass but not conclusive: every round runs.
    close: list[int] = []
    got = checks.assert_speedup(count(close, 0.001), lambda: 0.015, at_least=10, name="f",
                                rounds=5, reference_cpu_time=True)
    assert got.passed and len(close) == 5


def test_timing_rounds_accept_timing_objects_and_reject_garbage() -> None:
    class Timing:
        times = [0.002, 0.001]

    got = checks.assert_speedup(lambda: Timing(), lambda: 0.1, at_least=10, name="f", rounds=1)
    assert got.student_times == (0.002, 0.001)
    with pytest.raises(ValueError, match="no valid times"):
        checks.assert_speedup(lambda: [], lambda: 0.1, at_least=10, name="f", rounds=1)


def test_time_call_uses_the_given_clock() -> None:
    ticks = iter([0.0, 5.0, 10.0, 12.0])
    assert checks.time_call(lambda: None, repeat=2, warmup=0, clock=lambda: next(ticks)) == 2.0


# ------------------------------------------------- the benchmark's own tables


def _suite_functions(filename: str) -> set[str]:
    tree = ast.parse((SUITE / filename).read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_benchmark_names_the_suites_speed_tests() -> None:
    for task, spec in perf.SPEED_TESTS.items():
        filename, function = spec.test.split("::")
        assert function in _suite_functions(filename), f"{spec.test} is not in the suite"
        source = (SUITE / filename).read_text(encoding="utf-8")
        assert f"@pytest.mark.{task}\ndef {function}(" in source, f"{spec.test} is not marked {task}"
    assert perf._threshold(perf.SPEED_TESTS["knn_no_loops"]) == "50x"
    assert perf._threshold(perf.SPEED_TESTS["svm_loss_vectorized"]) == "10x"


def test_loop_variants_are_mutants_that_lose_only_their_speed_task() -> None:
    mutants = {m.name: m for m in load_mutants(MUTANTS_FILE)}
    for name, task in perf.LOOP_VARIANTS.items():
        assert name in mutants, f"loop variant {name} is not in {MUTANTS_FILE.name}"
        assert mutants[name].loses == (task,), (
            f"{name} must lose exactly {task} (its speed test's share), not {mutants[name].loses}")
    assert set(perf.LOOP_VARIANTS.values()) == set(perf.SPEED_TESTS)


def test_table_flags_a_flaky_reference() -> None:
    row = perf.Row("reference", "knn_no_loops", expect_pass=True, passes=2, fails=1,
                   ratios=[210.0, 190.0, 40.0], seconds=[(1e-3, 0.2)] * 3)
    loop = perf.Row("knn_one_loop_as_no_loops", "knn_no_loops", expect_pass=False, fails=3,
                    ratios=[11.0, 12.0, 10.0], seconds=[(0.014, 0.15)] * 3)
    result = perf.Result(runs=3, load="none", rows=[row, loop], seconds=1.0, seeds=(0, 2))
    assert not result.ok
    text = perf.format_table(result)
    assert "40.0 / 190.0 / 210.0" in text and "NO" in text and "FAILED" in text
    row.fails, row.passes, row.ratios = 0, 3, [210.0, 190.0, 200.0]
    assert result.ok and "OK:" in perf.format_table(result)


# ---------------------------------------------------------------- slow: real runs


@pytest.mark.slow
def test_speed_tests_do_not_flake_under_load() -> None:
    start = time.monotonic()
    result = perf.run_benchmark(CI_RUNS, load="python", base_seed=4321, progress=io.StringIO())
    took = time.monotonic() - start
    table = perf.format_table(result)
    assert result.ok, table
    assert {r.variant for r in result.rows} == {"reference", *perf.LOOP_VARIANTS}
    for row in result.rows:
        assert row.passes + row.fails == CI_RUNS, table
        assert len(row.ratios) == CI_RUNS, table
    assert took < CI_BUDGET_S, f"{CI_RUNS} runs took {took:.0f} s (budget {CI_BUDGET_S} s)\n{table}"
