"""Convergence warnings: how often does R-hat > 1.1 fire on chains that have converged?

Each case is imputed with m = 5 chains and maxit = 50 (in-process engine; the first t
iterations of a maxit = 50 run are exactly the run with maxit = t, since every sweep draws
from its own seeded stream), for several seeds:

* ``nhanes``: R mice's nhanes (25 rows; bmi, hyp, chl incomplete), 40 seeds;
* ``health``: the demo set ``sparkmice/data/health_mar.parquet`` (20,000 rows), 3 seeds;
* ``mar1e4``: the reference workload at 10^4 rows (``make_mar(10000, seed)``), 4 seeds;
* ``boys``: a boys-like small sparse set (400 rows; tv 75% missing; the stages gen G1-G5
  and phb P1-P6 as strings, about half missing, rare levels at the young ages), 20 seeds;
* ``slowpair``: a chain that has truly not converged at 50 iterations: x1 and x2 are
  missing together in the rows where z is high, correlated 0.988 with each other but
  only 0.45 with z, imputed by pmm from each other. The Gibbs sampler moves along their
  ridge by a few per cent of the way each sweep (lag-one autocorrelation about 0.97), from
  an initial fill drawn among the observed, low values: the mean of the imputed x1 drifts
  for about 100 iterations. 20 seeds.

The reference verdict of a variable in a run is R-hat (rank-normalised split, both the
mean and the SD traces) over iterations 25-50 at most 1.1; the rules are compared against
it: the rule before (R-hat over all iterations 1..t, as a run with maxit = t judged
itself) and the rule after (:func:`sparkmice.diagnostics.rhat.rhat_table`: the second
half of the iterations, at least ``MIN_WINDOW`` of them). The calibration tables give the
probability that R-hat > 1.1 on chains that are stationary: windows of w iterations cut
from iterations 11-50 of the converged runs, and independent normal draws (the best case:
no autocorrelation), as a function of w and m. Across seeds, the distribution of a
variable's trace at iteration t is compared with that of iterations 25-50 (is the chain
there already at iteration t?).

    nice -n 10 python benchmarks/convergence.py            # traces cached in benchmarks/data/
    python benchmarks/convergence.py --cases nhanes,boys --report-only

Writes ``benchmarks/results/convergence_<date>.md``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sparkmice.datasets import load_health_mar, load_nhanes, make_mar  # noqa: E402

M = 5
MAXIT = 50
REFERENCE = (25, 50)  # iterations whose R-hat is the reference verdict
CACHE = HERE / "data" / "convergence"


def boys_like(seed: int, n: int = 400) -> pd.DataFrame:
    """A small sparse growth study like R mice's ``boys``: ordinal puberty stages as strings.

    Age 0-21; height and weight follow age; the genital (gen, G1-G5) and pubic hair (phb,
    P1-P6) stages come from one latent puberty score in age, cut at fixed thresholds, so the
    top and bottom levels are rare outside their ages; testicular volume tv grows with the
    score. Stages are measured mostly in older boys: about half missing, tv 75%.
    """
    rng = np.random.default_rng(seed)
    age = rng.uniform(0, 21, n)
    hgt = 50 + 135 * (1 - np.exp(-age / 7)) + rng.normal(0, 6, n)
    wgt = 3 + 3.2 * age + rng.normal(0, 4, n)
    region = rng.choice(["north", "east", "west", "south", "city"], n)
    puberty = (age - 13) / 1.4 + rng.logistic(0, 0.6, n)
    gen_code = np.digitize(puberty, [-2.0, -0.6, 0.6, 2.0])
    phb_code = np.digitize(0.85 * puberty + rng.logistic(0, 0.4, n), [-2.2, -1, 0, 1, 2.2])
    tv = np.clip(np.round(np.exp(1.2 + 0.35 * puberty + rng.normal(0, 0.3, n))), 1, 25)
    young = age < 9
    frame = pd.DataFrame({
        "age": age,
        "hgt": np.where(rng.random(n) < 0.03, np.nan, hgt),
        "wgt": np.where(rng.random(n) < 0.02, np.nan, wgt),
        "gen": np.array([f"G{c + 1}" for c in gen_code], dtype=object),
        "phb": np.array([f"P{c + 1}" for c in phb_code], dtype=object),
        "tv": np.where(rng.random(n) < np.where(young, 0.97, 0.6), np.nan, tv),
        "reg": region.astype(object),
    })  # fmt: skip
    stage_missing = rng.random(n) < np.where(young, 0.85, 0.3)
    frame.loc[stage_missing, "gen"] = None
    frame.loc[stage_missing | (rng.random(n) < 0.05), "phb"] = None
    return frame


def slow_pair(seed: int, n: int = 500) -> pd.DataFrame:
    """Two strongly dependent variables missing together where z is high (see above)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    x1 = 0.5 * z + rng.normal(0, np.sqrt(0.75), n)
    x2 = x1 + rng.normal(0, np.sqrt(0.025), n)
    missing = rng.random(n) < 1 / (1 + np.exp(-(3 * z - 1)))
    return pd.DataFrame(
        {"z": z, "x1": np.where(missing, np.nan, x1), "x2": np.where(missing, np.nan, x2)}
    )


#: case -> (data for a seed, seeds, truly converged by iteration 25?)
CASES: dict[str, tuple[Callable[[int], pd.DataFrame], range, bool]] = {
    "nhanes": (lambda seed: load_nhanes(), range(1, 41), True),
    "health": (lambda seed: load_health_mar(), range(1, 4), True),
    "mar1e4": (lambda seed: make_mar(10_000, seed=seed), range(1, 5), True),
    "boys": (boys_like, range(1, 21), True),
    "slowpair": (slow_pair, range(1, 21), False),
}


def trace_of(case: str, seed: int) -> pd.DataFrame:
    """The trace of ``case`` imputed with this seed (m = 5, maxit = 50), cached as CSV."""
    import sparkmice

    path = CACHE / f"{case}_seed{seed}_m{M}_maxit{MAXIT}.csv"
    if path.exists():
        return pd.read_csv(path)
    data = CASES[case][0](seed)
    start = time.perf_counter()
    imp = sparkmice.mice(data, m=M, maxit=MAXIT, seed=seed)
    print(f"{case} seed {seed}: {time.perf_counter() - start:.1f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    imp.trace.to_csv(path, index=False)
    return imp.trace


def draws(trace: pd.DataFrame, variable: str, statistic: str) -> np.ndarray:
    """chains x iterations of one variable's statistic."""
    rows = trace[trace["variable"] == variable]
    return rows.pivot(index="chain", columns="iteration", values=statistic).to_numpy(float)
