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

import argparse
import datetime as dt
import logging
import os
import platform
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
from sparkmice.diagnostics.rhat import THRESHOLD, min_iterations, rhat, rhat_table  # noqa: E402

M = 5
MAXIT = 50
REFERENCE = (25, 50)  # iterations whose R-hat is the reference verdict
MIN_WINDOW = min_iterations(M)
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


def both_rhats(trace: pd.DataFrame, variable: str, first: int, last: int) -> float:
    """The larger R-hat of the mean and the SD trace over iterations first..last."""
    values = [
        rhat(draws(trace, variable, stat)[:, first - 1 : last]) for stat in ("mean", "sd")
    ]
    return float(np.nanmax(values)) if not np.all(np.isnan(values)) else float("nan")


def verdicts(case: str, traces: dict[int, pd.DataFrame], lengths: list[int]) -> pd.DataFrame:
    """Per seed, variable and maxit t: the reference verdict, the rule before (R-hat over
    1..t above 1.1) and after (``rhat_table`` of the first t iterations)."""
    rows = []
    for seed, trace in traces.items():
        after = {t: rhat_table(trace[trace["iteration"] <= t]).set_index("variable")
                 for t in lengths}  # fmt: skip
        for variable in dict.fromkeys(trace["variable"]):
            reference = both_rhats(trace, variable, *REFERENCE)
            for t in lengths:
                state = after[t].loc[variable, "converged"]
                rows.append({
                    "case": case, "seed": seed, "variable": variable, "maxit": t,
                    "reference_converged": bool(reference <= THRESHOLD),
                    "before_alarm": bool(both_rhats(trace, variable, 1, t) > THRESHOLD),
                    "after": "not judged" if state is pd.NA else
                    ("converged" if state else "not converged"),
                })  # fmt: skip
    return pd.DataFrame(rows)


def stationary_windows(
    case: str, traces: dict[int, pd.DataFrame], widths: list[int]
) -> pd.DataFrame:
    """R-hat > 1.1 on windows of w iterations cut from iterations 11-50 (from the end,
    not overlapping) of the variables whose reference verdict is converged."""
    rows = []
    for trace in traces.values():
        for variable in dict.fromkeys(trace["variable"]):
            if not both_rhats(trace, variable, *REFERENCE) <= THRESHOLD:
                continue
            for w in widths:
                for last in range(MAXIT, 10 + w - 1, -w):
                    value = both_rhats(trace, variable, last - w + 1, last)
                    rows.append({"case": case, "width": w, "alarm": value > THRESHOLD})
    return pd.DataFrame(rows)


def iid_false_alarm(chains: int, width: int, reps: int = 2000, seed: int = 1) -> float:
    """The same share for independent normal draws of the mean and the SD trace."""
    rng = np.random.default_rng([chains, width, seed])
    sims = rng.normal(size=(reps, 2, chains, width))
    return float(np.mean([max(rhat(s[0]), rhat(s[1])) > THRESHOLD for s in sims]))


def drift(case: str, traces: dict[int, pd.DataFrame], at: list[int]) -> pd.DataFrame:
    """Across seeds and chains: is iteration t already distributed as iterations 25-50?

    d = (mean over chains of the statistic at t - its mean over 25-50) / its SD over
    25-50; with k chains at t its Monte-Carlo SE is about 1/sqrt(k).
    """
    rows = []
    variables = dict.fromkeys(next(iter(traces.values()))["variable"])
    for variable in variables:
        for stat in ("mean", "sd"):
            arrays = np.concatenate([draws(tr, variable, stat) for tr in traces.values()])
            ref = arrays[:, REFERENCE[0] - 1 : REFERENCE[1]]
            spread = ref.std()
            for t in at:
                d = (arrays[:, t - 1].mean() - ref.mean()) / spread if spread > 0 else 0.0
                rows.append({"case": case, "variable": variable, "statistic": stat,
                             "iteration": t, "d": d, "chains": arrays.shape[0]})  # fmt: skip
    return pd.DataFrame(rows)


