"""The wide reference workload (issue 12): 50 columns of a registry-like mix, MAR, with a
known outcome model; and its measurements.

Columns (`make_wide(n, seed)`):

* 6 nominal codes ``n4, n8, n20, n50, n120, n300`` (that many levels, long-tailed: level
  shares ∝ rank^-1.1 before the predictors move them), strings such as ``n300_017``
  (level 0 the most common);
* 4 ordered ``o1..o4`` (3, 4, 5, 7 levels; integers 1..K, declared `kind: ordered`);
* 10 binary ``b01..b10`` (0/1 floats);
* 29 continuous ``c01..c29`` and the outcome ``y`` (always observed).

All but y hang on three latent factors, so every column predicts the others. The outcome is

    y = 1 + 0.5 c01 - 0.3 c02 + 0.2 c03 + 0.6 b01 + [n4 effects] + [n8 effects] + N(0, 1),

whose terms are `TRUE_COEFFICIENTS` (formulaic's names), written beside the data as
``<file>.truth.json`` with the analysis formula `FORMULA`. 30 columns are then made
missing at random: every nominal and ordered column, b01..b06 and c01..c14, each cell
with probability logistic(shift + 0.8 z), z from the always-observed y and c20 (about 25%
per column, more where y is high: the complete cases are biased, MICE should not be).

    python benchmarks/wide.py generate --rows 1e4   # benchmarks/data/wide_n10000_seed1.parquet
    python benchmarks/wide.py sweep --rows 1e4      # in-process: seconds per sweep, by method
    python benchmarks/wide.py sweep --rows 1e4 --profile        # and where one sweep's time goes
    python benchmarks/wide.py spark --rows 1e5 --m 5 --maxit 5 --check   # local[2], vs the truth
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

NOMINAL_LEVELS = (4, 8, 20, 50, 120, 300)
ORDERED_LEVELS = (3, 4, 5, 7)
N_BINARY = 10
N_CONTINUOUS = 29
N_FACTORS = 3
TAIL = 1.1  # level shares ∝ rank^-TAIL
CHUNK_ROWS = 65536
MISSING_SHIFT = -1.3  # logistic(shift + 0.8 z), z ~ N(0, 1): about 25% missing per column


def level_names(k: int) -> list[str]:
    """n4_00 .. n4_03, n300_000 .. n300_299: sorted order is rank order."""
    return [f"n{k}_{i:0{max(2, len(str(k - 1)))}d}" for i in range(k)]


FORMULA = "y ~ c01 + c02 + c03 + b01 + C(n4) + C(n8)"
N4_EFFECTS = (0.0, 0.4, -0.3, 0.5)  # level 0 the reference
N8_EFFECTS = (0.0, 0.3, -0.2, 0.2, -0.4, 0.6, 0.1, -0.5)
TRUE_COEFFICIENTS: dict[str, float] = {
    "Intercept": 1.0,
    "c01": 0.5,
    "c02": -0.3,
    "c03": 0.2,
    "b01": 0.6,
    **{f"C(n4)[T.{name}]": e for name, e in zip(level_names(4)[1:], N4_EFFECTS[1:], strict=True)},
    **{f"C(n8)[T.{name}]": e for name, e in zip(level_names(8)[1:], N8_EFFECTS[1:], strict=True)},
}


def incomplete_columns() -> list[str]:
    return (
        [f"n{k}" for k in NOMINAL_LEVELS]
        + [f"o{i + 1}" for i in range(len(ORDERED_LEVELS))]
        + [f"b{i:02d}" for i in range(1, 7)]
        + [f"c{i:02d}" for i in range(1, 15)]
    )


def make_wide(n: int, seed: int = 1) -> pd.DataFrame:
    """The wide workload at n rows (see the module docstring); deterministic in (n, seed)."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, N_FACTORS))
    cols: dict[str, np.ndarray] = {}
    for i in range(1, N_CONTINUOUS + 1):
        load = rng.normal(0.0, 0.6, N_FACTORS)
        cols[f"c{i:02d}"] = f @ load + rng.standard_normal(n) * 0.8
    for i in range(1, N_BINARY + 1):
        load = rng.normal(0.0, 0.8, N_FACTORS)
        share = rng.uniform(0.15, 0.5)
        eta = np.log(share / (1 - share)) + f @ load
        cols[f"b{i:02d}"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    for i, k in enumerate(ORDERED_LEVELS, start=1):
        load = rng.normal(0.0, 0.8, N_FACTORS)
        latent = f @ load + rng.logistic(size=n)
        cuts = np.quantile(latent, np.arange(1, k) / k)
        cols[f"o{i}"] = (np.searchsorted(cuts, latent) + 1).astype(np.int64)
    for k in NOMINAL_LEVELS:
        base = np.log(np.arange(1, k + 1) ** -TAIL)
        effects = rng.normal(0.0, 0.5, (N_FACTORS, k))
        effects[:, 0] = 0.0
        u = rng.random(n)
        codes = np.empty(n, dtype=np.intp)
        for lo in range(0, n, CHUNK_ROWS):  # n × k probabilities, a chunk at a time
            logits = base + f[lo : lo + CHUNK_ROWS] @ effects
            cum = np.cumsum(np.exp(logits - logits.max(1, keepdims=True)), axis=1)
            codes[lo : lo + CHUNK_ROWS] = (u[lo : lo + CHUNK_ROWS, None] * cum[:, -1:] > cum).sum(1)
        cols[f"n{k}"] = np.asarray(level_names(k), dtype=object)[codes]
    n4 = np.searchsorted(level_names(4), cols["n4"])
    n8 = np.searchsorted(level_names(8), cols["n8"])
    t = TRUE_COEFFICIENTS
    cols["y"] = (
        t["Intercept"]
        + t["c01"] * cols["c01"]
        + t["c02"] * cols["c02"]
        + t["c03"] * cols["c03"]
        + t["b01"] * cols["b01"]
        + np.asarray(N4_EFFECTS)[n4]
        + np.asarray(N8_EFFECTS)[n8]
        + rng.standard_normal(n)
    )
    frame = pd.DataFrame(cols)
    z = (frame["y"] - frame["y"].mean()) / frame["y"].std() * 0.8 + 0.6 * frame["c20"]
    z = (z - z.mean()) / z.std()
    for name in incomplete_columns():
        gone = rng.random(n) < 1 / (1 + np.exp(-(MISSING_SHIFT + 0.8 * z.to_numpy())))
        frame[name] = frame[name].where(~gone)  # object -> None, numbers -> NaN
    frame[[f"o{i}" for i in range(1, 5)]] = frame[[f"o{i}" for i in range(1, 5)]].astype("Int64")
    return frame


ANALYSIS_VARIABLES = ("y", "c01", "c02", "c03", "b01", "n4", "n8")  # FORMULA's variables


def config_options() -> dict:
    """The run's options beyond m, maxit, seed: the ordered columns declared, and the
    analysis model's variables kept as predictors of every column (quickpred's include).
    Wide tables get R's quickpred rule by default, and by correlation alone (mincor 0.1) it
    left c01, c03, b01, n4 and n8 out of one another's models: the pooled terms came out 2-3
    SEs toward zero at 10^5 rows, at maxit 5 and 10 alike (benchmarks/results/wide_*.md)."""
    return {
        "kind": {f"o{i}": "ordered" for i in range(1, len(ORDERED_LEVELS) + 1)},
        "quickpred": {"include": list(ANALYSIS_VARIABLES)},
    }


def data_path(rows: int, seed: int) -> Path:
    return DATA / f"wide_n{rows}_seed{seed}.parquet"


def generate(rows: int, seed: int) -> Path:
    """Write the workload (and its truth) once; later calls reuse the file."""
    path = data_path(rows, seed)
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        make_wide(rows, seed).to_parquet(path, index=False)
        truth = {"formula": FORMULA, "family": "gaussian", "coefficients": TRUE_COEFFICIENTS}
        path.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1))
    return path


