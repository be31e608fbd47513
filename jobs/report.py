"""spark-submit entry point of ``sparkmice report`` (same options).

spark-submit jobs/report.py --imputed DIR --output report.html [--original PATH]
"""

import sys

from sparkmice.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
