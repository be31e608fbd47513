"""Fixtures of the diagnostics tests: one small local Spark session, a synthetic run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import diag_synthetic  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    """A local[2] Spark session shared by every test of the session."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from sparkmice.session import get_spark

    return get_spark(master="local[2]")


@pytest.fixture(scope="session")
def original():
    """The incomplete input of the synthetic run (pandas)."""
    return diag_synthetic.make_original()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, original):
    """A synthetic imputed run with m = 3, maxit = 10 whose 'chl' chains are stuck."""
    return diag_synthetic.write_run(tmp_path_factory.mktemp("run"), original, stuck=("chl",))
