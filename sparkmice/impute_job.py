"""`sparkmice impute`: the imputation job (also `spark-submit jobs/impute.py`).

    sparkmice impute --input PATH --output DIR --m M --maxit T --seed S \\
        [--config conf/FILE.yaml] [--chains 3,4] [--engine barrier] [--format delta] [--overwrite]
        [--output-table catalog.schema.table]

Input: a Parquet or CSV path, or a catalog table name (`catalog.schema.table`).
Output: the long table in DIR,
partitioned by `_imputation`, with the run's trace and configuration in DIR/_sparkmice.
`--chains` runs only those chains, so an orchestrator can fan out one task per imputation
into the same table.
"""

from __future__ import annotations

import argparse
import os

from sparkmice.api import mice
from sparkmice.cli import error_exit
from sparkmice.config import MiceConfig
from sparkmice.io.catalog import check_table_name
from sparkmice.io.paths import check_apart


def _chains(text: str) -> list[int]:
    try:
        return [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--chains must be chain numbers separated by commas, e.g. 3,4; got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        metavar="PATH",
        help="Parquet or CSV path, or a catalog table name",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="imputed table folder")
    parser.add_argument(
        "--output-table", default=None, metavar="CATALOG.SCHEMA.TABLE",
        help="also write the chains to this catalog table, partitioned by _imputation "
        "(a rerun of a chain replaces its partition; with --format delta, in one transaction)",
    )  # fmt: skip
    parser.add_argument("--m", type=int, default=None, help="number of imputations (default 5)")
    parser.add_argument("--maxit", type=int, default=None, help="iterations (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="master seed (default 1)")
    parser.add_argument("--config", metavar="FILE.yaml", help="all other options (see conf/)")
    parser.add_argument(
        "--chains",
        type=_chains,
        default=None,
        metavar="3,4",
        help="run only these chains (1-based)",
    )
    parser.add_argument("--engine", choices=MiceConfig.choices("engine"), default=None)
    parser.add_argument("--format", choices=MiceConfig.choices("format"), default=None)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the chains this run writes if DIR exists"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the chains in DIR after their last finished sweep (after a failure, "
        "or with a larger --maxit)",
    )
    parser.add_argument(
        "--master", default=None, help="Spark master for the embedded session (default local[*])"
    )


@error_exit("impute")
def run(args: argparse.Namespace) -> int:
    from sparkmice.io.spark import read_input
    from sparkmice.session import get_spark

    overrides = {
        "m": args.m,
        "maxit": args.maxit,
        "seed": args.seed,
        "chains": args.chains,
        "engine": args.engine,
        "format": args.format,
    }
    if args.config:
        config = MiceConfig.from_yaml(args.config, **overrides)
    else:
        config = MiceConfig.from_dict({k: v for k, v in overrides.items() if v is not None})
    if os.path.exists(args.input) or "/" in args.input or ":" in args.input:
        check_apart(args.output, [args.input])  # a path, not a catalog table
    if args.output_table is not None:
        check_table_name(args.output_table)  # before Spark starts
    spark = get_spark(master=args.master)
    df = read_input(spark, args.input)
    result = mice(
        df, config=config, output=args.output, overwrite=args.overwrite, resume=args.resume,
        output_table=args.output_table,
    )  # fmt: skip
    chains = config.chain_numbers()
    print(
        f"imputed {result.plan.n_rows} rows of {args.input}: chains {chains} of m={config.m}, "
        f"maxit={config.maxit}, seed={config.seed}, engine {result.engine}"
    )
    print("methods: " + ", ".join(f"{k}={v}" for k, v in result.method.items() if v))
    if len(result.logged_events):
        print(f"logged events: {len(result.logged_events)} (see {result.output}/_sparkmice/)")
    print(
        f"imputed table: {result.output}  (read it with sparkmice.read_imputed(DIR), or "
        f"sparkmice.read_imputed(DIR, spark) for Spark)"
    )
    return 0
