"""Trees: cart and rf against pmm on a non-linear MAR case, and a sweep's time on the
reference workload.

``nonlinear``: R replications of x ~ U(-2, 2), z ~ N(0, 1), y = x^2 + z + N(0, 0.5^2), n
rows, y missing at random given x (P = logistic(-0.5 + x), about 40%). Each replication
imputes y with pmm (main effects of x and z only: the imputation model leaves out x^2),
cart and rf (``sparkmice.mice``, in-process, m imputations, maxit iterations), fits
``y ~ x + I(x**2) + z`` on every imputation and pools by Rubin's rules. Per method and
term: the mean estimate, bias, its Monte-Carlo SE (sd / sqrt(R)), the estimates' SD over
replications, the mean pooled SE, the coverage of the 95% interval and its Monte-Carlo SE
sqrt(c(1-c)/R), the mean interval width. With ``--tools sparkmice,R`` R mice runs the same
replications: each data set is written to ``benchmarks/data/nonlinear_n<n>/rep_<r>.csv``
and ``peers/trees_nonlinear.R`` imputes it with R mice's own methods (defaults, seed r).

``sweep``: the reference workload (``make_mar(rows, seed=1)``, the data of
``benchmarks/run.py``) with bp, chol, bmi and lact on pmm (the default) or on cart/rf,
in-process, m = 1, ``--maxit`` sweeps: seconds per sweep (from ``imp.timings``; the median
of the sweeps after the first), with the machine's load average (``os.getloadavg``) before
and after each run, each run in its own child process.

    nice -n 10 python benchmarks/trees.py nonlinear --reps 100 --tools sparkmice,R
    python benchmarks/trees.py table --reps A_nonlinear_reps.csv B_nonlinear_reps.csv@NOTE
    nice -n 10 python benchmarks/trees.py sweep --rows 1e5,1e6 --methods pmm,cart,rf

Both append a section to ``benchmarks/results/trees_<date>.md`` (and a CSV beside it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

FORMULA = "y ~ x + I(x**2) + z"
TRUTH = {"Intercept": 0.0, "x": 0.0, "I(x ** 2)": 1.0, "z": 1.0}
NUMERIC = ["bp", "chol", "bmi", "lact"]


def one_replication(rep: int, n: int, m: int, maxit: int, methods: list[str]) -> list[dict]:
    import sparkmice
    from sparkmice.datasets import make_nonlinear

    data = make_nonlinear(n, rep)
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        imp = sparkmice.mice(data, m=m, maxit=maxit, seed=rep, method={"y": method})
        seconds = time.perf_counter() - t0
        fits = sparkmice.fit_imputations(imp.complete("long"), FORMULA, family="gaussian")
        pooled = sparkmice.pool(fits)
        for _, row in pooled.iterrows():
            truth = TRUTH[row["term"]]
            rows.append(
                {
                    "tool": "sparkmice", "rep": rep, "method": method, "term": row["term"],
                    "truth": truth, "estimate": row["estimate"], "std_error": row["std_error"],
                    "conf_low": row["conf_low"], "conf_high": row["conf_high"],
                    "covered": bool(row["conf_low"] <= truth <= row["conf_high"]),
                    "seconds": seconds,
                }
            )  # fmt: skip
    return rows


R_TERMS = {"(Intercept)": "Intercept", "I(x^2)": "I(x ** 2)"}  # R's names -> patsy's


def r_replications(
    reps: int, n: int, m: int, maxit: int, methods: list[str], reuse: bool = False
) -> pd.DataFrame:
    """R mice on the same replications: write each data set as CSV, run
    ``peers/trees_nonlinear.R`` over them, and return its rows in ``one_replication``'s form.
    With `reuse`, R's rows of an earlier run with the same reps, m and methods are read
    back instead (R's results depend on nothing of sparkmice's)."""
    from sparkmice.datasets import make_nonlinear, write_frame

    data_dir = HERE / "data" / f"nonlinear_n{n}"
    out = data_dir / f"r_mice_reps{reps}_m{m}_maxit{maxit}_{'-'.join(methods)}.csv"
    if not (reuse and out.exists()):
        for old in data_dir.glob("rep_*.csv"):
            old.unlink()
        for rep in range(reps):
            write_frame(make_nonlinear(n, rep), data_dir / f"rep_{rep}.csv")
        script = HERE / "peers" / "trees_nonlinear.R"
        subprocess.run(
            ["Rscript", str(script), str(data_dir), str(m), str(maxit), ",".join(methods),
             str(out)],
            check=True,
        )  # fmt: skip
    rows = pd.read_csv(out)
    rows["term"] = rows["term"].replace(R_TERMS)
    rows["truth"] = rows["term"].map(TRUTH)
    rows["covered"] = (rows["conf_low"] <= rows["truth"]) & (rows["truth"] <= rows["conf_high"])
    rows["tool"] = "R mice " + rows["mice"].astype(str)
    return rows


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (tool, method, term), g in reps.groupby(["tool", "method", "term"], sort=False):
        r = len(g)
        c = g["covered"].mean()
        bias = g["estimate"].mean() - g["truth"].iloc[0]
        sd = g["estimate"].std(ddof=1)
        out.append(
            {
                "tool": tool, "method": method, "term": term, "truth": g["truth"].iloc[0],
                "mean": g["estimate"].mean(), "bias": bias, "bias_mc_se": sd / np.sqrt(r),
                "sd": sd, "mean_se": g["std_error"].mean(),
                "coverage": 100 * c, "coverage_mc_se": 100 * np.sqrt(c * (1 - c) / r),
                "width": (g["conf_high"] - g["conf_low"]).mean(),
                "reps": r, "seconds": g["seconds"].mean(),
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.node()}"


def report(path: Path, title: str, body: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n## {title}\n\n{body}\n")
    print(f"\n## {title}\n\n{body}")


def case_description(reps: int, n: int, m: int, maxit: int) -> str:
    """The non-linear case in one sentence, with the table's legend."""
    return (
        f"{reps} replications, n = {n}, m = {m}, maxit = {maxit}; "
        f"y = x^2 + z + N(0, 0.5^2), x ~ U(-2, 2), z ~ N(0, 1), y MAR on x "
        f"(P(missing) = logistic(-0.5 + x)); analysis `{FORMULA}`. Machine: {machine()}. "
        "MC SE: Monte-Carlo standard error over the replications; SD: the estimates' "
        "standard deviation over replications; SE: the pooled standard error (its mean); "
        "width: the 95% interval's mean width; s per run: one `mice` call's seconds."
    )


