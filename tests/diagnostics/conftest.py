"""Fixtures of the diagnostics tests: a synthetic run (Spark comes from tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import diag_synthetic  # noqa: E402


@pytest.fixture(scope="session")
def original():
    """The incomplete input of the synthetic run (pandas)."""
    return diag_synthetic.make_original()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, original):
    """A synthetic imputed run with m = 3 whose 'chl' chains are stuck, long enough
    (maxit = 60) for R-hat to judge 3 chains."""
    return diag_synthetic.write_run(
        tmp_path_factory.mktemp("run"), original, maxit=60, stuck=("chl",)
    )
