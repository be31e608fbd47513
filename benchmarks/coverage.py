"""Coverage study: do pooled 95% intervals cover the true coefficients 95% of the time?

R replications of the reference MAR workload (``sparkmice.datasets.make_mar``, the same
draws as ``/work/shared/bench/gen_mar.py``), each a new data set ``make_mar(n, seed=rep)``:

* MICE: ``sparkmice.mice(df, m, maxit, seed=rep)`` (in-process engine, default methods:
  pmm for bp/chol/bmi/lact, logreg for smoke, polyreg for diet), then
  ``fit_imputations(long, FORMULA, family="binomial")`` and ``pool`` (Rubin's rules,
  Barnard-Rubin df);
* CCA: the same model on the complete cases (``fit_complete_cases``);
* mean: missing predictors set to their mean / most frequent level (``fit_mean_imputed``);
* full: the same model on the data before the values were deleted
  (``make_mar(n, seed=rep, amputate=False)``): what the analysis gives with no missing data,
  the yardstick for MICE's intervals (it is not affected by the imputation at all).

Per method and term it reports the true value, the mean estimate, bias, bias/SE (bias over
the mean standard error), RMSE, the empirical SD of the estimates, the mean SE, the mean
width of the 95% interval, its coverage and the Monte-Carlo SE of that coverage,
sqrt(c(1-c)/R). At R = 200 a coverage within 95 ± 2·sqrt(0.95·0.05/200) = 95 ± 3.1
points is consistent with nominal coverage.

    python benchmarks/coverage.py --reps 10          # quick check (~1 min on 2 cores)
    nice -n 15 python benchmarks/coverage.py         # 200 replications, resumable

Per-replication rows are appended to ``<results>/coverage_reps.csv`` every ``--save-every``
replications (default 10), and the summary (``coverage.csv``, ``coverage.md``) is rewritten
at the same time, so a long run can be inspected while it runs and resumed after it stops:
replications already in ``coverage_reps.csv`` with the same settings are not run again
(``--fresh`` starts over).

``--polyreg-draw improper`` imputes diet from the fitted multinomial coefficients without
drawing them, as R mice's polyreg does (mice issue 661), and writes to
``results/improper_polyreg/``: a comparison that shows what the proper draw contributes.
``--polyreg-draw hierarchical`` draws diet's coefficients under polyreg's hierarchical slope
prior (``polyreg_prior="hierarchical"``) and writes to ``results/hierarchical_polyreg/``;
``proper`` is the draw without prior (``polyreg_prior="none"``).
"""

from __future__ import annotations

import os

# One BLAS thread per worker process: the workers are the parallelism (set before numpy).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FORMULA = "y ~ age + bp + smoke + C(diet)"
FAMILY = "binomial"
METHODS = ("mice", "cca", "mean", "full")
# A replication is complete when these are saved; "full" is cheap and filled in afterwards
# for replications saved before it was added (see backfill_full).
REQUIRED = ("mice", "cca", "mean")
NOMINAL = 0.95
REPS_FILE = "coverage_reps.csv"
SUMMARY_CSV = "coverage.csv"
SUMMARY_MD = "coverage.md"
SETTINGS = ("n", "m", "maxit")
REP_COLUMNS = (
    "rep", "n", "m", "maxit", "method", "term", "estimate", "std_error", "conf_low",
    "conf_high", "df", "fmi", "seconds", "commit",
)  # fmt: skip


# --------------------------------------------------------------------------- one replication

@dataclass(frozen=True)
class Task:
    rep: int
    n: int
    m: int
    maxit: int
    commit: str
    polyreg_draw: str = "proper"


