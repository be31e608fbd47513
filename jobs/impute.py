"""spark-submit entry point of the imputation job; the same options as `sparkmice impute`.

    spark-submit jobs/impute.py --input PATH --output DIR --m 5 --maxit 10 --seed 1 \\
        [--config conf/FILE.yaml] [--chains 3,4]
"""

import sys

from sparkmice.cli import main

if __name__ == "__main__":
    sys.exit(main(["impute", *sys.argv[1:]]))
