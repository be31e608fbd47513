"""The `sparkmice` command: impute, pool, report, check-congeniality."""

from __future__ import annotations

import argparse
import sys

from sparkmice import congeniality_job, impute_job
from sparkmice.diagnostics import job as report_job
from sparkmice.pooling import job as pool_job

COMMANDS = {
    "impute": (impute_job, "impute an incomplete table by chained equations"),
    "pool": (pool_job, "fit a model on every imputation and pool by Rubin's rules"),
    "report": (report_job, "write an HTML report of an imputed run"),
    "check-congeniality": (
        congeniality_job,
        "say which terms of an analysis formula the imputation models leave out",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparkmice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return COMMANDS[args.command][0].run(args)


if __name__ == "__main__":
    sys.exit(main())
