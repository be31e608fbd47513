"""sparkmice: Multiple Imputation by Chained Equations (R mice's methods) on Apache Spark.

imp = sparkmice.mice(df, m=20, maxit=10, seed=1)      # Spark or pandas DataFrame
fits = sparkmice.fit_imputations(imp.complete("long"), "y ~ age + C(diet)", "binomial")
sparkmice.pool(fits)
"""

from sparkmice.analysis import fit_complete_cases, fit_imputations, fit_mean_imputed
from sparkmice.api import MiceResult, OutputExistsError, mice
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.io.parquet import read_imputed
from sparkmice.plan import InputError
from sparkmice.pooling import D1, D2, D3, pool, pool_estimates, pool_r_squared, pool_scalar, summary

__all__ = [
    "D1",
    "D2",
    "D3",
    "ConfigError",
    "InputError",
    "MiceConfig",
    "MiceResult",
    "OutputExistsError",
    "fit_complete_cases",
    "fit_imputations",
    "fit_mean_imputed",
    "mice",
    "pool",
    "pool_estimates",
    "pool_r_squared",
    "pool_scalar",
    "read_imputed",
    "summary",
]
