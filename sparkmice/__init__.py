"""sparkmice: Multiple Imputation by Chained Equations (R mice's methods) on Apache Spark.

imp = sparkmice.mice(df, m=20, maxit=10, seed=1)      # Spark or pandas DataFrame
fits = sparkmice.fit_imputations(imp.complete("long"), "y ~ age + C(diet)", "binomial")
sparkmice.pool(fits)

The public names are imported on first use: Spark's Python workers import sparkmice's
kernels for every chain, and should not pay for statsmodels and the analysis modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "D1": "sparkmice.pooling",
    "D2": "sparkmice.pooling",
    "D3": "sparkmice.pooling",
    "ConfigError": "sparkmice.config",
    "InputError": "sparkmice.plan",
    "MiceConfig": "sparkmice.config",
    "MiceResult": "sparkmice.api",
    "OutputExistsError": "sparkmice.api",
    "fit_complete_cases": "sparkmice.analysis",
    "fit_imputations": "sparkmice.analysis",
    "fit_mean_imputed": "sparkmice.analysis",
    "mice": "sparkmice.api",
    "pool": "sparkmice.pooling",
    "pool_estimates": "sparkmice.pooling",
    "pool_r_squared": "sparkmice.pooling",
    "pool_scalar": "sparkmice.pooling",
    "read_imputed": "sparkmice.io.parquet",
    "summary": "sparkmice.pooling",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sparkmice' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
