"""`sparkmice pool`: the reducer job. Fit the analysis model on every imputation in a
partitioned Parquet table and pool by Rubin's rules; optionally add complete-case and
mean-imputation baselines of the original data.

    sparkmice pool --imputed DIR --formula "y ~ age + C(diet)" --family binomial \\
        --output pooled.csv [--compare cca,mean --original data.csv] [--dfcom N]

It pools whatever imputations DIR holds (the fan-in of a fan-out of chains) and says how
many it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sparkmice.analysis import fit_complete_cases, fit_imputations, fit_mean_imputed
from sparkmice.analysis.design import IMPUTATION, check_family
from sparkmice.cli import error_exit
from sparkmice.congeniality import warn_congeniality
from sparkmice.kernels.glm import FAMILIES
from sparkmice.pooling.rubin import pool
from sparkmice.session import get_spark

BASELINES = {"cca": fit_complete_cases, "mean": fit_mean_imputed}
OUTPUT_FORMATS = (".csv", ".parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sparkmice pool` (also used by jobs/pool.py)."""
    parser.add_argument(
        "--imputed",
        required=True,
        metavar="DIR",
        help="long table of imputations: Parquet partitioned by _imputation",
    )
    parser.add_argument("--formula", required=True, help='e.g. "y ~ age + bp + C(diet)"')
    parser.add_argument(
        "--family", default="gaussian", help=f"one of {', '.join(FAMILIES)} (default gaussian)"
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="pooled table, written as CSV or Parquet by extension",
    )
    parser.add_argument(
        "--compare",
        default="",
        metavar="cca,mean",
        help="baselines fitted on --original, added as rows with a method column",
    )
    parser.add_argument(
        "--original", metavar="PATH", help="original incomplete data (CSV with header, or Parquet)"
    )
    parser.add_argument("--dfcom", type=float, default=None,
                        help="complete-data df (default n - p; inf: Rubin 1987)")  # fmt: skip


def _read_table(spark: Any, path: str) -> Any:
    if path.endswith(".csv"):
        return spark.read.csv(path, header=True, inferSchema=True, nullValue="NA")
    return spark.read.parquet(path)


def _check_options(compare: list[str], original: str | None, output: str, family: str) -> None:
    check_family(family)
    unknown = [c for c in compare if c not in BASELINES]
    if unknown:
        raise ValueError(f"--compare {unknown} unknown; use a comma list of {list(BASELINES)}")
    if compare and not original:
        raise ValueError("--compare needs --original PATH (the incomplete input data)")
    if Path(output).suffix not in OUTPUT_FORMATS:
        raise ValueError(f"--output {output!r}: end the name in one of {OUTPUT_FORMATS}")


def pool_directory(
    spark: Any,
    imputed: str,
    formula: str,
    family: str = "gaussian",
    dfcom: float | None = None,
    compare: list[str] | None = None,
    original: str | None = None,
    output: str = "pooled.csv",
) -> pd.DataFrame:
    """Read DIR, fit on every imputation, pool, add baselines; returns the table."""
    compare = compare or []
    _check_options(compare, original, output, family)
    long_df = spark.read.parquet(imputed)
    if IMPUTATION not in long_df.columns:
        raise ValueError(
            f"{imputed} has no {IMPUTATION!r} column (columns: {long_df.columns}); point "
            "--imputed at the directory of sparkmice's imputations, partitioned as "
            "_imputation=k"
        )
    found = sorted(int(r[0]) for r in long_df.select(IMPUTATION).distinct().collect())
    print(f"found {len(found)} imputations in {imputed}: {found}", file=sys.stderr)
    if len(found) < 2:
        raise ValueError(
            f"{imputed} holds {len(found)} imputation(s); pooling needs m >= 2: run the "
            "remaining chains into the same table first"
        )
    table = pool(fit_imputations(long_df, formula, family, dfcom))
    if compare:
        original_df = _read_table(spark, original)
        parts = [table.assign(method="mice")]
        parts += [BASELINES[c](original_df, formula, family, dfcom) for c in compare]
        table = pd.concat(parts, ignore_index=True)
    return table


@error_exit("pool", ValueError)
def run(args: argparse.Namespace) -> int:
    """Run the job; returns the exit code (2 on bad input, with the reason on stderr)."""
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    warn_congeniality(args.imputed, args.formula)  # a run's config.json: findings to stderr
    table = pool_directory(
        get_spark(), args.imputed, args.formula, args.family, args.dfcom, compare,
        args.original, args.output,
    )  # fmt: skip
    if args.output.endswith(".csv"):
        table.to_csv(args.output, index=False)
    else:
        table.to_parquet(args.output, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
