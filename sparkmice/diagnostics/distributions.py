"""Observed versus imputed values per incomplete variable, without collecting rows.

R mice's ``densityplot`` and ``stripplot`` compare, per imputation, the distribution of
the imputed values with that of the observed ones. Here both sides are reduced to counts
by aggregations: histogram counts over fixed bin edges for continuous variables and level
counts for categorical ones.

The imputed cells need no row ids: observed cells are the same in every imputation, so
counts(imputed values of imputation k) = counts(all values of imputation k) -
counts(observed values in the original). The two count tables come from one aggregation
each. As in R's ``complete(imp, "long", include = TRUE)``, imputation 0 denotes the
observed data. Densities are Gaussian kernel estimates from the binned counts (R's
``density`` bins its data too), with R's default bandwidth ``bw.nrd0``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sparkmice.diagnostics.missingness import is_spark_frame
from sparkmice.names import IMPUTATION

DEFAULT_BINS = 64

__all__ = ["DEFAULT_BINS", "bin_edges", "density_curves", "histograms", "level_counts"]


def _check_columns(frame: Any, variables: list[str], what: str) -> None:
    """Raise when ``frame`` lacks any of ``variables``."""
    missing = [v for v in variables if v not in frame.columns]
    if missing:
        raise ValueError(f"The {what} has no column(s) {missing}; it has {list(frame.columns)}.")


def _same_engine(imputed: Any, original: Any) -> Any:
    """``original`` on the engine of ``imputed`` (a pandas original becomes a Spark one)."""
    if is_spark_frame(imputed) and isinstance(original, pd.DataFrame):
        return imputed.sparkSession.createDataFrame(original)
    if isinstance(imputed, pd.DataFrame) and is_spark_frame(original):
        raise TypeError(
            "The imputed table is pandas but the original is a Spark DataFrame; "
            "pass the imputed table as a Spark DataFrame too."
        )
    return original


def _spark_double(frame: Any, name: str) -> Any:
    """Column ``name`` as double with NaN turned into null."""
    from pyspark.sql import functions as F

    value = frame[name].cast("double")
    return F.nanvl(value, F.lit(None).cast("double"))


def _pandas_double(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as a float64 array, missing as NaN."""
    return pd.to_numeric(frame[name]).to_numpy(dtype=float, na_value=np.nan)


def bin_edges(
    imputed: Any, variables: list[str], bins: int = DEFAULT_BINS
) -> dict[str, np.ndarray]:
    """Equal-width edges over [min, max] of each variable in the long imputed table.

    edges_i = lo + i · w, w = (hi - lo) / bins (w = 1 when hi = lo). The observed values
    are part of every imputation, so the range covers observed and imputed values.
    """
    if bins < 1:
        raise ValueError(f"The 'bins' argument must be a positive integer. Got {bins}.")
    _check_columns(imputed, variables, "imputed table")
    if is_spark_frame(imputed):
        from pyspark.sql import functions as F

        aggregates = []
        for i, name in enumerate(variables):
            value = _spark_double(imputed, name)
            aggregates += [F.min(value).alias(f"lo{i}"), F.max(value).alias(f"hi{i}")]
        row = imputed.agg(*aggregates).collect()[0]
        bounds = [(row[f"lo{i}"], row[f"hi{i}"]) for i in range(len(variables))]
    else:
        bounds = [
            (np.nanmin(v), np.nanmax(v)) if np.isfinite(v).any() else (None, None)
            for v in (_pandas_double(imputed, name) for name in variables)
        ]
    edges = {}
    for name, (lo, hi) in zip(variables, bounds, strict=True):
        if lo is None:
            raise ValueError(f"Variable {name!r} has no values in the imputed table.")
        lo, hi = float(lo), float(hi)
        width = (hi - lo) / bins if hi > lo else 1.0
        edges[name] = lo + width * np.arange(bins + 1)
    return edges


def _spark_bin_counts(frame: Any, edges: dict[str, np.ndarray], imputation: Any) -> pd.DataFrame:
    """Counts per (imputation, variable, bin) by one Spark aggregation.

    bin = clip(floor((x - lo) / w), 0, B - 1): the same IEEE double operations as numpy.
    """
    from pyspark.sql import functions as F

    cells = []
    for name, e in edges.items():
        lo, width, last = float(e[0]), float(e[1] - e[0]), len(e) - 2
        value = _spark_double(frame, name)
        scaled = F.floor((value - F.lit(lo)) / F.lit(width))
        # greatest/least skip nulls, so keep missing values null explicitly
        index = F.when(value.isNotNull(), F.least(F.greatest(scaled, F.lit(0)), F.lit(last)))
        cells.append(F.struct(F.lit(name).alias("variable"), index.alias("bin")))
    exploded = frame.select(imputation.alias("imputation"), F.explode(F.array(*cells)).alias("c"))
    counts = (
        exploded.where(F.col("c.bin").isNotNull())
        .groupBy("imputation", F.col("c.variable").alias("variable"), F.col("c.bin").alias("bin"))
        .count()
        .collect()
    )
    return pd.DataFrame(
        [r.asDict() for r in counts], columns=["imputation", "variable", "bin", "count"]
    )


