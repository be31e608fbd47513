"""Simulation study: small, sparse, ordinal data (issue 13) — which polyreg draw is honest?

A boys-like design with a known truth (R's `boys`: tv 75% missing, gen and phb ordinal
stages ~50% missing). Per replication, n rows (default 300):

* age ~ U(0, 21); hgt = 75 + 5.5·age + N(0, 8²); wgt = 0.55·hgt - 30 + N(0, 5²);
  hc = 35 + 6·log(1 + age) + N(0, 1.5²); reg: five regions, equally likely, no effect
  (all complete: the predictors of boys, so gen's model has boys' ~14 coefficients per level);
* gen (G1..G5) and phb (P1..P6): ordinal stages from latent logistic scales that rise
  steeply with age, so the high stages are absent at young ages and the low ones at old
  ages (levels rare, near-separated, in parts of the covariate space);
* y ("tv") = 2 + 0.3·(age - 10) + 2·gen + 0.6·phb + N(0, 3²) (gen, phb as stage numbers);
* missing at random given age: a row's exam (gen, phb, y) is seen with probability
  logistic(0.3·(age - 9.5)), y only in 55% of the seen exams, and gen, phb each lose another
  10% of their values at random: about 50% of gen and phb and 70% of y missing.

Analysis model `y ~ age + hgt` (gaussian); the truth is its population coefficients (least
squares on 2·10⁶ complete rows of the same generator, cached in the results directory).

Methods (m = 20, maxit = 5 as R mice's default, in-process engine; y by norm, whose linear
model in age, hgt, wgt, hc, reg and the stages' dummies is the true one, so that any bias
comes from the stages' imputation — pmm, boys' choice for tv, adds its own bias where young
children's y lies below every observed donor's prediction):
* polyreg: gen and phb nominal, sparkmice's polyreg (the proper draw, N(beta-hat, I^-1));
* improper: R mice's polyreg — imputes from the fitted probabilities, no parameter draw
  (a method registered here through the method contract);
* prior: polyreg with its hierarchical slope prior (`polyreg_prior="hierarchical"`, see
  kernels/polyreg.py), the same proper draw from that posterior;
* polr: gen and phb declared ordered (proportional odds, proper draw);
* cc: complete cases; full: the data before deletion (yardstick).

Reports per method and slope: bias, SD of the estimates over replications, mean SE,
SE/SD, coverage of the 95% interval with its Monte-Carlo SE sqrt(0.95·0.05/R), and mean
interval width. Rows are appended per (replication, method) to `sparse_sim_reps.csv` as
they finish, so a stopped run resumes where it stopped.

    nice -n 10 python benchmarks/sparse_sim.py --reps 5 --results /tmp/pilot   # pilot
    nice -n 10 python benchmarks/sparse_sim.py --reps 200                       # the study
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process (before numpy)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FORMULA = "y ~ age + hgt"
SLOPES = ("age", "hgt")
GEN_LEVELS = [f"G{k}" for k in range(1, 6)]
PHB_LEVELS = [f"P{k}" for k in range(1, 7)]
REG_LEVELS = ["north", "east", "west", "south", "city"]
GEN_CUTS = np.array([-3.0, -1.0, 1.0, 3.0])
PHB_CUTS = np.array([-4.0, -2.2, -0.6, 0.8, 2.6])
METHODS = ("polyreg", "improper", "prior", "polr", "cc", "full")
NOMINAL = 0.95
REPS_FILE = "sparse_sim_reps.csv"
TRUTH_FILE = "sparse_sim_truth.csv"
COLUMNS = ("rep", "method", "term", "estimate", "std_error", "conf_low", "conf_high",
           "fmi", "seconds", "n", "m", "maxit", "setting")  # fmt: skip


# --------------------------------------------------------------------------- the data

def _stage(latent: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    return (latent[:, None] > cuts).sum(axis=1)


def generate(n: int, rng: np.random.Generator, amputate: bool = True) -> pd.DataFrame:
    """One data set of the boys-like design (see the module docstring)."""
    age = rng.uniform(0.0, 21.0, n)
    hgt = 75.0 + 5.5 * age + rng.normal(0.0, 8.0, n)
    wgt = 0.55 * hgt - 30.0 + rng.normal(0.0, 5.0, n)
    hc = 35.0 + 6.0 * np.log1p(age) + rng.normal(0.0, 1.5, n)
    reg = rng.integers(0, len(REG_LEVELS), n)
    gen = _stage(1.4 * (age - 13.0) + rng.logistic(size=n), GEN_CUTS)
    phb = _stage(0.9 * (age - 13.0) + 0.9 * (gen - 2.0) + rng.logistic(size=n), PHB_CUTS)
    y = 2.0 + 0.3 * (age - 10.0) + 2.0 * gen + 0.6 * phb + rng.normal(0.0, 3.0, n)
    exam = rng.random(n) < 1.0 / (1.0 + np.exp(-0.3 * (age - 9.5)))
    seen_y = exam & (rng.random(n) < 0.55)
    seen_gen = exam & (rng.random(n) >= 0.10)
    seen_phb = exam & (rng.random(n) >= 0.10)
    df = pd.DataFrame({
        "age": age, "hgt": hgt, "wgt": wgt, "hc": hc,
        "reg": np.array(REG_LEVELS, dtype=object)[reg],
        "gen": np.array(GEN_LEVELS, dtype=object)[gen],
        "phb": np.array(PHB_LEVELS, dtype=object)[phb],
        "y": y,
    })  # fmt: skip
    if amputate:
        df.loc[~seen_gen, "gen"] = None
        df.loc[~seen_phb, "phb"] = None
        df.loc[~seen_y, "y"] = np.nan
    return df


def truth(results: Path) -> dict[str, float]:
    """Population coefficients of FORMULA: least squares on 2e6 complete rows (cached)."""
    path = results / TRUTH_FILE
    if path.exists():
        t = pd.read_csv(path)
        return dict(zip(t["term"], t["value"], strict=True))
    df = generate(2_000_000, np.random.default_rng(20261202), amputate=False)
    x = np.column_stack([np.ones(len(df)), df["age"], df["hgt"]])
    coef = np.linalg.lstsq(x, df["y"].to_numpy(), rcond=None)[0]
    values = dict(zip(("Intercept", *SLOPES), coef.tolist(), strict=True))
    pd.DataFrame({"term": list(values), "value": list(values.values())}).to_csv(path, index=False)
    return values


# --------------------------------------------------------------------------- methods

def register_improper() -> None:
    """R mice's polyreg as a method of this process: the multinomial fit of sparkmice's
    polyreg, then imputation from the fitted coefficients without drawing them (improper;
    mice issue 661). Registered as config's method rule expects (tests/test_docs_examples)."""
    from sparkmice import config
    from sparkmice.kernels import METHODS as REGISTRY
    from sparkmice.kernels import polyreg
    from sparkmice.kernels.newton import Draw

    def parameters(step: Any, rng: np.random.Generator, **options: Any) -> Draw:
        d = polyreg.parameters(step, rng, **options)
        return Draw(d.coef, d.coef, d.iterations)

    REGISTRY["polyreg_improper"] = dataclasses.replace(
        polyreg.METHOD, name="polyreg_improper", parameters=parameters
    )
    names = (*REGISTRY, "")
    rule = config.RULES["method"]
    config.RULES["method"] = dataclasses.replace(
        rule, accepts=lambda v, _: v in names, choices=names
    )


