"""Peer: miceforest (LightGBM with mean matching) on the wide reference workload.

Usage (in miceforest's own venv, e.g. /work/peer-venvs/miceforest):

    python benchmarks/peers/wide_miceforest.py DATA.parquet OUTDIR [m iters seed [key=value ...]]

key=value pairs are LightGBM parameters passed to ``kernel.mice`` (for all variables), e.g.
``min_data_in_leaf=20``, as miceforest's rare-category warning suggests; values are ints
where they parse as ints, else floats, else strings.

Column types as a miceforest user would set them: the nominal codes n*, the ordered o1..o4
and the binaries b* as pandas categories (o* ordered), the rest float. Default kernel and
LightGBM settings. Timed: kernel construction and ``mice(iters)``. Writes the m completed
frames as OUTDIR/imp<i>.parquet (b* back to 0/1 floats, o* to integers) for
``wide_peers.py pool-frames``. Prints ``RESULT status=... seconds=...``; on failure the
exception and its traceback.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import pandas as pd


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories for nominal, ordered and binary columns."""
    frame = frame.copy()
    for name in frame.columns:
        if name.startswith("n"):
            frame[name] = frame[name].astype("category")
        elif name.startswith("o"):
            values = frame[name].astype(float)
            levels = sorted(values.dropna().unique())
            frame[name] = pd.Categorical(values, categories=levels, ordered=True)
        elif name.startswith("b"):
            frame[name] = frame[name].astype("category")
        else:
            frame[name] = frame[name].astype(float)
    return frame


def parse_param(text: str) -> tuple[str, int | float | str]:
    """'min_data_in_leaf=20' -> ('min_data_in_leaf', 20)."""
    key, value = text.split("=", 1)
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def main(argv: list[str]) -> None:
    import lightgbm
    import miceforest as mf

    path, outdir = Path(argv[0]), Path(argv[1])
    m = int(argv[2]) if len(argv) > 2 else 5
    iters = int(argv[3]) if len(argv) > 3 else 5
    seed = int(argv[4]) if len(argv) > 4 else 1
    lgb_params = dict(parse_param(a) for a in argv[5:])
    frame = typed(pd.read_parquet(path))
    print(
        f"miceforest {mf.__version__}, lightgbm {lightgbm.__version__}, pandas {pd.__version__}; "
        f"{len(frame)} rows, {frame.shape[1]} columns, "
        f"{int(frame.isna().any().sum())} incomplete",
        flush=True,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        kernel = mf.ImputationKernel(frame, num_datasets=m, random_state=seed)
        print(f"lightgbm parameters beyond the defaults: {lgb_params}", flush=True)
        kernel.mice(iters, verbose=True, **lgb_params)  # verbose: per iteration, variable
    except Exception as exc:  # noqa: BLE001  (record how the peer fails)
        seconds = time.perf_counter() - t0
        print(f"RESULT status=failed seconds={seconds:.1f} rows={len(frame)} m={m} iters={iters}")
        print(f"ERROR {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stdout)
        raise SystemExit(3) from None
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"RESULT status=ok seconds={seconds:.1f} cpu_s={cpu:.1f} rows={len(frame)} m={m} "
        f"iters={iters}",
        flush=True,
    )
    outdir.mkdir(parents=True, exist_ok=True)
    for i in range(m):
        done = kernel.complete_data(dataset=i)
        for name in done.columns:
            if name.startswith(("b", "o")):
                done[name] = done[name].astype(float)
        left = int(done.isna().sum().sum())
        if left:
            print(f"imputation {i}: {left} cells still missing")
        done.to_parquet(outdir / f"imp{i}.parquet", index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
