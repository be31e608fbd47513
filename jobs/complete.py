"""spark-submit entry point of ``sparkmice complete`` (same options).

spark-submit jobs/complete.py --imputed DIR --output OUT.parquet [--action long] [--include]
"""

import sys

from sparkmice.cli import main

if __name__ == "__main__":
    sys.exit(main(["complete", *sys.argv[1:]]))