def _pandas_bin_counts(
    frame: pd.DataFrame, edges: dict[str, np.ndarray], imputation: np.ndarray
) -> pd.DataFrame:
    """Counts per (imputation, variable, bin) of a pandas frame; same binning as Spark."""
    parts = []
    for name, e in edges.items():
        x = _pandas_double(frame, name)
        ok = ~np.isnan(x)
        index = np.clip(np.floor((x[ok] - e[0]) / (e[1] - e[0])), 0, len(e) - 2).astype(np.int64)
        counted = pd.DataFrame({"imputation": imputation[ok], "bin": index}).value_counts()
        part = counted.rename("count").reset_index()
        part["variable"] = name
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _imputations(imputed: Any) -> list[int]:
    """The imputation numbers present in the long table."""
    if is_spark_frame(imputed):
        rows = imputed.select(IMPUTATION).distinct().collect()
        return sorted(int(r[0]) for r in rows)
    return sorted(int(k) for k in pd.unique(imputed[IMPUTATION]))


def _subtract_observed(
    name: str,
    imputations: list[int],
    totals: dict[int, np.ndarray],
    observed: np.ndarray,
    unit: str,
) -> dict[int, np.ndarray]:
    """Imputed counts per imputation = all counts - observed counts; checks the result."""
    result = {0: observed}
    for k in imputations:
        difference = totals.get(k, np.zeros_like(observed)) - observed
        if (difference < 0).any():
            raise ValueError(
                f"The original data do not match imputation {k} of variable {name!r}: it has "
                f"more observed values in some {unit} than the imputed table. Pass the data "
                "the imputation was run on."
            )
        result[k] = difference
    return result


