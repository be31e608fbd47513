"""Run sparkmice in a Spark session of its own (a separate process per cluster mode).

Usage: python cluster_run.py (--master URL | --remote URL) INPUT.parquet OUTPUT ENGINE
       [--maxit T] [--m M]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--master")
    parser.add_argument("--remote")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("engine")
    parser.add_argument("--maxit", type=int, default=2)
    # on 2 slots, 3 chains: chains 1-2 as one-task jobs, chain 3 as a two-task barrier job
    parser.add_argument("--m", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from sparkmice import mice
    from sparkmice.session import get_spark, is_connect

    spark = get_spark(master=args.master, remote=args.remote)
    assert is_connect(spark) == bool(args.remote)
    imp = mice(
        spark.read.parquet(args.input),
        m=args.m,
        maxit=args.maxit,
        seed=9,
        row_blocks=3,
        output=args.output,
        engine=args.engine,
    )
    print("ENGINE", imp.engine)
    spark.stop()
