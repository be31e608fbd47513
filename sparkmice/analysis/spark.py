"""Distributed IRLS of the analysis model on a Spark long table, grouped by `_imputation`.

A first `mapInArrow` pass turns every row into its numeric design row (formulaic, with one
ModelSpec fixed up front from the category levels collected by one small aggregation) and
caches it. Then one `mapInArrow` pass per IRLS iteration computes, in every task, the GLM sums
(`sparkmice.kernels.glm.irls_sums`) of each imputation's rows at that imputation's current
coefficients; the driver collects the (partitions x m) small sum vectors, adds them in
partition order (so the result does not depend on task timing) and takes the Newton step
for all m models. DataFrame API only (no
RDD, SparkContext or broadcast): works over Spark Connect.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from sparkmice.analysis.design import (
    categorical_variables,
    check_full_rank,
    design_arrays,
    formula_variables,
    model_spec,
)
from sparkmice.analysis.fits import AnalysisFits, check_long
from sparkmice.analysis.irls import irls, null_start, offset_design, sums_for
from sparkmice.kernels.glm import GlmSums, irls_sums
from sparkmice.names import IMPUTATION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from formulaic.model_spec import ModelSpecs
    from pyspark.sql import DataFrame

_SUMS_SCHEMA = "partition int, imputation int, sums array<double>"
_SAMPLE_ROWS = 100


def spark_model_spec(data: DataFrame, formula: str, variables: list[str]) -> ModelSpecs:
    """ModelSpec on a prototype frame that holds every level of each categorical column.

    A few sample rows show the column types (Arrow gives each batch the same pandas dtypes)
    and which columns are categorical; one aggregation then collects those columns' levels.
    """
    from pyspark.sql import functions as F

    sample = data.select(*variables).limit(_SAMPLE_ROWS).toPandas()
    complete = sample.dropna()
    if complete.empty:
        complete = data.select(*variables).dropna().limit(1).toPandas()
    if complete.empty:
        raise ValueError(
            f"no row has all of the formula's columns {variables} observed; check the data"
        )
    cat_vars = categorical_variables(model_spec(formula, complete))
    levels: dict[str, list] = {}
    if cat_vars:
        row = data.agg(*[F.collect_set(F.col(v)).alias(v) for v in cat_vars]).collect()[0]
        levels = {v: sorted(row[v]) for v in cat_vars}
    n = max([1, *(len(v) for v in levels.values())])
    proto = complete.iloc[[0] * n].reset_index(drop=True)
    for v, values in levels.items():
        proto[v] = pd.Series([values[i % len(values)] for i in range(n)]).astype(sample[v].dtype)
    return model_spec(formula, proto)


def _design_batches(
    batches: Iterator[pa.RecordBatch], spec: ModelSpecs, family: str
) -> Iterator[pa.RecordBatch]:
    """Runs in a Spark task: rows of (imputation, y, design row) from the fixed ModelSpec."""
    for batch in batches:
        frame = batch.to_pandas()
        for k, rows in frame.groupby(IMPUTATION, sort=True):
            y, x = design_arrays(spec, rows, family)
            p = x.shape[1]
            yield pa.RecordBatch.from_pydict(
                {
                    IMPUTATION: pa.array(np.full(len(y), k, dtype=np.int32)),
                    "y": pa.array(y),
                    "x": pa.ListArray.from_arrays(
                        pa.array(np.arange(len(y) + 1, dtype=np.int32) * p), pa.array(x.ravel())
                    ),
                }
            )


def _design_table(data: DataFrame, spec: ModelSpecs, family: str) -> DataFrame:
    """The numeric design of every row, built once (formulaic is the slow part of a pass)."""
    fn = partial(_design_batches, spec=spec, family=family)
    schema = f"{IMPUTATION} int, y double, x array<double>"
    return data.mapInArrow(fn, schema)


def _partition_sums(
    batches: Iterator[pa.RecordBatch],
    family: str,
    betas: dict[int, np.ndarray],
    transform: Callable[[np.ndarray], np.ndarray] | None,
) -> Iterator[pa.RecordBatch]:
    """Runs in a Spark task: GLM sums per imputation over this partition's design rows."""
    from pyspark import TaskContext

    acc: dict[int, GlmSums] = {}
    for batch in batches:
        imp = batch.column(IMPUTATION).to_numpy()
        y_all = batch.column("y").to_numpy()
        x_all = batch.column("x").flatten().to_numpy().reshape(len(imp), -1)
        for k in np.unique(imp):
            k = int(k)
            rows = imp == k
            x = x_all[rows] if transform is None else transform(x_all[rows])
            s = irls_sums(x, y_all[rows], betas[k], family)
            acc[k] = acc[k] + s if k in acc else s
    context = TaskContext.get()
    if context is None:
        raise RuntimeError("the GLM sums are computed only inside a Spark task")
    pid = context.partitionId()
    ks = sorted(acc)
    yield pa.RecordBatch.from_pydict(
        {
            "partition": pa.array([pid] * len(ks), pa.int32()),
            "imputation": pa.array(ks, pa.int32()),
            "sums": pa.array([acc[k].to_array().tolist() for k in ks], pa.list_(pa.float64())),
        }
    )


