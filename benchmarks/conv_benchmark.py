"""Benchmark of Assignment 2's reference fast convolution and max pooling.

Times, in one run on this machine, the reference's fast layers
(``source/assignment2/cs231n/fast_layers.py`` on the Cython im2col/col2im)
against PyTorch's ``torch.nn.functional.conv2d`` / ``max_pool2d`` (float64 and
float32, forward and forward plus autograd backward) and against the naive
layers, on two shapes:

- the course's shape: x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1;
- a large one: x (128, 64, 32, 32), w (64, 64, 3, 3), stride 1, pad 1.

For every convolution it prints the time (best of ``--repeat`` after a
warm-up), GFLOP/s (2 * N * F * C*HH*WW * H'*W' per forward pass, twice that for
the backward pass), the fraction of the machine's GEMM peak (numpy matmul of
two square matrices, measured first, per dtype), the peak extra memory
(tracemalloc: numpy's and the layer's allocations beyond the inputs) and the
ratios to torch. Without torch it says so and prints the rest.

    python benchmarks/conv_benchmark.py [--threads 1] [--repeat 5] [--quick]

``--threads`` (default 1, the grader's setting) fixes the BLAS/OpenMP threads
of numpy and torch alike. ``--quick`` leaves out the slowest naive timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "source" / "assignment2"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1)")
    p.add_argument("--repeat", type=int, default=5, help="timed calls per measurement")
    p.add_argument("--quick", action="store_true", help="skip the slowest naive timings")
    return p.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:  # before numpy / torch are imported
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

COURSE = {"x": (100, 3, 31, 31), "w": (25, 3, 3, 3), "conv": {"stride": 2, "pad": 1},
          "pool": (2, 2, 2)}
LARGE = {"x": (128, 64, 32, 32), "w": (64, 64, 3, 3), "conv": {"stride": 1, "pad": 1},
         "pool": (2, 2, 2)}


def load_reference():
    """The reference library (``cs231n`` of source/assignment2, with its shared files, as
    the grader loads it), its extension built."""
    sys.path.insert(0, str(REPO))
    from autograder.extensions import ensure_reference_built
    from autograder.plugin import load_reference as load_library

    ensure_reference_built(SOURCE / "cs231n", "cs231n", ("im2col_cython.pyx",))
    return load_library(REPO, SOURCE.name, "cs231n")


def best_time(fn, repeat: int, warmup: int = 1, clock=time.perf_counter) -> float:
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def peak_extra_mb(fn) -> float:
    """Peak memory allocated during ``fn()`` (tracemalloc sees numpy's buffers), in MB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def gemm_peak(dtype, n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of numpy matmul of two n x n matrices (best of ``repeat``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    t = best_time(lambda: a @ b, repeat)
    return 2 * n**3 / t / 1e9


def conv_flops(shape: dict) -> float:
    N, C, H, W = shape["x"]
    F, _, HH, WW = shape["w"]
    s, p = shape["conv"]["stride"], shape["conv"]["pad"]
    Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
    return 2.0 * N * F * C * HH * WW * Ho * Wo


def naive_loops_conv(x, w, b, conv_param, dout):
    """Forward and backward with one output value per Python iteration (the test's baseline)."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    hs, ws = i * stride, j * stride
                    out[n, f, i, j] = np.sum(xp[n, :, hs:hs + HH, ws:ws + WW] * w[f]) + b[f]
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    hs, ws = i * stride, j * stride
                    dw[f] += dout[n, f, i, j] * xp[n, :, hs:hs + HH, ws:ws + WW]
                    dxp[n, :, hs:hs + HH, ws:ws + WW] += dout[n, f, i, j] * w[f]
    return out, dxp, dw


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        self.rows.append(cells)

    def show(self, header: tuple[str, ...]) -> None:
        rows = [header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for k, r in enumerate(rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
            if k == 0:
                print("  ".join("-" * w for w in widths))
        self.rows = []


def conv_rows(ctx: dict, shape: dict, dtype, rng, table: Table, times: dict) -> None:
    """Rows of the reference's fast convolution (and torch's) for one dtype."""
    fl, rep, torch, TF = ctx["fl"], ctx["repeat"], ctx["torch"], ctx["TF"]
    cp = shape["conv"]
    flops = conv_flops(shape)
    peak = ctx["peaks"][dtype]
    name = np.dtype(dtype).name
    x = rng.standard_normal(shape["x"]).astype(dtype)
    w = rng.standard_normal(shape["w"]).astype(dtype)
    b = rng.standard_normal(shape["w"][0]).astype(dtype)
    out, cache = fl.conv_forward_fast(x, w, b, cp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    inputs_mb = (x.nbytes + w.nbytes + out.nbytes) / 2**20
    t_f = best_time(lambda: fl.conv_forward_fast(x, w, b, cp), rep)
    t_b = best_time(lambda: fl.conv_backward_fast(dout, cache), rep)
    m_f = peak_extra_mb(lambda: fl.conv_forward_fast(x, w, b, cp)) - out.nbytes / 2**20
    m_b = peak_extra_mb(lambda: fl.conv_backward_fast(dout, cache)) - x.nbytes / 2**20
    times[f"fast_{name}"] = t_f + t_b
    table.add(f"reference fast {name}", f"{t_f * 1e3:.2f}", f"{t_b * 1e3:.2f}",
              f"{(t_f + t_b) * 1e3:.2f}", f"{flops / t_f / 1e9:.1f}",
              f"{flops / t_f / 1e9 / peak:.0%}", f"{3 * flops / (t_f + t_b) / 1e9 / peak:.0%}",
              f"{max(m_f, m_b):.1f} (inputs {inputs_mb:.0f})")
    if torch is None:
        return
    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    td = torch.from_numpy(dout)

    def t_fwd() -> None:
        with torch.no_grad():
            TF.conv2d(tx, tw, tb, stride=cp["stride"], padding=cp["pad"])

    def t_fb() -> None:
        tx.grad = tw.grad = tb.grad = None
        TF.conv2d(tx, tw, tb, stride=cp["stride"], padding=cp["pad"]).backward(td)

    tt_f, tt_fb = best_time(t_fwd, rep), best_time(t_fb, rep)
    times[f"torch_{name}"] = tt_fb
    table.add(f"torch conv2d {name}", f"{tt_f * 1e3:.2f}", f"{(tt_fb - tt_f) * 1e3:.2f}",
              f"{tt_fb * 1e3:.2f}", f"{flops / tt_f / 1e9:.1f}", f"{flops / tt_f / 1e9 / peak:.0%}",
              f"{3 * flops / tt_fb / 1e9 / peak:.0%}", "-")


def naive_conv_rows(ctx: dict, shape: dict, label: str, rng, table: Table, times: dict) -> None:
    """Rows of the reference's naive convolution and of the test's naive loops."""
    layers, quick = ctx["layers"], ctx["quick"]
    cp = shape["conv"]
    flops = conv_flops(shape)
    x = rng.standard_normal(shape["x"])
    w = rng.standard_normal(shape["w"])
    b = rng.standard_normal(shape["w"][0])
    out, cache = layers.conv_forward_naive(x, w, b, cp)
    dout = rng.standard_normal(out.shape)
    if not (quick and label == "large"):
        tn_f = best_time(lambda: layers.conv_forward_naive(x, w, b, cp), 1, 0)
        tn_b = best_time(lambda: layers.conv_backward_naive(dout, cache), 1, 0)
        times["naive"] = tn_f + tn_b
        table.add("reference naive (loop over H'xW')", f"{tn_f * 1e3:.1f}", f"{tn_b * 1e3:.1f}",
                  f"{(tn_f + tn_b) * 1e3:.1f}", f"{flops / tn_f / 1e9:.2f}",
                  f"{flops / tn_f / 1e9 / ctx['peaks'][np.float64]:.1%}", "-", "-")
    if label == "course" and not quick:
        tl = best_time(lambda: naive_loops_conv(x, w, b, cp, dout), 1, 0, clock=time.thread_time)
        times["loops"] = tl
        table.add("naive loops (test baseline)", "-", "-", f"{tl * 1e3:.0f}", "-", "-", "-", "-")


def pool_rows(ctx: dict, x_shape: tuple, pool: tuple, dtype, rng, table: Table) -> None:
    """Rows of the reference's fast max pooling (and torch's) for one dtype."""
    fl, rep, torch, TF = ctx["fl"], ctx["repeat"], ctx["torch"], ctx["TF"]
    ph, pw, ps = pool
    pp = {"pool_height": ph, "pool_width": pw, "stride": ps}
    name = np.dtype(dtype).name
    xp = rng.standard_normal(x_shape).astype(dtype)
    out, cache = fl.max_pool_forward_fast(xp, pp)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_f = best_time(lambda: fl.max_pool_forward_fast(xp, pp), rep)
    t_b = best_time(lambda: fl.max_pool_backward_fast(dout, cache), rep)
    mem = peak_extra_mb(lambda: fl.max_pool_forward_fast(xp, pp))
    table.add(f"reference fast {name}", f"{t_f * 1e3:.2f}", f"{t_b * 1e3:.2f}",
              f"{(t_f + t_b) * 1e3:.2f}", f"{mem:.1f}")
    if torch is None:
        return
    tx = torch.from_numpy(xp).requires_grad_(True)
    td = torch.from_numpy(dout)

    def p_fwd() -> None:
        with torch.no_grad():
            TF.max_pool2d(tx, (ph, pw), stride=ps)

    def p_fb() -> None:
        tx.grad = None
        TF.max_pool2d(tx, (ph, pw), stride=ps).backward(td)

    tt_f, tt_fb = best_time(p_fwd, rep), best_time(p_fb, rep)
    table.add(f"torch max_pool2d {name}", f"{tt_f * 1e3:.2f}", f"{(tt_fb - tt_f) * 1e3:.2f}",
              f"{tt_fb * 1e3:.2f}", "-")


def naive_pool_rows(ctx: dict, x_shape: tuple, pool: tuple, rng, table: Table) -> None:
    layers = ctx["layers"]
    ph, pw, ps = pool
    pp = {"pool_height": ph, "pool_width": pw, "stride": ps}
    xp = rng.standard_normal(x_shape)
    out, cache = layers.max_pool_forward_naive(xp, pp)
    dout = rng.standard_normal(out.shape)
    tn_f = best_time(lambda: layers.max_pool_forward_naive(xp, pp), 1, 0)
    tn_b = best_time(lambda: layers.max_pool_backward_naive(dout, cache), 1, 0)
    table.add("reference naive", f"{tn_f * 1e3:.1f}", f"{tn_b * 1e3:.1f}",
              f"{(tn_f + tn_b) * 1e3:.1f}", "-")


def main() -> int:
    args = ARGS or _args()
    ref = load_reference()
    try:
        import torch
        import torch.nn.functional as TF

        torch.set_num_threads(args.threads)
        torch_note = f"torch {torch.__version__}"
    except ImportError:
        torch = TF = None
        torch_note = "torch is NOT installed: its rows are left out (pip install torch)"
    print(f"numpy {np.__version__}, {args.threads} BLAS thread(s), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; {torch_note}")
    peaks = {dt: gemm_peak(dt, repeat=args.repeat) for dt in (np.float64, np.float32)}
    print(f"GEMM peak (numpy matmul 2048x2048): float64 {peaks[np.float64]:.1f} GFLOP/s, "
          f"float32 {peaks[np.float32]:.1f} GFLOP/s\n")
    ctx = {"fl": ref.fast_layers, "layers": ref.layers, "repeat": args.repeat, "torch": torch,
           "TF": TF, "peaks": peaks, "quick": args.quick}
    for label, shape in (("course", COURSE), ("large", LARGE)):
        rng = np.random.default_rng(0)
        cp = shape["conv"]
        if label != "course":  # the best GEMM rate seen so far: load only ever lowers it
            for dt in peaks:
                peaks[dt] = max(peaks[dt], gemm_peak(dt, repeat=args.repeat))
            print(f"GEMM peak, best so far: float64 {peaks[np.float64]:.1f} GFLOP/s, "
                  f"float32 {peaks[np.float32]:.1f} GFLOP/s")
        print(f"== convolution, {label} shape: x {shape['x']}, w {shape['w']}, "
              f"stride {cp['stride']}, pad {cp['pad']}")
        table = Table()
        times: dict[str, float] = {}
        for dtype in (np.float64, np.float32):
            conv_rows(ctx, shape, dtype, rng, table, times)
        naive_conv_rows(ctx, shape, label, rng, table, times)
        table.show(("implementation", "fwd ms", "bwd ms", "fwd+bwd ms", "fwd GFLOP/s",
                    "fwd %peak", "fwd+bwd %peak", "peak extra MB"))
        ratios = []
        for dt in ("float64", "float32"):
            if f"torch_{dt}" in times:
                ratios.append(f"fast/torch {dt} (fwd+bwd time) "
                              f"{times[f'fast_{dt}'] / times[f'torch_{dt}']:.2f}")
        if "naive" in times:
            ratios.append(f"naive/fast float64 {times['naive'] / times['fast_float64']:.0f}x")
        if "loops" in times:
            ratios.append(f"loops/fast float64 {times['loops'] / times['fast_float64']:.0f}x")
        print("ratios: " + "; ".join(ratios) + "\n")

        N, F = shape["x"][0], shape["w"][0]
        Ho = 1 + (shape["x"][2] + 2 * cp["pad"] - shape["w"][2]) // cp["stride"]
        x_shape = (N, F, Ho, Ho)
        ph, pw, ps = shape["pool"]
        print(f"== max pool {ph}x{pw} stride {ps}, {label}: x {x_shape}")
        for dtype in (np.float64, np.float32):
            pool_rows(ctx, x_shape, shape["pool"], dtype, rng, table)
        if not (args.quick and label == "large"):
            naive_pool_rows(ctx, x_shape, shape["pool"], rng, table)
        table.show(("implementation", "fwd ms", "bwd ms", "fwd+bwd ms", "peak extra MB"))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
