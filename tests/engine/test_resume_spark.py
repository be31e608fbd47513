"""A Spark run whose driver is killed mid-way resumes from its last finished sweep (the
barrier tasks' saved state) and gives exactly the unbroken run's imputations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import sparkmice
from sparkmice.datasets import make_mar

HERE = Path(__file__).parent


def test_killed_driver_resumes(spark, tmp_path):
    data = make_mar(20_000, seed=8)
    path = tmp_path / "mar.parquet"
    data.to_parquet(path, index=False)
    out = tmp_path / "out"
    progress = out / "_sparkmice" / "progress"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    run = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "cluster_run.py"),
            "--master",
            "local[2]",
            str(path),
            str(out),
            "barrier",
            "--maxit",
            "5",
            "--m",
            "2",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    while not (progress / "chain_2_sweep_00002.json").exists():
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)  # the driver and its JVM and workers
    run.wait()
    done = sorted(p.name for p in progress.glob("*.json"))
    # killed part-way: chain 2 had finished sweep 2 but not its last (chains may run at once,
    # so how far chain 1 got depends on scheduling)
    assert "chain_2_sweep_00002.json" in done and "chain_2_sweep_00005.json" not in done

    resumed = sparkmice.mice(
        spark.read.parquet(str(path)), m=2, maxit=5, seed=9, row_blocks=3, output=str(out),
        resume=True,
    )
    straight = sparkmice.mice(data, m=2, maxit=5, seed=9, row_blocks=3).complete("long")
    pd.testing.assert_frame_equal(sparkmice.read_imputed(str(out)), straight, check_dtype=False)
    assert sorted(set(resumed.trace.iteration)) == [1, 2, 3, 4, 5]
