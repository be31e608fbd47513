"""Peer (optional): miceforest (LightGBM, mean matching) on a make_mar Parquet file.

Usage: python anchor_miceforest.py FILE.parquet m maxit [seed]
Needs its own venv with miceforest==6.0.5 and lightgbm==4.5.0. Timed: kernel construction
and ``mice(maxit)`` for m datasets. Prints ``RESULT impute_s=<s> ...``.
"""

from __future__ import annotations

import sys
import time

import miceforest as mf
import pandas as pd


def main(argv: list[str]) -> None:
    """Time m datasets of maxit iterations."""
    path, m, maxit = argv[0], int(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) > 3 else 1
    d = pd.read_parquet(path)
    for c in ("diet", "region"):
        d[c] = d[c].astype("category")
    t0, c0 = time.perf_counter(), time.process_time()
    kernel = mf.ImputationKernel(d, num_datasets=m, random_state=seed)
    kernel.mice(maxit)
    impute_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    print(f"RESULT impute_s={impute_s:.3f} cpu_s={cpu_s:.3f} rows={len(d)} m={m} maxit={maxit} "
          f"miceforest={mf.__version__}")


if __name__ == "__main__":
    main(sys.argv[1:])
