"""Simulation: a 300-level nominal target imputed by polyreg (issue 12's many-level target).

Does the proper draw keep the level frequencies and their relation to the predictors when
most levels are rare? Per replication, n rows (default 4000):

* x1, x2, x3 ~ N(0, 1), complete;
* code: K = 300 levels with long-tailed frequencies (intercepts a_k = -1.5·log(k + 10),
  most common ~7%, a third of the levels seen in fewer than 5 rows) and slopes
  b_k1 ~ N(0, 0.6²), b_k2 ~ N(0, 0.3²), b_k3 = 0, drawn once (seed 12) and fixed; labels
  in an order unrelated to frequency (the reference level 0 may be rare);
* code missing at random given x1: P(missing) = logistic(-1 + 0.8·x1), about 30%.

Methods: polyreg without prior (`polyreg_prior="none"`), polyreg with its hierarchical
slope prior (`polyreg_prior="hierarchical"`), R mice's improper polyreg (no parameter
draw), and the oracle: draws from the true model (the floor set by sampling noise).
m = 5, maxit = 1 (the only incomplete variable; its predictors are complete).

Per method, over the missing rows, averaged over imputations and replications:
* TVD: total variation distance between the imputed and the true level shares;
* rare mass: share of imputed rows in levels seen in fewer than 5 observed rows, next to
  the true share of those levels among the missing rows;
* relation: for the 30 most common levels, the mean x1 of rows imputed to a level against
  the mean x1 of rows truly in it: the slope of that line (1: relation kept; 0: lost);
* the largest imputed / true count ratio over levels (a level blown up by a wild draw).

    nice -n 10 python benchmarks/many_levels.py --reps 20
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

K = 300
RARE_BELOW = 5
TOP = 30
METHODS = ("polyreg", "prior", "improper", "oracle")


@dataclasses.dataclass(frozen=True)
class Truth:
    intercept: np.ndarray  # K
    slopes: np.ndarray  # 3 × K
    labels: np.ndarray  # K strings, in an order unrelated to frequency


def truth() -> Truth:
    rng = np.random.default_rng(12)
    intercept = -1.5 * np.log(np.arange(K) + 10.0)
    slopes = np.vstack([rng.normal(0, 0.6, K), rng.normal(0, 0.3, K), np.zeros(K)])
    labels = np.array([f"c{v:04d}" for v in rng.permutation(K)], dtype=object)
    return Truth(intercept, slopes, labels)


def draw_codes(x: np.ndarray, t: Truth, rng: np.random.Generator) -> np.ndarray:
    eta = t.intercept + x @ t.slopes
    p = np.exp(eta - eta.max(axis=1, keepdims=True))
    cum = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((rng.random(len(x))[:, None] > cum).sum(axis=1), K - 1)


def generate(n: int, t: Truth, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """The data set with `code` missing, and the true codes (0..K-1 in frequency order)."""
    x = rng.normal(size=(n, 3))
    codes = draw_codes(x, t, rng)
    missing = rng.random(n) < 1.0 / (1.0 + np.exp(1.0 - 0.8 * x[:, 0]))
    df = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "code": t.labels[codes]})
    df.loc[missing, "code"] = None
    return df, codes


def measures(imputed: list[np.ndarray], true: np.ndarray, observed: np.ndarray,
             x1: np.ndarray) -> dict[str, float]:
    """The module docstring's measures for imputations (codes of the missing rows)."""
    true_share = np.bincount(true, minlength=K) / len(true)
    rare = np.bincount(observed, minlength=K) < RARE_BELOW
    top = np.argsort(-np.bincount(observed, minlength=K))[:TOP]
    true_mean = np.array([x1[true == k].mean() for k in top])
    out: dict[str, list[float]] = {"tvd": [], "rare_mass": [], "relation": [], "max_ratio": []}
    for codes in imputed:
        share = np.bincount(codes, minlength=K) / len(codes)
        out["tvd"].append(0.5 * np.abs(share - true_share).sum())
        out["rare_mass"].append(share[rare].sum())
        imp_mean = np.array([x1[codes == k].mean() if np.any(codes == k) else np.nan
                             for k in top])  # fmt: skip
        ok = np.isfinite(imp_mean) & np.isfinite(true_mean)
        out["relation"].append(float(np.polyfit(true_mean[ok], imp_mean[ok], 1)[0]))
        counts, true_counts = np.bincount(codes, minlength=K), np.bincount(true, minlength=K)
        out["max_ratio"].append(float((counts / np.maximum(true_counts, 1)).max()))
    result = {k: float(np.mean(v)) for k, v in out.items()}
    result["true_rare_mass"] = float(true_share[rare].sum())
    return result


def run(rep: int, method: str, n: int, m: int) -> dict[str, Any]:
    from sparse_sim import register_improper

    import sparkmice

    logging.disable(logging.WARNING)
    register_improper()
    t = truth()
    rng = np.random.default_rng([rep, 12])
    df, codes = generate(n, t, rng)
    missing = df["code"].isna().to_numpy()
    code_of = {label: k for k, label in enumerate(t.labels)}
    t0 = time.perf_counter()
    if method == "oracle":
        x = df[["x1", "x2", "x3"]].to_numpy()[missing]
        imputed = [draw_codes(x, t, np.random.default_rng([rep, i])) for i in range(m)]
    else:
        options: dict[str, Any] = {"kind": {"code": "nominal"}}
        if method == "improper":
            options["method"] = {"code": "polyreg_improper"}
        options["polyreg_prior"] = "hierarchical" if method == "prior" else "none"
        imp = sparkmice.mice(df, m=m, maxit=1, seed=rep, engine="inprocess", **options)
        imputed = [imp.complete(i)["code"].map(code_of).to_numpy()[missing]
                   for i in range(1, m + 1)]  # fmt: skip
    secs = time.perf_counter() - t0
    x1 = df["x1"].to_numpy()[missing]
    res = measures(imputed, codes[missing], codes[~missing], x1)
    return {"rep": rep, "method": method, "seconds": secs, **res}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--m", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "many_levels_reps.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["rep", "method"])
    have = set(zip(done["rep"], done["method"], strict=True))
    for rep in range(1, args.reps + 1):
        for method in args.methods.split(","):
            if (rep, method) in have:
                continue
            row = run(rep, method, args.n, args.m)
            pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False)
            print(row, flush=True)
    reps = pd.read_csv(path)
    table = reps.groupby("method", sort=False).mean(numeric_only=True).drop(columns="rep")
    table.insert(0, "reps", reps.groupby("method", sort=False).size())
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
