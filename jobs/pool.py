"""spark-submit entry point of the reducer: fit on every imputation in DIR and pool.

    spark-submit jobs/pool.py --imputed DIR --formula "y ~ x1 + C(x2)" --family binomial \\
        --output pooled.csv [--compare cca,mean --original data.csv] [--dfcom N]

The same options and code as `sparkmice pool` (sparkmice.pooling.job).
"""

import sys

from sparkmice.cli import main

if __name__ == "__main__":
    sys.exit(main(["pool", *sys.argv[1:]]))
