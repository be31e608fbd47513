"""The same imputations on a two-executor local-cluster (separate executor processes) and
over Spark Connect, as in-process: each mode runs in a process of its own. Three chains on
two slots: two run as one-task jobs, the third as a two-task barrier job whose tasks
exchange sums (on local-cluster, between two executor processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_inprocess import assert_invariants

import sparkmice
from sparkmice.datasets import make_mar

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def mar(tmp_path_factory) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    data = make_mar(1500, seed=3)
    path = tmp_path_factory.mktemp("input") / "mar.parquet"
    data.to_parquet(path, index=False)
    reference = sparkmice.mice(data, m=3, maxit=2, seed=9, row_blocks=3).complete("long")
    return data, str(path), reference


@pytest.mark.parametrize(
    "mode,engine",
    [
        (["--master", "local-cluster[2,1,1024]"], "barrier"),
        (["--remote", "local[2]"], "barrier"),
        (["--remote", "local[2]"], "perstep"),
    ],
    ids=["local-cluster-barrier", "connect-barrier", "connect-perstep"],
)
def test_mode_equals_inprocess(mar, tmp_path, mode, engine):
    out = tmp_path / "out"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    run = subprocess.run(
        [sys.executable, str(HERE / "cluster_run.py"), *mode, mar[1], str(out), engine],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"ENGINE {engine}" in run.stdout
    long = sparkmice.read_imputed(str(out))
    assert_invariants(mar[0], long, 3, pmm=["bp", "chol", "bmi", "lact"])
    pd.testing.assert_frame_equal(long, mar[2], check_dtype=False)
