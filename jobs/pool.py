"""spark-submit entry point of the reducer: fit on every imputation in DIR and pool.

    spark-submit jobs/pool.py --imputed DIR --formula "y ~ x1 + C(x2)" --family binomial \\
        --output pooled.csv [--compare cca,mean --original data.csv] [--dfcom N]

The same options and code as `sparkmice pool` (sparkmice.pooling.job).
"""

import argparse
import sys

from sparkmice.pooling.job import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="pool.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