def _spark_sums(
    design: DataFrame,
    family: str,
    transform: Callable[[np.ndarray], np.ndarray] | None,
    betas: dict[int, np.ndarray],
) -> dict[int, GlmSums]:
    """One Spark job: sums of every imputation in `betas`, added in partition order."""
    from pyspark.sql import functions as F

    fn = partial(_partition_sums, family=family, betas=betas, transform=transform)
    rows = design.where(F.col(IMPUTATION).isin(list(betas))).mapInArrow(fn, _SUMS_SCHEMA).collect()
    out: dict[int, GlmSums] = {}
    for r in sorted(rows, key=lambda r: (r["partition"], r["imputation"])):
        p = len(betas[r["imputation"]])
        s = GlmSums.from_array(np.asarray(r["sums"], dtype=float), p)
        out[r["imputation"]] = out[r["imputation"]] + s if r["imputation"] in out else s
    return out


def _restricted_deviance(
    data: DataFrame, spec: ModelSpecs, family: str, imputations: tuple[int, ...], beta
) -> np.ndarray:
    """Deviance per imputation with offset X beta and a re-fitted intercept (IRLS on Spark)."""
    design = _design_table(data, spec, family).persist()
    try:
        sums_at = partial(_spark_sums, design, family, partial(offset_design, beta))
        res = irls(sums_at, {k: np.array([0.0, 1.0]) for k in imputations}, n_free=1)
    finally:
        design.unpersist()
    return np.array([res[k].sums.deviance for k in imputations])


def fit_spark(sdf: DataFrame, formula: str, family: str, dfcom: float | None) -> AnalysisFits:
    """Fit on every imputation of a Spark long table; see the module docstring."""
    check_long(list(sdf.columns))
    variables = formula_variables(formula, sdf.columns)
    data = sdf.select(IMPUTATION, *variables)
    spec = spark_model_spec(data, formula, variables)
    terms = tuple(spec.rhs.column_names)
    p = len(terms)
    intercept = terms.index("Intercept") if "Intercept" in terms else None
    imputations = tuple(sorted(int(r[0]) for r in data.select(IMPUTATION).distinct().collect()))

    design = _design_table(data, spec, family).persist()
    try:
        sums_at = partial(_spark_sums, design, family, None)
        zeros = {k: np.zeros(p) for k in imputations}
        s0 = sums_at(zeros)
        for k in imputations:
            check_full_rank(sums_for(s0, k).xtwx, terms, k)
        if family == "poisson" and intercept is not None:  # from 0, Newton crawls to log(ybar)
            res = irls(sums_at, {k: null_start(s0[k], family, intercept) for k in imputations})
        else:
            res = irls(sums_at, zeros, first=s0)
    finally:
        design.unpersist()

    est, cov, dev, tss, nobs = [], [], [], [], []
    for k in imputations:
        r = res[k]
        n = r.sums.n
        dispersion = r.sums.deviance / (n - p) if family == "gaussian" else 1.0
        est.append(r.beta)
        cov.append(np.linalg.inv(r.sums.xtwx) * dispersion)
        dev.append(r.sums.deviance)
        nobs.append(int(round(n)))
        if family == "gaussian":  # from the sums at beta = 0: deviance = sum y^2, score = X'y
            sy2, sy = s0[k].deviance, (s0[k].score[intercept] if intercept is not None else 0.0)
            tss.append(sy2 - sy**2 / n if intercept is not None else sy2)
        else:
            tss.append(np.nan)
    return AnalysisFits(
        formula, family, terms, imputations, np.array(est), np.array(cov), np.array(dev),
        np.array(tss), np.array(nobs),
        float(nobs[0] - p) if dfcom is None else float(dfcom),
        partial(_restricted_deviance, data, spec, family, imputations),
    )  # fmt: skip
