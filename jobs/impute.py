"""spark-submit entry point of the imputation job; the same options as `sparkmice impute`.

    spark-submit jobs/impute.py --input PATH --output DIR --m 5 --maxit 10 --seed 1 \\
        [--config conf/FILE.yaml] [--chains 3,4]
"""

import argparse
import sys

from sparkmice.impute_job import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="impute.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
