"""How far one seed's imputations of one input move between numpy's SIMD paths (CPUs).

numpy picks exp/log/... kernels at run time by CPU (AVX-512, AVX2, SSE baseline), and they
may differ in the last bit. This runs the same in-process imputation once per path, forced
with numpy's NPY_DISABLE_CPU_FEATURES switch, each in its own process, and reports how far
the completed tables and a pooled model drift from the machine's own best path.

    .venv/bin/python benchmarks/cpu_paths.py [--rows 20000] [--m 5] [--maxit 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

# numpy's dispatch targets on x86-64, from the newest down; disabling a target disables
# the ones above it too (names from numpy._core._multiarray_umath.__cpu_dispatch__)
PATHS = {
    "native": "",
    "avx2 (no AVX-512)": "X86_V4 AVX512_ICL AVX512_SPR",
    "baseline (no AVX2)": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
}
CHILD = """
import sys, pandas, sparkmice
imp = sparkmice.mice(pandas.read_parquet(sys.argv[1]), m={m}, maxit={maxit}, seed=1)
imp.complete("long").to_parquet(sys.argv[2])
"""


def run_path(disabled: str, data: Path, out: Path, args: argparse.Namespace) -> pd.DataFrame:
    """Impute the same input file with numpy's dispatch above `disabled` switched off."""
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disabled}
    code = CHILD.format(m=args.m, maxit=args.maxit)
    subprocess.run([sys.executable, "-c", code, str(data), str(out)], env=env, check=True)
    return pd.read_parquet(out).sort_values(["_imputation", "_row_id"], ignore_index=True)


def pooled_bp(long: pd.DataFrame) -> float:
    import sparkmice

    fits = sparkmice.fit_imputations(long, "y ~ age + bp + smoke + C(diet)", family="binomial")
    table = sparkmice.pool(fits)
    return float(table.set_index("term").loc["bp", "estimate"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--maxit", type=int, default=5)
    args = parser.parse_args()
    from sparkmice.datasets import make_mar

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "input.parquet"
        make_mar(args.rows, seed=1).to_parquet(data)  # one input for every path
        tables = {name: run_path(v, data, Path(tmp) / f"{i}.parquet", args)
                  for i, (name, v) in enumerate(PATHS.items())}
    ref = tables["native"]
    print(f"{args.rows} rows, m={args.m}, maxit={args.maxit}; against the native path:")
    print("| path | imputed cells differing | largest relative difference | pooled bp estimate |")
    print("| --- | --- | --- | --- |")
    for name, t in tables.items():
        cells = differing = 0
        worst = 0.0
        for col in ref.columns:
            a, b = ref[col].to_numpy(), t[col].to_numpy()
            same = (a == b) | (pd.isna(a) & pd.isna(b))
            cells += len(a)
            differing += int((~same).sum())
            if a.dtype.kind == "f" and (~same).any():
                rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-300)
                worst = max(worst, float(np.nanmax(rel[~same])))
        print(f"| {name} | {differing} of {cells} | {worst:.2g} | {pooled_bp(t):.15g} |")


if __name__ == "__main__":
    main()