# --- measurements --------------------------------------------------------------------


def sweep(rows: int, seed: int, maxit: int, profile: bool) -> dict:
    """One chain in-process: wall seconds per sweep, and per method the CPU seconds of its
    steps (timed around the sampler's variable step; CPU, so that a shared machine's wait
    for a core does not count: run with OPENBLAS_NUM_THREADS=1 to read them as one core's)."""
    import sparkmice
    from sparkmice import sampler

    frame = pd.read_parquet(generate(rows, seed))
    per_step: dict[str, float] = collections.defaultdict(float)
    steps: dict[str, int] = collections.Counter()
    original = sampler.Chain.step

    def timed(self, blocks, j, it, *rest):
        t0 = time.process_time()
        original(self, blocks, j, it, *rest)
        method = self.plan.method[self.plan.variables[j].name]
        per_step[method] += time.process_time() - t0
        steps[method] += 1

    sampler.Chain.step = timed  # type: ignore[method-assign]
    profiler = cProfile.Profile() if profile else None
    try:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        imp = sparkmice.mice(frame, m=1, maxit=maxit, seed=seed, engine="inprocess",
                             **config_options())  # fmt: skip
        if profiler:
            profiler.disable()
        total = time.perf_counter() - t0
    finally:
        sampler.Chain.step = original  # type: ignore[method-assign]
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    return {
        "rows": rows,
        "maxit": maxit,
        "total_s": round(total, 2),
        "sweep_s": [round(float(s), 2) for s in imp.timings["seconds"]],
        "by_method_cpu_s_per_sweep": {k: round(v / maxit, 3) for k, v in sorted(per_step.items())},
        "steps_per_sweep": {k: v // maxit for k, v in sorted(steps.items())},
        "pooled_events": int((imp.logged_events.event == "predictor levels pooled").sum()),
    }


def spark_run(rows: int, seed: int, m: int, maxit: int, check: bool) -> dict:
    """m chains on local[2] (the barrier engine), timed around mice(); with `check`, the
    analysis model pooled against the truth (|estimate - truth| / SE per term)."""
    import sparkmice
    from sparkmice.session import get_spark

    path = generate(rows, seed)
    spark = get_spark()
    df = spark.read.parquet(str(path))
    out = HERE / "data" / f"wide_out_n{rows}"
    t0 = time.perf_counter()
    imp = sparkmice.mice(df, m=m, maxit=maxit, seed=seed, output=str(out), overwrite=True,
                         **config_options())  # fmt: skip
    seconds = time.perf_counter() - t0
    result = {"rows": rows, "m": m, "maxit": maxit, "seconds": round(seconds, 1),
              "sweep_s_median": float(imp.timings["seconds"].median())}  # fmt: skip
    if check:
        result["check"] = check_truth(imp.complete("long"))
    return result


def check_truth(long_table) -> dict[str, float]:
    """(estimate - truth) / SE of every term of FORMULA, pooled over the imputations."""
    import sparkmice

    pooled = sparkmice.pool(sparkmice.fit_imputations(long_table, FORMULA, family="gaussian"))
    pooled = pooled.set_index("term")
    z = (pooled["estimate"] - pd.Series(TRUE_COEFFICIENTS)) / pooled["std_error"]
    return {term: round(float(z[term]), 2) for term in TRUE_COEFFICIENTS}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("generate", "sweep", "spark"))
    parser.add_argument("--rows", type=float, default=1e4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--check", action="store_true", help="pool FORMULA against the truth")
    args = parser.parse_args(argv)
    rows = int(args.rows)
    if args.what == "generate":
        print(generate(rows, args.seed))
    elif args.what == "sweep":
        print(json.dumps(sweep(rows, args.seed, args.maxit, args.profile), indent=1))
    else:
        print(json.dumps(spark_run(rows, args.seed, args.m, args.maxit, args.check), indent=1))


if __name__ == "__main__":
    main()
