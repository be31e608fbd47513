"""Baselines beside MICE: complete-case analysis and mean imputation of the original data.

Both fit the same model once and report it in the columns of the pooled table, with a
`method` column ("cca", "mean"), so a reader sees the bias that MICE removes.

- cca: rows with any missing value in the formula's columns are dropped (R's na.omit).
- mean: a missing predictor gets its column's observed mean (numbers) or most frequent
  value (text, booleans); rows with a missing outcome are dropped, since an outcome set to
  its mean adds rows without information (and is no 0/1 value for binomial).

Inference is that of one complete-data fit: Student t with n - p df for gaussian (as
`summary.lm`), the normal distribution for binomial and poisson (as `summary.glm`).
b, riv, lambda and fmi are NaN: they have no meaning without imputations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sparkmice.analysis.design import check_family, formula_variables
from sparkmice.analysis.fit import fit_imputations
from sparkmice.analysis.fits import AnalysisFits
from sparkmice.analysis.formula import formula_columns
from sparkmice.names import IMPUTATION
from sparkmice.pooling.rubin import POOLED_COLUMNS


def single_fit_table(fits: AnalysisFits, method: str, conf_level: float = 0.95) -> pd.DataFrame:
    """The first imputation's fit as rows of the pooled table, with a `method` column."""
    est = fits.estimates[0]
    var = fits.variances[0]
    se = np.sqrt(var)
    df = fits.dfcom if fits.family == "gaussian" else np.inf
    statistic = est / se
    half = stats.t.ppf(0.5 + conf_level / 2.0, df) * se
    table = pd.DataFrame({
        "term": fits.terms, "m": 1, "estimate": est, "ubar": var, "b": np.nan, "t": var,
        "dfcom": fits.dfcom, "df": df, "riv": np.nan, "lambda": np.nan, "fmi": np.nan,
        "std_error": se, "statistic": statistic,
        "p_value": 2.0 * stats.t.sf(np.abs(statistic), df),
        "conf_low": est - half, "conf_high": est + half,
    })  # fmt: skip
    return table[list(POOLED_COLUMNS)].assign(method=method)


def _split(formula: str, columns) -> tuple[list[str], list[str]]:
    used = formula_variables(formula, columns)
    outcome = sorted(formula_columns(formula)[0])
    return outcome, [v for v in used if v not in outcome]


def _complete_rows(df: Any, subset: list[str]) -> Any:
    """The rows with every column of `subset` observed (on Spark the names quoted: a dot,
    as in R's `Solar.R`, would read as a field of a struct)."""
    if _is_spark(df):
        from sparkmice.io.spark import quoted

        return df.dropna(subset=[quoted(v) for v in subset])
    return df.dropna(subset=subset)


def _is_spark(df: Any) -> bool:
    return not isinstance(df, pd.DataFrame) and hasattr(df, "mapInArrow")


def _one_imputation(df: Any) -> Any:
    if _is_spark(df):
        from pyspark.sql import functions as F

        return df.withColumn(IMPUTATION, F.lit(1))
    return df.assign(**{IMPUTATION: 1})


def fit_complete_cases(
    original_df: Any, formula: str, family: str = "gaussian", dfcom: float | None = None
) -> pd.DataFrame:
    """Complete-case analysis of the original (incomplete) pandas or Spark table."""
    check_family(family)
    outcome, predictors = _split(formula, original_df.columns)
    subset = outcome + predictors
    data = _complete_rows(original_df, subset)
    fits = fit_imputations(_one_imputation(data), formula, family, dfcom)
    return single_fit_table(fits, "cca")


def fit_mean_imputed(
    original_df: Any, formula: str, family: str = "gaussian", dfcom: float | None = None
) -> pd.DataFrame:
    """The model on the original table with missing predictors set to their mean (or mode)."""
    check_family(family)
    outcome, predictors = _split(formula, original_df.columns)
    data = _complete_rows(original_df, outcome)
    if _is_spark(data):
        from pyspark.sql import functions as F

        from sparkmice.io.spark import column, nan_to_null

        data = nan_to_null(data)  # NaN is missing (as everywhere), not a value to average

        types = dict(data.dtypes)
        numeric = [v for v in predictors if types[v] not in ("string", "boolean")]
        fill = data.agg(*[F.mean(column(v)).alias(v) for v in numeric]).collect()[0].asDict() \
            if numeric else {}  # fmt: skip
        for v in predictors:
            if v not in numeric:
                top = data.where(column(v).isNotNull()).groupBy(column(v)).count() \
                    .orderBy(F.desc("count"), column(v)).first()  # fmt: skip
                fill[v] = top[v] if top is not None else None
        for v, value in fill.items():
            data = data.withColumn(v, F.coalesce(column(v), F.lit(value)))
    else:
        fill = {}
        for v in predictors:
            col = data[v]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                fill[v] = col.mean()
            else:
                fill[v] = col.mode(dropna=True).sort_values().iloc[0]
        data = data.fillna(fill)
    fits = fit_imputations(_one_imputation(data), formula, family, dfcom)
    return single_fit_table(fits, "mean")
