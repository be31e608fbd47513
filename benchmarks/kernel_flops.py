"""Flops of one polyreg Newton pass (`kernels.polyreg.block_sums`) against this machine's
GEMM rate, for K levels and p design columns, in both information modes.

Per pass over n rows, with q = (K-1)·p (multiply-adds counted as 2 flops):

* probabilities and score: two n × p × (K-1) products, 4·n·p·(K-1);
* block-diagonal information, X' diag(d_k) X per level as syrk: n·p·(p+1)·(K-1);
* full information: the above plus -M'M of the n × q stacked M (syrk): n·q·(q+1).

The rate is the best of a few runs of the same kind of product (a 4096-row syrk and a
GEMM). Times are CPU seconds of this process (`time.process_time`), so that on a shared
machine waiting for a core does not count; run with one BLAS thread, where CPU seconds
are the seconds of one core:

    OPENBLAS_NUM_THREADS=1 python benchmarks/kernel_flops.py [--rows 10000]
        [--levels 3,20,50,120,300] [--cols 20,50,100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sparkmice.kernels import polyreg

FULL_UP_TO = 2500  # q beyond which the full mode is not timed (memory and minutes)


def best_seconds(fn, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def gemm_rate(rows: int = 4096, cols: int = 512) -> dict[str, float]:
    """GFlop/s of A'B (GEMM) and of A'A (syrk, counted as its n·p·(p+1) flops)."""
    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((rows, cols)))
    b = np.asfortranarray(rng.standard_normal((rows, cols)))
    gemm = 2 * rows * cols * cols / best_seconds(lambda: a.T @ b, 5)
    syrk = rows * cols * (cols + 1) / best_seconds(lambda: a.T @ a, 5)
    return {"gemm": gemm / 1e9, "syrk": syrk / 1e9}


def pass_flops(n: int, p: int, k: int, full: bool) -> float:
    q = (k - 1) * p
    flops = 4 * n * p * (k - 1) + n * p * (p + 1) * (k - 1)
    return flops + (n * q * (q + 1) if full else 0)


def measure(n: int, p: int, k: int, full: bool) -> float:
    """Seconds of one block_sums pass in the given mode (the limit set to force it)."""
    rng = np.random.default_rng(1)
    x = np.asfortranarray(np.column_stack([np.ones(n), rng.standard_normal((n, p - 1))]))
    y = rng.integers(0, k, n).astype(float)
    beta = rng.normal(0.0, 0.1, (p, k - 1))
    saved = polyreg.FULL_INFORMATION_LIMIT
    polyreg.FULL_INFORMATION_LIMIT = (k - 1) * p if full else 0
    try:
        return best_seconds(lambda: polyreg.block_sums(x, y, beta))
    finally:
        polyreg.FULL_INFORMATION_LIMIT = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--levels", default="3,20,50,120,300")
    parser.add_argument("--cols", default="20,50,100")
    args = parser.parse_args()
    rate = gemm_rate()
    print(f"machine: GEMM {rate['gemm']:.1f} GFlop/s, syrk {rate['syrk']:.1f} GFlop/s")
    print(f"rows = {args.rows}; one block_sums pass (the limit today: "
          f"(K-1)·p <= {polyreg.FULL_INFORMATION_LIMIT} is full)")  # fmt: skip
    print("| K | p | q | mode | GFlop | seconds | GFlop/s | of syrk rate |")
    print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for k in (int(v) for v in args.levels.split(",")):
        for p in (int(v) for v in args.cols.split(",")):
            q = (k - 1) * p
            for full in (False, True):
                if full and q > FULL_UP_TO:
                    continue
                flops = pass_flops(args.rows, p, k, full)
                s = measure(args.rows, p, k, full)
                mode = "full" if full else "block-diag"
                achieved = flops / s / 1e9
                print(f"| {k} | {p} | {q} | {mode} | {flops / 1e9:.2f} | {s:.3f} | "
                      f"{achieved:.1f} | {achieved / rate['syrk']:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