def lag_one(traces: dict[int, pd.DataFrame]) -> float:
    """Median lag-one autocorrelation of the traces over iterations 25-50."""
    values = []
    for trace in traces.values():
        for variable in dict.fromkeys(trace["variable"]):
            for stat in ("mean", "sd"):
                for chain in draws(trace, variable, stat)[:, REFERENCE[0] - 1 :]:
                    x = chain - chain.mean()
                    if (x * x).sum() > 0:
                        values.append((x[1:] * x[:-1]).sum() / (x * x).sum())
    return float(np.median(values))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def report(cases: list[str]) -> str:
    """The markdown of the results for ``cases`` (traces from the cache or imputed)."""
    lengths = [5, 10, 20, 2 * MIN_WINDOW, 50]
    traces = {case: {s: trace_of(case, s) for s in CASES[case][1]} for case in cases}
    table = pd.concat([verdicts(c, traces[c], lengths) for c in cases], ignore_index=True)
    out = [
        f"# Convergence warnings: false alarms before and after ({dt.date.today()})",
        "",
        f"`benchmarks/convergence.py`; m = {M}, maxit = {MAXIT}, in-process engine; machine "
        f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the "
        "end (times are not the point here). Reference verdict of a variable in a run: "
        f"R-hat (mean and SD traces) over iterations {REFERENCE[0]}-{REFERENCE[1]} "
        f"≤ {THRESHOLD}. Before: R-hat over iterations 1..maxit > {THRESHOLD} is "
        "'not converged' (the rule a run of that maxit applied to itself). After: "
        "`rhat_table` — R-hat over the second half, judged when that half has at least "
        f"`min_iterations(m)` = {MIN_WINDOW} iterations (m = {M}), else 'not judged'.",
        "",
        "## Variables the reference calls converged: how often each rule says 'not converged'",
        "",
        "| case | runs | variables | reference converged | maxit | before: false alarm |"
        " before: runs warned | after: judged | after: false alarm |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in [c for c in cases if CASES[c][2]]:
        rows = table[table["case"] == case]
        for t in lengths:
            at = rows[rows["maxit"] == t]
            ok = at[at["reference_converged"]]
            runs_warned = at.groupby("seed")["before_alarm"].any().mean()
            judged = (ok["after"] != "not judged").mean()
            false_after = (ok["after"] == "not converged").mean()
            out.append(
                f"| {case} | {at['seed'].nunique()} | {at['variable'].nunique()} | "
                f"{_pct(at['reference_converged'].mean())} | {t} | "
                f"{_pct(ok['before_alarm'].mean())} | {_pct(runs_warned)} | "
                f"{_pct(judged)} | {_pct(false_after)} |"
            )
    converged_cases = [c for c in cases if CASES[c][2]]
    if converged_cases:
        pooled = table[table["case"].isin(converged_cases) & table["reference_converged"]]
        out += ["", "Pooled over the converged cases (" + ", ".join(converged_cases) + "):", ""]
        out += ["| maxit | variable-runs | before: false alarm | after: judged |"
                " after: false alarm |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for t in lengths:
            at = pooled[pooled["maxit"] == t]
            n_false = int((at["after"] == "not converged").sum())
            out.append(
                f"| {t} | {len(at)} | {_pct(at['before_alarm'].mean())} | "
                f"{_pct((at['after'] != 'not judged').mean())} | "
                f"{_pct(n_false / len(at))} ({n_false}) |"
            )
    for case in [c for c in cases if not CASES[c][2]]:
        rows = table[table["case"] == case]
        out += [
            "",
            f"## A chain that has not converged ({case}): how often each rule fires",
            "",
            f"Reference verdict 'not converged' for {_pct(1 - rows['reference_converged'].mean())}"
            " of its variable-runs.",
            "",
            "| maxit | variable-runs | before: not converged | after: not converged |"
            " after: not judged | after: converged |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for t in lengths:
            at = rows[rows["maxit"] == t]
            share = at["after"].value_counts(normalize=True)
            out.append(
                f"| {t} | {len(at)} | {_pct(at['before_alarm'].mean())} | "
                + " | ".join(_pct(share.get(v, 0.0))
                             for v in ("not converged", "not judged", "converged")) + " |"
            )  # fmt: skip
    if converged_cases:
        before = {t: pooled.loc[pooled["maxit"] == t, "before_alarm"].mean() for t in (5, 10)}
        after = {t: (pooled.loc[pooled["maxit"] == t, "after"] == "not converged").mean()
                 for t in (2 * MIN_WINDOW, MAXIT)}  # fmt: skip
        out[2:2] = [
            f"**Summary.** False-alarm rate of the convergence warning on converged chains "
            f"(pooled, {len(pooled) // len(lengths)} variable-runs): before "
            f"{_pct(before[5])} at maxit = 5 and {_pct(before[10])} at maxit = 10; after, no "
            f"verdict below maxit = {2 * MIN_WINDOW} ('too few iterations to judge') and "
            f"{_pct(after[2 * MIN_WINDOW])} at maxit = {2 * MIN_WINDOW}, "
            f"{_pct(after[MAXIT])} at maxit = {MAXIT}.",
            "",
        ]
    widths = [5, 10, 16, MIN_WINDOW]
    windows = pd.concat([stationary_windows(c, traces[c], widths) for c in converged_cases])
    out += [
        "",
        "## Calibration: R-hat > 1.1 on stationary windows of w iterations",
        "",
        "Windows cut from iterations 11-50 of the reference-converged variables (MICE "
        f"traces, m = {M}), against independent normal draws (2,000 simulated variables; "
        "MC SE at most 1.1 points): the share that a window of this length falsely calls "
        "not converged. Median lag-one autocorrelation of the traces (iterations 25-50): "
        + ", ".join(f"{c} {lag_one(traces[c]):.2f}" for c in cases) + ".",
        "",
        "| w (iterations per chain judged) | MICE windows | MICE: R-hat > 1.1 |"
        " independent draws: R-hat > 1.1 |",
        "| --- | --- | --- | --- |",
    ]
    for w in widths:
        at = windows[windows["width"] == w]
        out.append(f"| {w} | {len(at)} | {_pct(at['alarm'].mean())} | "
                   f"{_pct(iid_false_alarm(M, w))} |")  # fmt: skip
    at_iterations = [1, 2, 3, 5, 10]
    moved = pd.concat([drift(c, traces[c], at_iterations) for c in cases])
    out += [
        "",
        "## Are the chains there early? Iteration t against iterations 25-50",
        "",
        "d = (mean over all seeds' chains of the traced statistic at iteration t − its "
        "mean over 25-50) / its SD over 25-50; SE about 1/sqrt(chains). Largest |d| over "
        "the case's variables and both statistics:",
        "",
        "| case | chains | " + " | ".join(f"t = {t}" for t in at_iterations) + " |",
        "| --- | --- | " + " | ".join("---" for _ in at_iterations) + " |",
    ]
    for case in cases:
        rows = moved[moved["case"] == case]
        worst = rows.assign(a=rows["d"].abs()).groupby("iteration")["a"].max()
        out.append(f"| {case} | {rows['chains'].iloc[0]} | "
                   + " | ".join(f"{worst[t]:.2f}" for t in at_iterations) + " |")  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of cases")
    parser.add_argument("--output", default=str(HERE / "results" /
                                                 f"convergence_{dt.date.today()}.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    text = report(args.cases.split(","))
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