def nonlinear_table(reps: pd.DataFrame) -> list[str]:
    """Markdown rows of ``summarise(reps)``."""
    lines = [
        "| tool | method | term | truth | mean | bias (MC SE) | SD | mean SE | SE/SD "
        "| coverage % (MC SE) | width | s per run |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for _, r in summarise(reps).iterrows():
        lines.append(
            f"| {r['tool']} | {r['method']} | {r['term']} | {r['truth']:g} | {r['mean']:.3f} "
            f"| {r['bias']:+.3f} ({r['bias_mc_se']:.3f}) | {r['sd']:.3f} | {r['mean_se']:.3f} "
            f"| {r['mean_se'] / r['sd']:.2f} | {r['coverage']:.1f} ({r['coverage_mc_se']:.1f}) "
            f"| {r['width']:.3f} | {r['seconds']:.2f} |"
        )
    return lines


def run_nonlinear(args: argparse.Namespace) -> None:
    methods = args.methods.split(",")
    tools = args.tools.split(",")
    rows: list[dict] = []
    load_before = os.getloadavg()
    if "sparkmice" in tools:
        for rep in range(args.reps):
            rows += one_replication(rep, args.n, args.m, args.maxit, methods)
    reps = pd.DataFrame(rows)
    if "R" in tools:
        r_rows = r_replications(args.reps, args.n, args.m, args.maxit, methods, args.reuse_r)
        reps = pd.concat([reps, r_rows[[*reps.columns]] if len(reps) else r_rows])
    csv = args.out.with_name(args.out.stem + "_nonlinear_reps.csv")
    reps.to_csv(csv, index=False, mode="a", header=not csv.exists())
    load = f"Load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after."
    lines = [case_description(args.reps, args.n, args.m, args.maxit) + " " + load, ""]
    report(
        args.out,
        f"Non-linear MAR case: {', '.join(methods)} ({', '.join(tools)})",
        "\n".join(lines + nonlinear_table(reps)),
    )


def read_reps(spec: str) -> pd.DataFrame:
    """A replications CSV of ``nonlinear``; ``FILE@NOTE`` labels its sparkmice rows
    ``sparkmice (NOTE)``."""
    path, _, note = spec.partition("@")
    reps = pd.read_csv(path)
    if note:
        reps.loc[reps["tool"] == "sparkmice", "tool"] = f"sparkmice ({note})"
    return reps


def paired_differences(reps: pd.DataFrame, reference: str) -> list[str]:
    """Markdown rows: each other tool minus `reference` on the same replications (paired),
    per method and term: the mean difference of the estimates, of the pooled SEs and of
    coverage, each with its Monte-Carlo SE (the SD of the per-replication differences over
    sqrt(R))."""
    keys = ["rep", "method", "term"]
    ref = reps[reps["tool"] == reference].set_index(keys)
    lines = [
        f"| tool − {reference} | method | term | estimate (MC SE) | SE (MC SE) "
        "| coverage points (MC SE) | reps |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for tool, g in reps[reps["tool"] != reference].groupby("tool", sort=False):
        both = g.set_index(keys).join(ref, rsuffix="_ref", how="inner")
        for (method, term), h in both.groupby(level=["method", "term"], sort=False):
            cells = []
            for col, scale in (("estimate", 1), ("std_error", 1), ("covered", 100)):
                d = scale * (h[col].astype(float) - h[col + "_ref"].astype(float))
                cells.append(f"{d.mean():+.3f} ({d.std(ddof=1) / np.sqrt(len(d)):.3f})")
            lines.append(f"| {tool} | {method} | {term} | {' | '.join(cells)} | {len(h)} |")
    return lines


def run_table(args: argparse.Namespace) -> None:
    """One table from the replications of earlier runs (e.g. R's and sparkmice's)."""
    reps = pd.concat([read_reps(spec) for spec in args.reps])
    count = reps.groupby(["tool", "method", "term"]).size().min()
    sources = ", ".join(f"`{spec}`" for spec in args.reps)
    lines = [case_description(count, args.n, args.m, args.maxit) + f" From {sources}.", ""]
    report(
        args.out,
        "Non-linear MAR case: sparkmice and R mice",
        "\n".join(lines + nonlinear_table(reps)),
    )
    reference = next((t for t in reps["tool"].unique() if t.startswith("R mice")), None)
    if reference is not None:
        report(
            args.out,
            f"Non-linear MAR case: paired differences from {reference}",
            "\n".join(paired_differences(reps, reference)),
        )


def sweep_child(rows: int, method: str, maxit: int) -> dict:
    """One timed run (in a child process): seconds per sweep."""
    import sparkmice
    from sparkmice.datasets import make_mar

    logging.getLogger("sparkmice").setLevel(logging.WARNING)
    data = make_mar(rows, seed=1)
    chosen = {} if method == "pmm" else dict.fromkeys(NUMERIC, method)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    imp = sparkmice.mice(data, m=1, maxit=maxit, seed=1, method=chosen, engine="inprocess")
    total = time.perf_counter() - t0
    sweeps = imp.timings["seconds"].to_numpy()
    return {
        "rows": rows, "method": method, "total": total, "sweeps": sweeps.tolist(),
        "sweep": float(np.median(sweeps[1:] if len(sweeps) > 1 else sweeps)),
        "load_before": load, "load_after": os.getloadavg()[0],
    }  # fmt: skip


def run_sweep(args: argparse.Namespace) -> None:
    results = []
    for rows in [int(float(r)) for r in args.rows.split(",")]:
        for method in args.methods.split(","):
            for _ in range(args.repeat):
                child = subprocess.run(
                    [sys.executable, __file__, "sweep-child", str(rows), method, str(args.maxit)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                result = json.loads(child.stdout.strip().splitlines()[-1])
                print(result, flush=True)
                results.append(result)
    table = pd.DataFrame(results)
    csv = args.out.with_name(args.out.stem + "_sweep.csv")
    table.to_csv(csv, index=False, mode="a", header=not csv.exists())
    lines = [
        f"Reference workload (`make_mar(rows, seed=1)`), in-process engine, m = 1, maxit = "
        f"{args.maxit}; bp, chol, bmi, lact on the method (pmm: the defaults; smoke logreg "
        f"and diet polyreg in every run). Seconds per sweep: median of sweeps 2..{args.maxit} "
        f"per run, then the median over the method's runs. Machine: {machine()}; the "
        "load average (1 min) at each run's start and end is in the table: a loaded shared "
        "machine, so compare the ratio measured in the same session.",
        "",
        "| rows | method | runs | s per sweep | × pmm | load (start–end) |",
        "| ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for rows, g in table.groupby("rows"):
        pmm = g.loc[g["method"] == "pmm", "sweep"].median()
        for method, h in g.groupby("method", sort=False):
            s = h["sweep"].median()
            load = f"{h['load_before'].min():.1f}–{h['load_after'].max():.1f}"
            lines.append(f"| {rows:,} | {method} | {len(h)} | {s:.2f} | {s / pmm:.2f} | {load} |")
    report(args.out, "Sweep time: cart and rf against pmm", "\n".join(lines))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "sweep-child":
        rows, method, maxit = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        print(json.dumps(sweep_child(rows, method, maxit)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    default_out = HERE / "results" / f"trees_{dt.date.today().isoformat()}.md"
    nl = sub.add_parser("nonlinear")
    nl.add_argument("--reps", type=int, default=100)
    nl.add_argument("--n", type=int, default=1000)
    nl.add_argument("--m", type=int, default=5)
    nl.add_argument("--maxit", type=int, default=5)
    nl.add_argument("--methods", default="pmm,cart,rf")
    nl.add_argument("--tools", default="sparkmice", help="sparkmice and/or R (R mice)")
    nl.add_argument("--reuse-r", action="store_true", help="R's rows of an earlier run")
    tb = sub.add_parser("table", help="one table from earlier runs' replication CSVs")
    tb.add_argument("--reps", nargs="+", required=True, help="CSV files (FILE@NOTE)")
    tb.add_argument("--n", type=int, default=1000)
    tb.add_argument("--m", type=int, default=5)
    tb.add_argument("--maxit", type=int, default=5)
    sw = sub.add_parser("sweep")
    sw.add_argument("--rows", default="1e5")
    sw.add_argument("--methods", default="pmm,cart")
    sw.add_argument("--maxit", type=int, default=3)
    sw.add_argument("--repeat", type=int, default=1)
    for p in (nl, tb, sw):
        p.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    logging.getLogger("sparkmice").setLevel(logging.WARNING)
    {"nonlinear": run_nonlinear, "table": run_table, "sweep": run_sweep}[args.command](args)


if __name__ == "__main__":
    main()