def histograms(
    imputed: Any, original: Any, variables: list[str], bins: int = DEFAULT_BINS
) -> pd.DataFrame:
    """Histogram counts of observed (imputation 0) and imputed values per imputation.

    ``imputed``: the long table (a column ``_imputation`` = 1..m), pandas or Spark;
    ``original``: the incomplete input. Returns columns variable, imputation, bin, left,
    right, count, with every bin of every (variable, imputation). A value x falls in bin
    clip(floor((x - left_0) / w), 0, B - 1): [left, right) up to rounding, the last bin
    closed; see :func:`bin_edges`.
    """
    _check_columns(original, variables, "original data")
    original = _same_engine(imputed, original)
    edges = bin_edges(imputed, variables, bins)
    imputations = _imputations(imputed)
    if is_spark_frame(imputed):
        from pyspark.sql import functions as F

        every = _spark_bin_counts(imputed, edges, imputed[IMPUTATION].cast("int"))
        observed = _spark_bin_counts(original, edges, F.lit(0))
    else:
        every = _pandas_bin_counts(imputed, edges, imputed[IMPUTATION].to_numpy(dtype=np.int64))
        observed = _pandas_bin_counts(original, edges, np.zeros(len(original), dtype=np.int64))
    frames = []
    for name, e in edges.items():

        def dense(rows: pd.DataFrame, e: np.ndarray = e) -> np.ndarray:
            out = np.zeros(len(e) - 1, dtype=np.int64)
            np.add.at(out, rows["bin"].to_numpy(dtype=np.int64), rows["count"].to_numpy())
            return out

        mine = every[every["variable"] == name]
        totals = {int(k): dense(g) for k, g in mine.groupby("imputation")}
        counts = _subtract_observed(
            name, imputations, totals, dense(observed[observed["variable"] == name]), "bin"
        )
        for k, c in counts.items():
            frames.append(
                pd.DataFrame(
                    {
                        "variable": name,
                        "imputation": k,
                        "bin": np.arange(len(c)),
                        "left": e[:-1],
                        "right": e[1:],
                        "count": c,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _label(value: Any) -> str:
    """A level's label: integral numbers without a decimal point (1.0 and 1 -> "1")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return str(value)


def _value_counts(frame: Any, name: str, imputation: Any) -> dict[int, dict[str, int]]:
    """Counts per imputation and level label of one variable (one aggregation)."""
    counts: dict[int, dict[str, int]] = {}
    if is_spark_frame(frame):
        rows = (
            frame.select(imputation.alias("k"), frame[name].alias("v"))
            .where("v IS NOT NULL")
            .groupBy("k", "v")
            .count()
            .collect()
        )
        pairs = [(int(r["k"]), r["v"], int(r["count"])) for r in rows]
    else:
        table = pd.DataFrame({"k": imputation, "v": frame[name].to_numpy()}).dropna()
        pairs = [(int(k), v, int(c)) for (k, v), c in table.value_counts().items()]
    for k, value, count in pairs:
        if isinstance(value, float) and np.isnan(value):
            continue
        level = counts.setdefault(k, {})
        level[_label(value)] = level.get(_label(value), 0) + count
    return counts


def level_counts(
    imputed: Any, original: Any, variables: list[str], levels: dict[str, list[Any]] | None = None
) -> pd.DataFrame:
    """Level counts and proportions of observed (imputation 0) and imputed values.

    Returns columns variable, imputation, level (a label: 1.0 and 1 are both "1"),
    count, proportion (within variable and imputation). Levels follow ``levels[name]``
    when given (e.g. from the run's config), then any other level in sorted order.
    """
    _check_columns(original, variables, "original data")
    _check_columns(imputed, variables, "imputed table")
    original = _same_engine(imputed, original)
    imputations = _imputations(imputed)
    levels = levels or {}
    frames = []
    for name in variables:
        if is_spark_frame(imputed):
            from pyspark.sql import functions as F

            every = _value_counts(imputed, name, imputed[IMPUTATION].cast("int"))
            observed = _value_counts(original, name, F.lit(0)).get(0, {})
        else:
            every = _value_counts(imputed, name, imputed[IMPUTATION].to_numpy(dtype=np.int64))
            observed = _value_counts(original, name, np.zeros(len(original), np.int64)).get(0, {})
        order = [_label(v) for v in levels.get(name) or []]
        seen = set(observed).union(*every.values())
        order += sorted(seen - set(order))

        def dense(c: dict[str, int], order: list[str] = order) -> np.ndarray:
            return np.array([c.get(level, 0) for level in order], dtype=np.int64)

        totals = {k: dense(c) for k, c in every.items()}
        counts = _subtract_observed(name, imputations, totals, dense(observed), "level")
        for k, c in counts.items():
            with np.errstate(invalid="ignore"):
                proportion = c / c.sum()
            frames.append(
                pd.DataFrame(
                    {
                        "variable": name,
                        "imputation": k,
                        "level": order,
                        "count": c,
                        "proportion": proportion,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _binned_quantile(edges: np.ndarray, counts: np.ndarray, q: float) -> float:
    """Quantile q of binned data, interpolating the CDF linearly within bins."""
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    return float(np.interp(q, cdf, edges))


def _bandwidth(edges: np.ndarray, counts: np.ndarray) -> float:
    """R's bw.nrd0 from binned data, at least one bin width.

    h = 0.9 · min(sd, IQR / 1.34) · n^(-1/5), sd and IQR from the bin midpoints/CDF
    (Silverman 1986, eq. 3.31).
    """
    n = counts.sum()
    mid = (edges[:-1] + edges[1:]) / 2
    mean = (counts * mid).sum() / n
    sd = np.sqrt((counts * (mid - mean) ** 2).sum() / max(n - 1, 1))
    iqr = _binned_quantile(edges, counts, 0.75) - _binned_quantile(edges, counts, 0.25)
    spread = min(sd, iqr / 1.34) if iqr > 0 else sd
    width = edges[1] - edges[0]
    return float(max(0.9 * spread * n**-0.2, width))


def density_curves(hist: pd.DataFrame, points: int = 256) -> pd.DataFrame:
    """Gaussian kernel densities from :func:`histograms` output, per variable/imputation.

    f(x) = Σ_b c_b φ((x - m_b) / h) / (n h) over bins b with midpoint m_b and count c_b;
    h from :func:`_bandwidth`. The grid spans the bins plus 3 h on either side (as R's
    ``density(cut = 3)``). Groups without values are left out. Returns columns variable,
    imputation, x, density.
    """
    frames = []
    for name, rows in hist.groupby("variable", sort=False):
        groups = {k: g.sort_values("bin") for k, g in rows.groupby("imputation")}
        edges = np.append(rows["left"].unique(), rows["right"].max())
        curves = {k: g["count"].to_numpy(dtype=float) for k, g in groups.items()}
        curves = {k: c for k, c in curves.items() if c.sum() > 0}
        bandwidths = {k: _bandwidth(edges, c) for k, c in curves.items()}
        if not curves:
            continue
        reach = 3 * max(bandwidths.values())
        x = np.linspace(edges[0] - reach, edges[-1] + reach, points)
        mid = (edges[:-1] + edges[1:]) / 2
        for k, c in curves.items():
            h = bandwidths[k]
            z = (x[:, None] - mid[None, :]) / h
            density = (np.exp(-0.5 * z * z) @ c) / (c.sum() * h * np.sqrt(2 * np.pi))
            frames.append(
                pd.DataFrame({"variable": name, "imputation": k, "x": x, "density": density})
            )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["variable", "imputation", "x", "density"])
    )
