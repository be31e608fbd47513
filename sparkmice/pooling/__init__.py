"""Pooling by Rubin's rules and multiparameter tests (pure numpy, no Spark)."""

from sparkmice.pooling.r_squared import pool_r_squared
from sparkmice.pooling.results import ModelEstimates, StackedEstimates, estimates_of
from sparkmice.pooling.rubin import (
    POOLED_COLUMNS,
    barnard_rubin_df,
    pool,
    pool_estimates,
    pool_scalar,
    summary,
)
from sparkmice.pooling.tests import D1, D2, D3, MultiparameterTest

__all__ = [
    "D1",
    "D2",
    "D3",
    "POOLED_COLUMNS",
    "ModelEstimates",
    "MultiparameterTest",
    "StackedEstimates",
    "barnard_rubin_df",
    "estimates_of",
    "pool",
    "pool_estimates",
    "pool_r_squared",
    "pool_scalar",
    "summary",
]