def use_improper_polyreg() -> None:
    """Make polyreg impute from beta-hat without drawing the parameters, as R mice's
    mice.impute.polyreg does (mice issue 661): for comparison only, in this process."""
    from sparkmice.kernels import polyreg

    def no_draw(f: Any, p: int, rng: np.random.Generator) -> np.ndarray:
        return f.coef.reshape((p, len(f.coef) // p), order="F")

    polyreg.draw = no_draw


def one_replication(task: Task) -> tuple[int, list[dict[str, Any]], str]:
    """Run one replication: data, MICE + pool, CCA, mean, full. Returns (rep, rows, error)."""
    rep, n, m, maxit, commit = task.rep, task.n, task.m, task.maxit, task.commit
    try:
        import sparkmice
        from sparkmice.datasets import make_mar

        logging.disable(logging.INFO)  # one line per sweep and chain is too much here
        if task.polyreg_draw == "improper":
            use_improper_polyreg()
        df = make_mar(n, seed=rep)
        t0 = time.perf_counter()
        prior = "hierarchical" if task.polyreg_draw == "hierarchical" else "none"
        imp = sparkmice.mice(df, m=m, maxit=maxit, seed=rep, engine="inprocess",
                             polyreg_prior=prior)
        fits = sparkmice.fit_imputations(imp.complete("long"), FORMULA, family=FAMILY)
        pooled = sparkmice.pool(fits)
        seconds = time.perf_counter() - t0
        tables = {"mice": (pooled, seconds)}
        t0 = time.perf_counter()
        tables["cca"] = (sparkmice.fit_complete_cases(df, FORMULA, family=FAMILY),
                         time.perf_counter() - t0)
        t0 = time.perf_counter()
        tables["mean"] = (sparkmice.fit_mean_imputed(df, FORMULA, family=FAMILY),
                          time.perf_counter() - t0)
        rows = table_rows(tables, rep, n, m, maxit) + full_rows(rep, n, m, maxit)
        return rep, [{**row, "commit": commit} for row in rows], ""
    except Exception:  # noqa: BLE001 - record and go on; the summary says how many failed
        return rep, [], traceback.format_exc()


def table_rows(tables: dict[str, tuple[pd.DataFrame, float]], rep: int, n: int, m: int,
               maxit: int) -> list[dict[str, Any]]:
    """Per-replication rows from pooled / single-fit tables keyed by method."""
    rows = []
    for method, (table, secs) in tables.items():
        for r in table.itertuples(index=False):
            rows.append({
                "rep": rep, "n": n, "m": m if method == "mice" else 1, "maxit": maxit,
                "method": method, "term": r.term, "estimate": r.estimate,
                "std_error": r.std_error, "conf_low": r.conf_low,
                "conf_high": r.conf_high, "df": r.df,
                "fmi": r.fmi if method == "mice" else np.nan, "seconds": secs,
            })  # fmt: skip
    return rows


def full_rows(rep: int, n: int, m: int, maxit: int, commit: str = "") -> list[dict[str, Any]]:
    """The model on the complete data before deletion (same draws as make_mar(n, rep))."""
    import sparkmice
    from sparkmice.datasets import make_mar

    t0 = time.perf_counter()
    complete = make_mar(n, seed=rep, amputate=False)
    table = sparkmice.fit_complete_cases(complete, FORMULA, family=FAMILY)
    rows = table_rows({"full": (table, time.perf_counter() - t0)}, rep, n, m, maxit)
    return [{**row, "commit": commit} for row in rows]


def backfill_full(results: Path, n: int, m: int, maxit: int, commit: str) -> int:
    """Add the "full" rows to saved replications that lack them (older runs); returns how many."""
    done = load_done(results / REPS_FILE, n, m, maxit)
    missing = sorted(set(done["rep"]) - set(done.loc[done["method"] == "full", "rep"]))
    if missing:
        save_rows(results, [row for r in missing
                            for row in full_rows(int(r), n, m, maxit, commit)])
    return len(missing)


# --------------------------------------------------------------------------- summary

def summarise(reps: pd.DataFrame, truth: dict[str, float]) -> pd.DataFrame:
    """Per method and term: truth, mean estimate, bias, bias/SE, RMSE, widths, coverage."""
    out = []
    for (method, term), g in reps.groupby(["method", "term"], sort=False):
        true = truth[term]
        est = g["estimate"].to_numpy(float)
        se = g["std_error"].to_numpy(float)
        covered = (g["conf_low"] <= true) & (true <= g["conf_high"])
        r = len(g)
        bias = est.mean() - true
        cov = covered.mean()
        out.append({
            "method": method, "term": term, "reps": r, "true": true,
            "mean_estimate": est.mean(), "bias": bias, "bias_over_se": bias / se.mean(),
            "rmse": float(np.sqrt(np.mean((est - true) ** 2))),
            "emp_sd": est.std(ddof=1) if r > 1 else np.nan, "mean_se": se.mean(),
            "mean_ci_width": (g["conf_high"] - g["conf_low"]).mean(),
            "coverage": cov, "coverage_mcse": np.sqrt(cov * (1 - cov) / r),
            "mean_fmi": g["fmi"].mean(),
        })  # fmt: skip
    table = pd.DataFrame(out)
    order = {t: i for i, t in enumerate(truth)}
    table["_m"] = table["method"].map({k: i for i, k in enumerate(METHODS)})
    table["_t"] = table["term"].map(order)
    return table.sort_values(["_m", "_t"]).drop(columns=["_m", "_t"]).reset_index(drop=True)


def nominal_band(reps: int) -> float:
    """Half-width (points) of the 2-MCSE band around 95% coverage for this many reps."""
    return 100 * 2 * np.sqrt(NOMINAL * (1 - NOMINAL) / reps)


def markdown(table: pd.DataFrame, meta: dict[str, Any]) -> str:
    """The summary as Markdown: settings, then one table per method."""
    improper = {"improper": "; polyreg WITHOUT its parameter draw, as R mice",
                "hierarchical": "; polyreg with its hierarchical slope prior"
                }.get(meta["polyreg"], "")  # fmt: skip
    lines = [
        "# Coverage study",
        "",
        f"Model `{FORMULA}` ({FAMILY}); data `make_mar(n={meta['n']}, seed=rep)`; "
        f"MICE m = {meta['m']}, maxit = {meta['maxit']} (in-process engine, default "
        f"methods{improper}), pooled by Rubin's rules; CCA, mean imputation and the data "
        "before deletion (full) fitted once per data set. "
        f"{meta['done']} of {meta['target']} replications done"
        + (f", {meta['failed']} failed" if meta["failed"] else "") + f" ({meta['when']}). "
        f"sparkmice checkout: {meta['commits']}.",
        "",
    ]
    for method, g in table.groupby("method", sort=False):
        r = int(g["reps"].min())
        band = nominal_band(r)
        fmi = bool(g["mean_fmi"].notna().any())
        lines += [
            f"## {method} ({r} replications; nominal band 95 ± {band:.1f} points)",
            "",
            "| term | true | mean est. | bias | bias/SE | RMSE | emp. SD | mean SE "
            "| CI width | coverage % | MCSE | cov. − 95 |" + (" FMI |" if fmi else ""),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            + (" ---: |" if fmi else ""),
        ]
        for r_ in g.itertuples(index=False):
            diff = 100 * (r_.coverage - NOMINAL)
            mark = "" if abs(diff) <= band else "**"
            lines.append(
                f"| `{r_.term}` | {r_.true:g} | {r_.mean_estimate:.4g} | {r_.bias:+.2g} "
                f"| {r_.bias_over_se:+.2f} | {r_.rmse:.3g} | {r_.emp_sd:.3g} "
                f"| {r_.mean_se:.3g} | {r_.mean_ci_width:.3g} | {100 * r_.coverage:.1f} "
                f"| {100 * r_.coverage_mcse:.1f} | {mark}{diff:+.1f}{mark} |"
                + (f" {r_.mean_fmi:.2f} |" if fmi else "")
            )
        lines.append("")
    lines += [
        "bias/SE: bias divided by the mean standard error. emp. SD: standard deviation of the "
        "estimates over replications (a well-calibrated SE has mean SE ≈ emp. SD). MCSE: "
        "Monte-Carlo standard error of the coverage, sqrt(c(1-c)/R). **bold**: coverage "
        "outside 95 ± 2·sqrt(0.95·0.05/R). FMI: mean fraction of missing information. "
        "Intervals: Student t with Barnard-Rubin df for MICE, normal for the single fits "
        "(as summary.glm).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver

def git_commit() -> str:
    """The checkout's commit (``git describe --always --dirty``), or "unknown"."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def upgrade_reps_file(path: Path) -> None:
    """Give a per-replication file from an older version of this script the new columns."""
    if not path.exists():
        return
    done = pd.read_csv(path)
    missing = [c for c in REP_COLUMNS if c not in done.columns]
    if missing:
        done.assign(**{c: "unknown" for c in missing})[list(REP_COLUMNS)].to_csv(path, index=False)


def load_done(path: Path, n: int, m: int, maxit: int) -> pd.DataFrame:
    """Replications already saved with the same settings."""
    if not path.exists():
        return pd.DataFrame(columns=list(REP_COLUMNS))
    done = pd.read_csv(path, dtype={"commit": str})
    same = (done["n"] == n) & (done["maxit"] == maxit) & (
        ((done["method"] == "mice") & (done["m"] == m)) | (done["method"] != "mice"))
    # A run with another m in the same directory saves the single fits again: keep one copy.
    done = done[same].drop_duplicates(["rep", "method", "term"], keep="first")
    # A replication counts only if all its required methods are there.
    have = done[done["method"].isin(REQUIRED)].groupby("rep")["method"].nunique()
    return done[done["rep"].isin(have[have == len(REQUIRED)].index)]


def save_rows(results: Path, rows: list[dict[str, Any]]) -> None:
    """Append finished replications' rows to the per-replication file."""
    path = results / REPS_FILE
    frame = pd.DataFrame(rows, columns=list(REP_COLUMNS))
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


def write_summary(results: Path, wanted: list[int], failed: int,
                  args: argparse.Namespace) -> pd.DataFrame:
    """Summary of the wanted replications saved so far: coverage.csv and coverage.md."""
    from sparkmice.datasets import TRUE_COEFFICIENTS

    reps_df = load_done(results / REPS_FILE, args.n, args.m, args.maxit)
    reps_df = reps_df[reps_df["rep"].isin(wanted)]
    table = summarise(reps_df, TRUE_COEFFICIENTS)
    table.to_csv(results / SUMMARY_CSV, index=False)
    mice_reps = reps_df[reps_df["method"] == "mice"].drop_duplicates("rep")
    commits = mice_reps["commit"].fillna("unknown").value_counts()
    meta = {
        "n": args.n, "m": args.m, "maxit": args.maxit, "done": reps_df["rep"].nunique(),
        "polyreg": args.polyreg_draw,
        "commits": ", ".join(f"{c} ({k} reps)" for c, k in commits.items()),
        "target": len(wanted), "failed": failed,
        "when": f"{dt.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
                f"{os.cpu_count()} CPUs, {args.workers} workers",
    }  # fmt: skip
    (results / SUMMARY_MD).write_text(markdown(table, meta))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="replications (default 200)")
    parser.add_argument("--first", type=int, default=1, help="seed of the first replication")
    parser.add_argument("--n", type=int, default=5000, help="rows per data set (default 5000)")
    parser.add_argument("--m", type=int, default=20, help="imputations (default 20)")
    parser.add_argument("--maxit", type=int, default=10, help="iterations (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="processes, at most 2")
    parser.add_argument("--save-every", type=int, default=10,
                        help="save per-replication rows and the summary every k reps")
    parser.add_argument("--results", type=Path, default=None,
                        help="output directory (default benchmarks/results, or "
                             "benchmarks/results/improper_polyreg with --polyreg-draw improper)")
    parser.add_argument("--polyreg-draw", choices=("proper", "improper", "hierarchical"),
                        default="proper",
                        help="improper: impute diet from beta-hat without a parameter draw, "
                             "as R mice does (for comparison; default proper)")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore replications saved by an earlier run")
    args = parser.parse_args(argv)
    if args.results is None:
        args.results = HERE / "results"
        if args.polyreg_draw != "proper":
            args.results = args.results / f"{args.polyreg_draw}_polyreg"
    if args.workers < 1 or args.workers > 2:
        parser.error("--workers must be 1 or 2 (the machine is shared)")
    if args.reps < 2:
        parser.error("--reps must be at least 2")
    args.results.mkdir(parents=True, exist_ok=True)

    wanted = list(range(args.first, args.first + args.reps))
    if args.fresh and (args.results / REPS_FILE).exists():
        (args.results / REPS_FILE).rename(args.results / (REPS_FILE + ".old"))
    upgrade_reps_file(args.results / REPS_FILE)
    commit = git_commit()
    done = load_done(args.results / REPS_FILE, args.n, args.m, args.maxit)
    todo = [r for r in wanted if r not in set(done["rep"])]
    added = backfill_full(args.results, args.n, args.m, args.maxit, commit)
    if added:
        print(f"coverage: added the before-deletion fit to {added} saved replications")
    print(f"coverage: {len(wanted)} replications wanted, {len(wanted) - len(todo)} already "
          f"saved, {len(todo)} to run (n={args.n}, m={args.m}, maxit={args.maxit}, "
          f"{args.workers} workers)", flush=True)

    failed: list[int] = []
    pending: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    tasks = [Task(r, args.n, args.m, args.maxit, commit, args.polyreg_draw) for r in todo]
    finished = 0
    if tasks:
        ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked BLAS state
        with ctx.Pool(processes=args.workers, maxtasksperchild=50) as pool:
            for rep, rows, error in pool.imap_unordered(one_replication, tasks):
                finished += 1
                if error:
                    failed.append(rep)
                    print(f"rep {rep}: FAILED\n{error}", file=sys.stderr, flush=True)
                else:
                    pending.extend(rows)
                if finished % args.save_every and finished != len(tasks):
                    continue
                if pending:
                    save_rows(args.results, pending)
                    pending = []
                if (args.results / REPS_FILE).exists():
                    table = write_summary(args.results, wanted, len(failed), args)
                    cov = table[table["method"] == "mice"].set_index("term")["coverage"]
                    elapsed = time.perf_counter() - t_start
                    eta = elapsed / finished * (len(tasks) - finished)
                    print(f"[{dt.datetime.now():%H:%M:%S}] {finished}/{len(tasks)} run, "
                          f"{elapsed:.0f} s, ~{eta:.0f} s left; MICE coverage: "
                          + ", ".join(f"{t} {100 * c:.0f}" for t, c in cov.items()),
                          flush=True)
    if not (args.results / REPS_FILE).exists():
        print("coverage: no replication succeeded", file=sys.stderr)
        return 1
    write_summary(args.results, wanted, len(failed), args)
    print((args.results / SUMMARY_MD).read_text())
    if failed:
        print(f"coverage: {len(failed)} replications failed: {sorted(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
