"""`sparkmice impute-new --model DIR --input NEW --output OUT`: impute rows that arrived
after run DIR with each chain's final models, without refitting (`sparkmice.newdata`).
The new rows are read here with pyarrow (a Parquet file or folder, or a CSV file) and
imputed in this process; no Spark session is started."""

from __future__ import annotations

import argparse

from sparkmice.cli import error_exit
from sparkmice.models import ModelError
from sparkmice.names import IMPUTATION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="the run's output folder")
    parser.add_argument(
        "--input", required=True, metavar="NEW", help="new rows: Parquet file/folder or .csv"
    )
    parser.add_argument("--output", required=True, metavar="OUT", help="imputed new rows folder")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the run's)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a run already at --output"
    )


def read_rows(source: str):
    """The new rows as an Arrow table: a CSV file, else Parquet (a file or a folder)."""
    import pyarrow.csv as pv
    import pyarrow.dataset as ds

    from sparkmice.io.paths import resolve

    location = resolve(source)
    if source.endswith(".csv"):
        with location.filesystem.open_input_stream(location.path) as f:
            return pv.read_csv(f)
    return ds.dataset(location.path, filesystem=location.filesystem, format="parquet").to_table()


@error_exit("impute-new", ModelError, FileNotFoundError)
def run(args: argparse.Namespace) -> int:
    from sparkmice.api import impute_new

    result = impute_new(
        args.model, read_rows(args.input), args.output, seed=args.seed, overwrite=args.overwrite
    )
    chains = sorted(set(result.complete("long")[IMPUTATION]))
    config = result.plan.config
    print(
        f"imputed {result.plan.n_rows} new rows of {args.input} with the models of "
        f"{args.model}: chains {chains}, maxit={config.maxit}, seed={config.seed}"
    )
    print(f"imputed table: {result.output}  (read it with sparkmice.read_imputed(DIR))")
    return 0
