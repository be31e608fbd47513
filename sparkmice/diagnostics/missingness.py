"""The missing-data pattern: R mice's ``md.pattern``, ``flux`` and ``fico``, at any scale.

Everything here derives from one small table: each distinct pattern of missingness
(which columns are missing in a row) and how many rows have it. On Spark that table is
one aggregation (a group-by on a 0/1 key string), so no rows are collected; on pandas it
is ``numpy.unique`` over the ``isna`` matrix. The statistics are numpy functions of it.

Source: van Buuren (2018), *Flexible Imputation of Missing Data*, 2nd ed., section 4.1
(md.pattern, influx, outflux); White & Carlin (2010), Stat. Med. 29, 2920-2931 (fico).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PatternCounts",
    "flux",
    "fraction_missing",
    "is_spark_frame",
    "md_pattern",
    "missing_patterns",
]


@dataclass(frozen=True)
class PatternCounts:
    """Distinct missingness patterns: ``missing[i, j]`` is True when column j is missing
    in pattern i, which ``counts[i]`` rows have. Patterns sorted by their 0/1 key."""

    columns: list[str]
    missing: np.ndarray
    counts: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows of the data."""
        return int(self.counts.sum())

    @property
    def n_missing(self) -> np.ndarray:
        """Missing cells per column: Σ_i counts_i · missing_ij."""
        return self.counts @ self.missing.astype(np.int64)


def is_spark_frame(data: Any) -> bool:
    """True for a Spark DataFrame, classic or Spark Connect (duck-typed)."""
    return hasattr(data, "sparkSession") and hasattr(data, "groupBy")


def _from_keys(columns: list[str], keys: list[str], counts: list[int]) -> PatternCounts:
    """PatternCounts from '0'/'1' key strings (1 = missing), sorted by key."""
    order = np.argsort(np.asarray(keys, dtype=object).astype(str), kind="stable")
    keys = [keys[i] for i in order]
    missing = np.array([[c == "1" for c in k] for k in keys], dtype=bool)
    return PatternCounts(
        columns=list(columns),
        missing=missing.reshape(len(keys), len(columns)),
        counts=np.asarray(counts, dtype=np.int64)[order],
    )


def _spark_patterns(data: Any, columns: list[str]) -> PatternCounts:
    """Pattern counts by one Spark aggregation; NaN counts as missing in float columns."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    types = {field.name: field.dataType for field in data.schema.fields}
    flags = []
    for name in columns:
        missing = data[name].isNull()
        if isinstance(types[name], (DoubleType, FloatType)):
            missing = missing | F.isnan(data[name])
        flags.append(F.when(missing, F.lit("1")).otherwise(F.lit("0")))
    key = F.concat(*flags).alias("key")
    rows = data.groupBy(key).count().collect()
    return _from_keys(columns, [r["key"] for r in rows], [r["count"] for r in rows])


def _pandas_patterns(data: pd.DataFrame, columns: list[str]) -> PatternCounts:
    """Pattern counts of a pandas DataFrame (``isna``: None, NaN, NaT and pd.NA)."""
    indicator = data[columns].isna().to_numpy()
    if len(indicator) == 0:
        return _from_keys(columns, [], [])
    unique, counts = np.unique(indicator, axis=0, return_counts=True)
    keys = ["".join("1" if v else "0" for v in row) for row in unique]
    return _from_keys(columns, keys, counts.tolist())


def missing_patterns(data: Any, columns: list[str] | None = None) -> PatternCounts:
    """Count the distinct missingness patterns of a pandas or Spark DataFrame.

    ``columns`` defaults to all columns. On Spark this runs one group-by and collects
    one row per distinct pattern (at most min(rows, 2^columns)), never the data.
    """
    if isinstance(data, PatternCounts):
        return data
    columns = list(data.columns) if columns is None else list(columns)
    unknown = [c for c in columns if c not in data.columns]
    if unknown:
        raise ValueError(f"Columns {unknown} are not in the data; it has {list(data.columns)}.")
    if is_spark_frame(data):
        return _spark_patterns(data, columns)
    if isinstance(data, pd.DataFrame):
        return _pandas_patterns(data, columns)
    raise TypeError(f"Expected a pandas or Spark DataFrame, got {type(data).__name__}.")


def fraction_missing(data: Any) -> pd.Series:
    """Fraction of missing cells per column (data or :class:`PatternCounts`)."""
    patterns = missing_patterns(data)
    with np.errstate(invalid="ignore"):
        values = patterns.n_missing / patterns.n_rows
    return pd.Series(values, index=patterns.columns, name="fraction_missing")


def md_pattern(data: Any) -> pd.DataFrame:
    """The missing-data pattern table of R mice's ``md.pattern(x, plot = FALSE)``.

    One row per distinct pattern with ``count`` (rows with it), 1 = observed / 0 = missing
    per column and ``n_missing`` (missing columns in the pattern). Columns are ordered by
    increasing number of missing values (ties keep their order) and rows by their 0/1
    missingness string over those columns, as R does. The last row, ``total``, holds the
    number of rows, the missing cells per column and the total of missing cells.
    """
    patterns = missing_patterns(data)
    n_missing = patterns.n_missing
    column_order = np.argsort(n_missing, kind="stable")
    columns = [patterns.columns[j] for j in column_order]
    missing = patterns.missing[:, column_order]
    keys = ["".join("1" if v else "0" for v in row) for row in missing]
    row_order = np.argsort(np.asarray(keys, dtype=str), kind="stable")
    observed = (~missing[row_order]).astype(np.int64)
    table = pd.DataFrame(observed, columns=columns)
    table.insert(0, "count", patterns.counts[row_order])
    table["n_missing"] = missing[row_order].sum(axis=1).astype(np.int64)
    total = [patterns.n_rows, *n_missing[column_order].tolist(), int(n_missing.sum())]
    table.loc[len(table)] = total
    table.index = [*range(1, len(table)), "total"]
    return table


def flux(data: Any) -> pd.DataFrame:
    """Influx and outflux per column, as R mice's ``flux()``.

    With md.pairs counts over rows, rr_jk (j, k both observed), rm_jk (j observed,
    k missing), mr_jk, mm_jk: pobs_j = fraction observed;
    influx_j = Σ_k mr_jk / Σ_k (mr_jk + rr_jk); outflux_j = Σ_k rm_jk / Σ_k (rm_jk + mm_jk);
    ainb_j = Σ_k mr_jk / (mr_jk + mm_jk) / (p - 1); aout_j = Σ_k rm_jk / (rm_jk + rr_jk)
    / (p - 1) (undefined ratios left out of the sums); fico_j = incomplete rows among the
    rows with j observed. Sums run over all p columns, k = j included, as in R.
    """
    patterns = missing_patterns(data)
    w = patterns.counts.astype(float)
    mis = patterns.missing.astype(float)
    obs = 1.0 - mis
    rr = obs.T @ (w[:, None] * obs)
    rm = obs.T @ (w[:, None] * mis)
    mr = mis.T @ (w[:, None] * obs)
    mm = mis.T @ (w[:, None] * mis)
    p = len(patterns.columns)
    incomplete = mis.any(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "pobs": obs.T @ w / w.sum(),
                "influx": mr.sum(axis=1) / (mr + rr).sum(axis=1),
                "outflux": rm.sum(axis=1) / (rm + mm).sum(axis=1),
                "ainb": np.nansum(mr / (mr + mm), axis=1) / (p - 1),
                "aout": np.nansum(rm / (rm + rr), axis=1) / (p - 1),
                "fico": obs.T @ (w * incomplete) / (obs.T @ w),
            },
            index=patterns.columns,
        )
    return table
