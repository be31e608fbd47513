"""sparkmice: Multiple Imputation by Chained Equations (R mice's methods) on Apache Spark.

imp = sparkmice.mice(df, m=20, maxit=10, seed=1)      # Spark or pandas DataFrame
fits = sparkmice.fit_imputations(imp.complete("long"), "y ~ age + C(diet)", "binomial")
sparkmice.pool(fits)

Public names are imported on first use (`sparkmice.lazy`).
"""

from sparkmice.lazy import lazy_exports

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
    "impute_new": "sparkmice.api",
    "mice": "sparkmice.api",
    "pool": "sparkmice.pooling",
    "pool_estimates": "sparkmice.pooling",
    "pool_r_squared": "sparkmice.pooling",
    "pool_scalar": "sparkmice.pooling",
    "quickpred": "sparkmice.predictors",
    "read_imputed": "sparkmice.io.run",
    "read_table": "sparkmice.io.catalog",
    "summary": "sparkmice.pooling",
    "with_imputations": "sparkmice.analysis",
    "write_table": "sparkmice.io.catalog",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(globals(), _HOMES)
