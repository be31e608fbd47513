"""Fit the analysis model on every imputation of a long table (R mice's `with(imp, glm(...))`).

The long table holds all original columns, `_imputation` (1..m) and `_row_id`. A pandas
table is fitted imputation by imputation with statsmodels' GLM; a Spark DataFrame by
distributed IRLS (`sparkmice.analysis.spark`), all m models advancing in one pass over the
data per iteration. Both give an `AnalysisFits`: per imputation the estimates, full
covariance matrix, deviance and number of rows, which `sparkmice.pool` and `D1`/`D2`/`D3`
consume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sparkmice.analysis.design import (
    check_family,
    check_full_rank,
    design_arrays,
    formula_variables,
    model_spec,
)
from sparkmice.analysis.fits import AnalysisFits, check_long
from sparkmice.kernels.glm import mean_and_variance
from sparkmice.names import IMPUTATION

_SM_FAMILY = {"gaussian": "Gaussian", "binomial": "Binomial", "poisson": "Poisson"}
# statsmodels stops when |dev - dev_old| <= atol + rtol |dev_old|: glm.fit's rule, tightened
# tenfold so the pandas and Spark routes agree to well below 1e-8.
_SM_TOL = {"atol": 1e-12, "rtol": 1e-11}


def total_sum_of_squares(y: np.ndarray, intercept: bool) -> float:
    """R's lm: centred TSS with an intercept, uncentred sum of y^2 without."""
    return float(np.sum((y - y.mean()) ** 2) if intercept else np.sum(y**2))


def _covariance_at(x: np.ndarray, beta: np.ndarray, family: str, scale: float) -> np.ndarray:
    """(X'WX)^-1 x dispersion with W at the final estimate.

    statsmodels and R's glm.fit take W from the iterate before the last, which differs from
    it by about sqrt of the deviance tolerance (1e-6 relative); at the estimate itself the
    pandas and Spark routes agree to 1e-10.
    """
    w = mean_and_variance(family, x @ beta)[1]
    return np.linalg.inv((x * w[:, None]).T @ x) * scale


def _fit_pandas(df: pd.DataFrame, formula: str, family: str, dfcom: float | None):
    """Per imputation: statsmodels GLM on the design of one ModelSpec fixed on the whole table
    (statsmodels is imported here: the Spark route does not need it)."""
    import statsmodels.api as sm

    check_long(list(df.columns))
    variables = formula_variables(formula, df.columns)
    spec = model_spec(formula, df[variables])
    terms = tuple(spec.rhs.column_names)
    imputations = tuple(int(k) for k in sorted(df[IMPUTATION].unique()))
    sm_family = getattr(sm.families, _SM_FAMILY[family])()
    data, est, cov, dev, tss, nobs = [], [], [], [], [], []
    for k in imputations:
        y, x = design_arrays(spec, df.loc[df[IMPUTATION] == k, variables], family)
        check_full_rank(x.T @ x, terms, k)
        res = sm.GLM(y, x, family=sm_family).fit(**_SM_TOL)
        data.append((y, x))
        beta = np.asarray(res.params)
        est.append(beta)
        cov.append(_covariance_at(x, beta, family, res.scale))
        dev.append(res.deviance)
        tss.append(total_sum_of_squares(y, "Intercept" in terms) if family == "gaussian"
                   else np.nan)  # fmt: skip
        nobs.append(len(y))

    def restricted_deviance(beta: np.ndarray) -> np.ndarray:
        return np.array([
            sm.GLM(y, np.ones((len(y), 1)), family=sm_family, offset=x @ beta)
            .fit(**_SM_TOL).deviance
            for y, x in data
        ])  # fmt: skip

    return AnalysisFits(
        formula, family, terms, imputations, np.array(est), np.array(cov), np.array(dev),
        np.array(tss), np.array(nobs),
        float(nobs[0] - len(terms)) if dfcom is None else float(dfcom),
        restricted_deviance,
    )  # fmt: skip


def fit_imputations(
    long_df: Any, formula: str, family: str = "gaussian", dfcom: float | None = None
) -> AnalysisFits:
    """Fit `formula` (family gaussian, binomial or poisson) on every imputation of `long_df`.

    `long_df` is a pandas DataFrame (statsmodels GLM per imputation) or a Spark DataFrame
    (distributed IRLS; nothing is collected but sums). dfcom defaults to n - p of the first
    imputation's fit, as R mice's `get.dfcom`.
    """
    check_family(family)
    if isinstance(long_df, pd.DataFrame):
        return _fit_pandas(long_df, formula, family, dfcom)
    if hasattr(long_df, "mapInArrow"):
        from sparkmice.analysis.spark import fit_spark

        return fit_spark(long_df, formula, family, dfcom)
    raise TypeError(f"long_df must be a pandas or Spark DataFrame; got {type(long_df).__name__}")
