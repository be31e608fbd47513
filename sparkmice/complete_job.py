"""`sparkmice complete`: a run's completed data in one of R's shapes, as a file.

    sparkmice complete --imputed DIR --output OUT.parquet [--action long] [--include] [--indicator]

R mice's `complete(imp, action, include)`: `--action` K (1..m), 0 (the original data),
long, broad, repeated, or all (one file per imputation, OUT/imputation_<k>.parquet);
`--indicator` adds `<col>_imputed` (True where the value was imputed). OUT ending in .csv
is written as CSV (e.g. for R's read.csv), else Parquet. Read with pandas, or with Spark
(the output a Spark folder) when the run holds more than `PANDAS_ROWS` imputed rows.
"""

from __future__ import annotations

import argparse
import posixpath
from typing import Any

from sparkmice.cli import error_exit
from sparkmice.io.imputed import PANDAS_ROWS, SHAPES, of_folder
from sparkmice.io.run import RunFolder


def _action(text: str) -> int | str:
    if text.isdigit():
        return int(text)
    if text not in SHAPES:
        raise argparse.ArgumentTypeError(
            f"--action must be an imputation number, 0 (the original data) or one of "
            f"{list(SHAPES)}; got {text!r}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--imputed", required=True, metavar="DIR", help="output directory of 'sparkmice impute'"
    )
    parser.add_argument(
        "--output", required=True, metavar="OUT", help="file to write (.csv: CSV, else Parquet)"
    )
    parser.add_argument(
        "--action",
        type=_action,
        default="long",
        metavar="ACTION",
        help=f"an imputation K, 0 (the original data) or one of {list(SHAPES)} (default long)",
    )
    parser.add_argument(
        "--include", action="store_true", help="add the original data as imputation 0"
    )
    parser.add_argument(
        "--indicator", action="store_true", help="add <col>_imputed: True where imputed"
    )


def _write(frame: Any, path: str, spark: Any) -> None:
    csv = path.lower().endswith(".csv")
    if spark is not None:
        writer = frame.write.mode("errorifexists")
        (writer.option("header", True).csv if csv else writer.parquet)(path)
    elif csv:
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


@error_exit("complete", FileNotFoundError, ValueError)
def run(args: argparse.Namespace) -> int:
    import os

    if os.path.exists(args.output):
        raise ValueError(f"--output {args.output} exists already; choose another path.")
    folder = RunFolder(args.imputed)
    config = folder.read_config() or {}
    spark = None
    if config.get("n_rows", 0) * config.get("m", 0) > PANDAS_ROWS:
        from sparkmice.session import get_spark

        spark = get_spark()
    data = of_folder(folder, spark).complete(args.action, args.include, args.indicator)
    if args.action == "all":
        os.makedirs(args.output)
        first = 0 if args.include else 1
        suffix = ".csv" if args.output.lower().endswith(".csv") else ".parquet"
        for k, frame in enumerate(data, start=first):
            _write(frame, posixpath.join(args.output, f"imputation_{k}{suffix}"), spark)
    else:
        _write(data, args.output, spark)
    print(f"wrote {args.output}: complete(action={args.action!r}, include={args.include})")
    return 0
