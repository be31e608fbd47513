"""Any analysis model on every imputation: R mice's `with(imp, expr)` for models that
`fit_imputations` (GLMs by formula) does not cover — Cox, mixed models, a mean, an AUC.

    fits = sparkmice.with_imputations(long, lambda d: smf.mixedlm("y ~ x", d, groups=d["g"]).fit())
    sparkmice.pool(fits)

`fn` gets one completed imputation as a pandas DataFrame (all columns of the long table,
rows in `_row_id` order) and returns what `sparkmice.pooling.results.estimates_of`
accepts. On a pandas long table it runs here, imputation by imputation. On a Spark
DataFrame it runs in the executors (`applyInPandas` grouped by `_imputation`): each
imputation's rows meet in one task, `fn` fits there, and only its typed values (terms,
estimates, covariance, dfcom) come back to the driver as array columns — no model object
is pickled back and no data row is collected. One imputation must fit in one executor's
memory (`spark.executor.memory`, `spark.sql.execution.arrow.maxRecordsPerBatch` does not
split a group); for GLMs on tables larger than that, `fit_imputations` sums over partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from sparkmice.analysis.fits import check_long
from sparkmice.names import IMPUTATION, ROW_ID
from sparkmice.pooling.results import StackedEstimates, estimates_of, stack_estimates

Analysis = Callable[[pd.DataFrame], Any]
_RESULT_SCHEMA = (
    f"{IMPUTATION} int, terms array<string>, estimates array<double>, "
    "covariance array<double>, dfcom double"
)


def _in_row_order(frame: pd.DataFrame) -> pd.DataFrame:
    """One imputation's rows in `_row_id` order, so `fn` sees the same frame on any engine."""
    if ROW_ID in frame.columns:
        frame = frame.sort_values(ROW_ID, kind="stable")
    return frame.reset_index(drop=True)


def _fit_group(
    key: tuple, frame: pd.DataFrame, fn: Analysis, names: tuple[str, ...]
) -> pd.DataFrame:
    """Runs in a Spark task: fit `fn` on one imputation (its columns named by position,
    given their real `names`), return its typed values as one row."""
    found = estimates_of(fn(_in_row_order(frame.set_axis(list(names), axis=1))))
    return pd.DataFrame({
        IMPUTATION: [int(key[0])],
        "terms": [list(found.terms)],
        "estimates": [found.estimates.tolist()],
        "covariance": [found.covariance.ravel().tolist()],
        "dfcom": [found.dfcom],
    })  # fmt: skip


def _with_spark(sdf: Any, fn: Analysis) -> StackedEstimates:
    from sparkmice.io.spark import PositionalNames

    names = PositionalNames(tuple(sdf.columns))  # pyspark cannot refer to `Solar.R` here
    fit = partial(_fit_group, fn=fn, names=names.names)
    rows = (
        names.spark_positional(sdf)
        .groupBy(names.of(IMPUTATION))
        .applyInPandas(fit, _RESULT_SCHEMA)
    )
    collected = sorted(rows.collect(), key=lambda r: r[IMPUTATION])
    results = []
    for r in collected:
        q = np.asarray(r["estimates"], dtype=float)
        cov = np.asarray(r["covariance"], dtype=float).reshape(len(q), len(q))
        results.append((pd.Series(q, index=list(r["terms"])), cov, float(r["dfcom"])))
    return stack_estimates(results, [int(r[IMPUTATION]) for r in collected])


def with_imputations(long_df: Any, fn: Analysis) -> StackedEstimates:
    """Fit `fn` on every imputation of `long_df` (pandas or Spark); `sparkmice.pool` pools
    the result. See the module docstring for what `fn` gets and may return."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of one imputation's DataFrame; got {fn!r}")
    check_long(list(long_df.columns))
    if isinstance(long_df, pd.DataFrame):
        ks = sorted(int(k) for k in long_df[IMPUTATION].unique())
        frames = [_in_row_order(long_df[long_df[IMPUTATION] == k]) for k in ks]
        return stack_estimates([fn(frame) for frame in frames], ks)
    if hasattr(long_df, "groupBy") and hasattr(long_df, "mapInArrow"):
        return _with_spark(long_df, fn)
    raise TypeError(f"long_df must be a pandas or Spark DataFrame; got {type(long_df).__name__}")
