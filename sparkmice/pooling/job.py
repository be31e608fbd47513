"""`sparkmice pool`: the reducer job. Fit the analysis model on every imputation in a
partitioned Parquet table and pool by Rubin's rules; optionally add complete-case and
mean-imputation baselines of the original data.

    sparkmice pool --imputed DIR --formula "y ~ age + C(diet)" --family binomial \\
        --output pooled.csv [--compare cca,mean --original data.csv] [--dfcom N]
    sparkmice pool --imputed DIR --model cox --formula "~ age + C(diet)" \\
        --duration time --event died --output pooled.csv
    sparkmice pool --imputed DIR --model mixedlm --formula "y ~ age" --groups clinic ...

`--model glm` (the default) fits by distributed IRLS (`fit_imputations`); `cox` and
`mixedlm` fit one imputation per Spark task (`with_imputations`, `sparkmice.analysis.choice`).

It pools the imputations of the run in DIR (the fan-in of a fan-out of chains), read through
the run folder (only committed chains; Delta: only the files its log lists). m and the
chains come from the run's config.json: a missing or extra chain is refused, naming it,
unless `--allow-partial` (then it pools what is done and warns). A plain table partitioned
by `_imputation` (no config.json) is pooled as found, as is a catalog table
(`--imputed-table catalog.schema.table`: Parquet in Spark's catalog, or the Delta table
`sparkmice impute --format delta --output-table` wrote, read by its log).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

import pandas as pd

from sparkmice.analysis import (
    fit_complete_cases,
    fit_imputations,
    fit_mean_imputed,
    with_imputations,
)
from sparkmice.analysis.choice import MODELS, analysis_for, check_model_options
from sparkmice.analysis.design import check_family
from sparkmice.analysis.formula import check_formula
from sparkmice.cli import error_exit
from sparkmice.congeniality import warn_congeniality
from sparkmice.io.catalog import check_table_name, read_table
from sparkmice.io.run import RunFolder
from sparkmice.kernels.glm import FAMILIES
from sparkmice.names import IMPUTATION
from sparkmice.pooling.rubin import pool
from sparkmice.session import get_spark

BASELINES = {"cca": fit_complete_cases, "mean": fit_mean_imputed}
OUTPUT_FORMATS = (".csv", ".parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sparkmice pool` (also used by jobs/pool.py)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--imputed",
        metavar="DIR",
        help="long table of imputations: Parquet partitioned by _imputation",
    )
    source.add_argument(
        "--imputed-table",
        metavar="CATALOG.SCHEMA.TABLE",
        help="the imputations in a catalog table (sparkmice impute --output-table)",
    )
    parser.add_argument("--formula", required=True, help='e.g. "y ~ age + bp + C(diet)"')
    parser.add_argument(
        "--model", default="glm", choices=MODELS,
        help="glm (default; --family), cox (--duration, --event; formula '~ x + z') or "
        "mixedlm (random intercept per --groups; fixed effects pooled)",
    )  # fmt: skip
    parser.add_argument(
        "--family", default=None,
        help=f"--model glm: one of {', '.join(FAMILIES)} (default gaussian)",
    )  # fmt: skip
    parser.add_argument("--duration", metavar="COLUMN", help="--model cox: the follow-up time")
    parser.add_argument("--event", metavar="COLUMN",
                        help="--model cox: 1 = event, 0 = censored")  # fmt: skip
    parser.add_argument("--groups", metavar="COLUMN",
                        help="--model mixedlm: grouping column (random intercepts)")  # fmt: skip
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
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="pool the chains that are done when some of the run's m are missing (warns)",
    )


def _read_table(spark: Any, path: str) -> Any:
    if path.endswith(".csv"):
        return spark.read.csv(path, header=True, inferSchema=True, nullValue="NA")
    return spark.read.parquet(path)


def _check_options(
    compare: list[str], original: str | None, output: str, family: str, model: str = "glm"
) -> None:
    check_family(family)
    if model != "glm" and compare:
        raise ValueError(f"--compare fits GLM baselines; it does not apply to --model {model}")
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
    allow_partial: bool = False,
    model: str = "glm",
    duration: str | None = None,
    event: str | None = None,
    groups: str | None = None,
) -> pd.DataFrame:
    """Read DIR, fit on every imputation, pool, add baselines; returns the table.
    `model` cox or mixedlm: see `sparkmice.analysis.choice` for formula and options."""
    compare = compare or []
    _check_options(compare, original, output, family, model)
    check_model_options(model, formula, duration, event, groups)
    run = RunFolder(imputed)
    _enough(imputed, _chains_to_pool(run, imputed, allow_partial))
    long_df = run.read(spark)
    return _pool_long(
        spark, long_df, formula, family, dfcom, compare, original, model, duration, event, groups
    )


def pool_table(
    spark: Any,
    name: str,
    formula: str,
    family: str = "gaussian",
    dfcom: float | None = None,
    compare: list[str] | None = None,
    original: str | None = None,
    output: str = "pooled.csv",
    model: str = "glm",
    duration: str | None = None,
    event: str | None = None,
    groups: str | None = None,
) -> pd.DataFrame:
    """As `pool_directory`, for the imputations in catalog table `name` (Parquet in Spark's
    catalog, or the Delta table `--output-table` wrote): every chain the table holds."""
    compare = compare or []
    _check_options(compare, original, output, family, model)
    check_model_options(model, formula, duration, event, groups)
    long_df = read_table(name, spark)
    if IMPUTATION not in long_df.columns:
        raise ValueError(f"table {name} has no {IMPUTATION!r} column; give the --output-table "
                         "of 'sparkmice impute'")  # fmt: skip
    found = sorted(r[0] for r in long_df.select(IMPUTATION).distinct().collect())
    _enough(name, found)
    return _pool_long(
        spark, long_df, formula, family, dfcom, compare, original, model, duration, event, groups
    )


def _enough(source: str, found: list[int]) -> None:
    """Say which imputations were found; refuse fewer than two."""
    print(f"found {len(found)} imputations in {source}: {found}", file=sys.stderr)
    if len(found) < 2:
        raise ValueError(
            f"{source} holds {len(found)} imputation(s); pooling needs m >= 2: run the "
            "remaining chains into the same table first"
        )


def _pool_long(
    spark: Any,
    long_df: Any,
    formula: str,
    family: str,
    dfcom: float | None,
    compare: list[str],
    original: str | None,
    model: str,
    duration: str | None,
    event: str | None,
    groups: str | None,
) -> pd.DataFrame:
    """Fit the model on every imputation of the long table, pool, add the baselines."""
    if model != "glm":
        fn = analysis_for(model, long_df, formula, duration, event, groups)
        return pool(with_imputations(long_df, fn), dfcom)
    table = pool(fit_imputations(long_df, formula, family, dfcom))
    if compare:
        original_df = _read_table(spark, cast(str, original))  # _check_options: compare needs it
        parts = [table.assign(method="mice")]
        parts += [BASELINES[c](original_df, formula, family, dfcom) for c in compare]
        table = pd.concat(parts, ignore_index=True)
    return table


def _chains_to_pool(run: RunFolder, imputed: str, allow_partial: bool) -> list[int]:
    """The committed chains, checked against the run's m: extra chains are refused, missing
    ones too unless `allow_partial` (then a warning names them)."""
    if not run.entries():
        raise ValueError(f"--imputed {imputed} not found (or empty); give the --output DIR "
                         "of 'sparkmice impute'")  # fmt: skip
    found = run.chains()
    if not found:
        raise ValueError(
            f"{imputed} holds no {IMPUTATION}=k folders (no {IMPUTATION!r} column); point "
            "--imputed at the directory of sparkmice's imputations, partitioned as "
            "_imputation=k"
        )
    config = run.read_config()
    if config is None or "m" not in config:
        return found
    m = int(config["m"])
    extra = [k for k in found if not 1 <= k <= m]
    missing = [k for k in range(1, m + 1) if k not in found]
    if extra:
        raise ValueError(
            f"{imputed} holds chain(s) {extra} beyond its run's m={m}: they belong to "
            "another run; impute again with --overwrite (which removes the old run first)"
        )
    if missing and not allow_partial:
        raise ValueError(
            f"{imputed} lacks chain(s) {missing} of its run's m={m} (done: {found}); run "
            "them into the same folder (--chains), or pass --allow-partial to pool what is done"
        )
    if missing:
        print(
            f"warning: pooling {len(found)} of m={m} imputations; chain(s) {missing} are "
            "missing (--allow-partial): the pooled variance has fewer imputations than planned",
            file=sys.stderr,
        )
    return found


@error_exit("pool", ValueError)
def run(args: argparse.Namespace) -> int:
    """Run the job; returns the exit code (2 on bad input, with the reason on stderr)."""
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    check_formula(args.formula)  # before Spark starts and before formulaic sees it
    if args.family is not None and args.model != "glm":
        raise ValueError(f"--family applies to --model glm, not {args.model}; drop it")
    family = args.family or "gaussian"
    check_model_options(args.model, args.formula, args.duration, args.event, args.groups)
    _check_options(compare, args.original, args.output, family, args.model)
    # a run's config.json: findings to stderr (Cox: the time as the formula's outcome)
    if args.imputed_table is not None:
        check_table_name(args.imputed_table)  # before Spark starts
        if args.allow_partial:
            raise ValueError("--allow-partial applies to --imputed DIR: a table is pooled as "
                             "found (every chain it holds); drop it")  # fmt: skip
        table = pool_table(
            get_spark(), args.imputed_table, args.formula, family, args.dfcom, compare,
            args.original, args.output, args.model, args.duration, args.event, args.groups,
        )  # fmt: skip
    else:
        outcome = f"{args.duration} " if args.model == "cox" else ""
        warn_congeniality(args.imputed, outcome + args.formula)
        table = pool_directory(
            get_spark(), args.imputed, args.formula, family, args.dfcom, compare,
            args.original, args.output, args.allow_partial,
            args.model, args.duration, args.event, args.groups,
        )  # fmt: skip
    if args.output.endswith(".csv"):
        table.to_csv(args.output, index=False)
    else:
        table.to_parquet(args.output, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
