"""spark-submit entry point of ``sparkmice report`` (same options).

spark-submit jobs/report.py --imputed DIR --output report.html [--original PATH]
"""

import argparse
import sys

from sparkmice.diagnostics.job import add_arguments, run

if __name__ == "__main__":
    parser = add_arguments(argparse.ArgumentParser(prog="jobs/report.py", description=__doc__))
    sys.exit(run(parser.parse_args()))