def mice_options(method: str) -> dict[str, Any]:
    """mice() options for the categorical stages under `method`."""
    if method == "polr":
        return {"kind": {"gen": "ordered", "phb": "ordered"}, "method": {"y": "norm"},
                "levels": {"gen": GEN_LEVELS, "phb": PHB_LEVELS}}  # fmt: skip
    options: dict[str, Any] = {"kind": {"gen": "nominal", "phb": "nominal"},
                               "method": {"y": "norm"}}  # fmt: skip
    if method == "improper":
        options["method"].update(gen="polyreg_improper", phb="polyreg_improper")
    if method in ("polyreg", "improper"):
        options["polyreg_prior"] = "none"  # the augmented likelihood alone
    if method == "prior":
        options["polyreg_prior"] = "hierarchical"
    return options


@dataclasses.dataclass(frozen=True)
class Task:
    rep: int
    method: str
    n: int
    m: int
    maxit: int
    setting: str


def run_task(task: Task) -> tuple[Task, list[dict[str, Any]], str]:
    """One (replication, method): the data set of seed `rep`, imputed and pooled."""
    try:
        import sparkmice

        logging.disable(logging.WARNING)
        register_improper()
        rng = np.random.default_rng([task.rep, 13])
        df = generate(task.n, rng, amputate=task.method != "full")
        t0 = time.perf_counter()
        if task.method in ("cc", "full"):
            table = sparkmice.fit_complete_cases(df, FORMULA)
        else:
            imp = sparkmice.mice(df, m=task.m, maxit=task.maxit, seed=task.rep,
                                 engine="inprocess", **mice_options(task.method))
            table = sparkmice.pool(sparkmice.fit_imputations(imp.complete("long"), FORMULA))
        secs = time.perf_counter() - t0
        rows = [{
            "rep": task.rep, "method": task.method, "term": r.term, "estimate": r.estimate,
            "std_error": r.std_error, "conf_low": r.conf_low, "conf_high": r.conf_high,
            "fmi": getattr(r, "fmi", np.nan), "seconds": secs, "n": task.n,
            "m": task.m, "maxit": task.maxit, "setting": task.setting,
        } for r in table.itertuples(index=False)]  # fmt: skip
        return task, rows, ""
    except Exception:  # noqa: BLE001 - recorded; the summary says how many failed
        return task, [], traceback.format_exc()


