"""``sparkmice report``: the diagnostics report of an imputed run as one HTML file.

    sparkmice report --imputed DIR --output report.html [--original PATH] [--pooled PATH]

Without ``--original`` the original data are rebuilt from the run itself (its record of
imputed cells), so ``--imputed DIR`` alone gives every section. The imputed table is
reduced by Spark aggregations when ``--original`` is given or the run holds more than
PANDAS_ROWS rows (m × n), by pandas otherwise; the convergence part needs only the files
under ``DIR/_sparkmice``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from sparkmice.cli import error_exit
from sparkmice.diagnostics.distributions import DEFAULT_BINS
from sparkmice.diagnostics.report import build_report
from sparkmice.diagnostics.rhat import THRESHOLD, convergence_message
from sparkmice.io.imputed import PANDAS_ROWS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``sparkmice report`` to ``parser``."""
    parser.add_argument(
        "--imputed", required=True, metavar="DIR", help="output directory of 'sparkmice impute'"
    )
    parser.add_argument("--output", required=True, metavar="HTML", help="report file to write")
    parser.add_argument(
        "--original",
        metavar="PATH",
        help="the incomplete input (CSV, Parquet or table name, read as "
        "'sparkmice impute' reads it), for observed-vs-imputed plots and "
        "the missing-data pattern (default: rebuilt from the run itself)",
    )
    parser.add_argument(
        "--pooled",
        metavar="PATH",
        help="pooled table from 'sparkmice pool' (CSV or Parquet) to include",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=THRESHOLD,
        help=f"R-hat above this means not converged (default {THRESHOLD})",
    )
    parser.add_argument(
        "--bins",
        type=int,
        default=DEFAULT_BINS,
        help=f"histogram bins per continuous variable (default {DEFAULT_BINS})",
    )
    return parser


def _read_pooled(path: str) -> pd.DataFrame:
    """The pooled table: Parquet when the path says so, else CSV."""
    if path.lower().rstrip("/").endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


@error_exit("report", FileNotFoundError, ValueError)
def run(args: argparse.Namespace) -> int:
    """Build and write the report; 0 on success, 2 when an input is missing or wrong."""
    from sparkmice.io.run import RunFolder

    original, spark = None, None
    config = RunFolder(args.imputed).read_config() or {}
    if args.original or config.get("n_rows", 0) * config.get("m", 0) > PANDAS_ROWS:
        from sparkmice.session import get_spark

        spark = get_spark()
    if args.original:
        from sparkmice.io.spark import read_input

        original = read_input(spark, args.original)
    pooled = _read_pooled(args.pooled) if args.pooled else None
    report = build_report(
        args.imputed,
        original=original,
        pooled=pooled,
        spark=spark,
        threshold=args.threshold,
        bins=args.bins,
    )
    path = report.write(args.output)
    print(f"Wrote {path.resolve()}")
    if "rhat" in report.tables:
        print(convergence_message(report.tables["rhat"], args.threshold))
    return 0
