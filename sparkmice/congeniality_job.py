"""`sparkmice check-congeniality`: does the imputed run's model cover the analysis formula?

    sparkmice check-congeniality --imputed DIR --formula "y ~ age * smoke + C(diet)"

Reads DIR/_sparkmice/config.json (no Spark, no data) and prints, for each imputed variable
the formula uses, the variables, interactions and nonlinear terms its imputation model
leaves out, with the config change that adds them (Meng 1994; White, Royston & Wood 2011).
Exit 0 with or without findings (a report, not a gate); 2 on bad input: no run in DIR, an
unparsable formula or a column the data do not have.
"""

from __future__ import annotations

import argparse

from sparkmice.cli import error_exit
from sparkmice.congeniality import check_congeniality_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `sparkmice check-congeniality`."""
    parser.add_argument(
        "--imputed",
        required=True,
        metavar="DIR",
        help="output directory of a sparkmice run (holds _sparkmice/config.json)",
    )
    parser.add_argument(
        "--formula",
        required=True,
        help='analysis model as for `sparkmice pool`, e.g. "y ~ age * smoke + C(diet)"',
    )


@error_exit("check-congeniality", OSError, ValueError)
def run(args: argparse.Namespace) -> int:
    """Print the report; returns the exit code (2 on bad input, with the reason on stderr)."""
    print(check_congeniality_dir(args.imputed, args.formula))
    return 0