# --------------------------------------------------------------------------- summary

def summarise(reps: pd.DataFrame, true: dict[str, float]) -> pd.DataFrame:
    out = []
    for (method, term), g in reps.groupby(["method", "term"], sort=False):
        if term not in SLOPES:
            continue
        est, se = g["estimate"].to_numpy(float), g["std_error"].to_numpy(float)
        covered = ((g["conf_low"] <= true[term]) & (true[term] <= g["conf_high"])).mean()
        sd = est.std(ddof=1) if len(g) > 1 else np.nan
        out.append({
            "method": method, "term": term, "reps": len(g), "true": true[term],
            "mean_estimate": est.mean(), "bias": est.mean() - true[term],
            "bias_mcse": sd / np.sqrt(len(g)), "emp_sd": sd, "mean_se": se.mean(),
            "se_over_sd": se.mean() / sd, "coverage": covered,
            "mean_width": (g["conf_high"] - g["conf_low"]).mean(),
            "mean_fmi": g["fmi"].mean(), "seconds": g["seconds"].mean(),
        })  # fmt: skip
    table = pd.DataFrame(out)
    table["_m"] = table["method"].map({k: i for i, k in enumerate(METHODS)})
    return table.sort_values(["term", "_m"]).drop(columns="_m").reset_index(drop=True)


def markdown(table: pd.DataFrame, setting: str) -> str:
    r = int(table["reps"].min())
    band = 100 * 2 * np.sqrt(NOMINAL * (1 - NOMINAL) / r)
    per_method = table.groupby("method", sort=False)["reps"].min()
    lines = [
        f"Setting: {setting}. Replications per method: "
        + ", ".join(f"{k} {v}" for k, v in per_method.items())
        + f". Coverage MCSE at R = {r}: sqrt(0.95·0.05/R) = "
        f"{100 * np.sqrt(NOMINAL * (1 - NOMINAL) / r):.1f} points (2-MCSE band 95 ± {band:.1f}).",
        "",
        "| slope | method | true | mean est. | bias (MCSE) | emp. SD | mean SE | SE/SD "
        "| coverage % | CI width | FMI | s/rep |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in table.itertuples(index=False):
        fmi = "" if np.isnan(t.mean_fmi) else f"{t.mean_fmi:.2f}"
        lines.append(
            f"| `{t.term}` | {t.method} | {t.true:.4f} | {t.mean_estimate:.4f} "
            f"| {t.bias:+.4f} ({t.bias_mcse:.4f}) | {t.emp_sd:.4f} | {t.mean_se:.4f} "
            f"| {t.se_over_sd:.2f} | {100 * t.coverage:.1f} | {t.mean_width:.4f} | {fmi} "
            f"| {t.seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"


def load(path: Path, setting: str) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    done = pd.read_csv(path)
    return done[done["setting"] == setting].drop_duplicates(["rep", "method", "term"])


# --------------------------------------------------------------------------- driver

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--m", type=int, default=20)
    parser.add_argument("--maxit", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    if unknown := set(methods) - set(METHODS):
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}")
    args.results.mkdir(parents=True, exist_ok=True)
    setting = f"n={args.n} m={args.m} maxit={args.maxit}"
    path = args.results / REPS_FILE
    true = truth(args.results)
    done = load(path, setting)
    have = set(zip(done["rep"], done["method"], strict=True))
    tasks = [Task(r, meth, args.n, args.m, args.maxit, setting)
             for r in range(args.first, args.first + args.reps) for meth in methods
             if (r, meth) not in have]  # fmt: skip
    print(f"sparse_sim: {len(tasks)} tasks to run ({setting}; truth {true})", flush=True)
    t_start, failed = time.perf_counter(), 0
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=40) as pool:
        for k, (task, rows, error) in enumerate(pool.imap_unordered(run_task, tasks), 1):
            if error:
                failed += 1
                print(f"rep {task.rep} {task.method}: FAILED\n{error}", file=sys.stderr, flush=True)
                continue
            frame = pd.DataFrame(rows, columns=list(COLUMNS))
            frame.to_csv(path, mode="a", header=not path.exists(), index=False)
            if k % 20 == 0 or k == len(tasks):
                elapsed = time.perf_counter() - t_start
                print(f"[{dt.datetime.now():%H:%M:%S}] {k}/{len(tasks)} done, {elapsed:.0f} s, "
                      f"~{elapsed / k * (len(tasks) - k):.0f} s left, {failed} failed", flush=True)
    reps = load(path, setting)
    if reps.empty:
        return 1
    table = summarise(reps, true)
    table.to_csv(args.results / "sparse_sim_summary.csv", index=False)
    print(markdown(table, setting))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
