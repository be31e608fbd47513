"""Peer: statsmodels MICE on a make_mar / gen_mar Parquet file, imputation timed alone.

Usage: python anchor_statsmodels.py FILE.parquet m maxit [seed]

statsmodels has no logistic or multinomial imputation models: every incomplete column,
including smoke and the two diet dummies, is imputed by its default (linear model with
predictive mean matching). Timed: m independent chains of ``maxit`` full sweeps
(``MICEData.update_all(maxit)``), the same m·maxit sweeps as R mice. Not timed: the
analysis ``y ~ age + bp + smoke + veg + vegan`` (binomial GLM) on each completed set and
Rubin's rules. Prints ``RESULT impute_s=<s> ...`` for benchmarks/run.py.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.imputation.mice import MICEData

FORMULA = "y ~ age + bp + smoke + veg + vegan"


def prepare(path: str) -> pd.DataFrame:
    """Numbers only: diet as two dummies (missing where diet is), region as four."""
    d = pd.read_parquet(path)
    for name, level in (("veg", "vegetarian"), ("vegan", "vegan")):
        d[name] = np.where(d["diet"].isna(), np.nan, (d["diet"] == level).astype(float))
    for r in "BCDE":
        d["reg" + r] = (d["region"] == r).astype(float)
    return d.drop(columns=["diet", "region"])


def pool(estimates: list[pd.Series], variances: list[pd.Series]) -> pd.DataFrame:
    """Rubin's rules (large-sample df) for printing only."""
    q, u = pd.concat(estimates, axis=1), pd.concat(variances, axis=1)
    m = q.shape[1]
    b = q.var(axis=1, ddof=1)
    t = u.mean(axis=1) + (1 + 1 / m) * b
    return pd.DataFrame({"estimate": q.mean(axis=1), "std.error": np.sqrt(t)})


def main(argv: list[str]) -> None:
    """Run the timed chains, then the untimed analysis."""
    if len(argv) < 3:
        raise SystemExit("usage: python anchor_statsmodels.py FILE.parquet m maxit [seed]")
    path, m, maxit = argv[0], int(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) > 3 else 1
    d = prepare(path)
    np.random.seed(seed)  # MICEData draws from numpy's global generator

    t0, c0 = time.perf_counter(), time.process_time()
    completed = []
    for _ in range(m):
        chain = MICEData(d)
        chain.update_all(maxit)
        completed.append(chain.data.copy())
    impute_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0

    fits = [smf.glm(FORMULA, c, family=sm.families.Binomial()).fit() for c in completed]
    print(f"RESULT impute_s={impute_s:.3f} cpu_s={cpu_s:.3f} rows={len(d)} m={m} maxit={maxit} "
          f"statsmodels={statsmodels.__version__}")
    print(pool([f.params for f in fits], [f.bse**2 for f in fits]).round(4))


if __name__ == "__main__":
    main(sys.argv[1:])
