"""What Rubin's rules need from one analysis, taken from the fitted object (R mice's
`tidy()` + `get.dfcom()` step of `pool()`), for any model the user fits himself.

`estimates_of(result)` accepts
- a statsmodels results object (OLS, GLM, Logit, ...: `params`, `cov_params()`); for a
  mixed model (MixedLM) only the fixed effects (`fe_params`, the first `k_fe` rows and
  columns of the covariance), as R mice pools `lmer` fits by their fixed effects;
- a lifelines `CoxPHFitter` (or any fitter with `params_` and `variance_matrix_`): the log
  hazard ratios;
- a tuple `(estimates, covariance, dfcom)`: numbers (one scalar with its variance) or a
  vector with a covariance matrix (or a vector of variances), or a pandas Series for named
  terms; `ModelEstimates` itself.

dfcom follows R mice's `get.dfcom`: the model's residual df when it has one
(statsmodels' `df_resid`), else the number of rows minus the number of estimates (a Cox
model: n - p), at least 1. Duck-typed: this module imports neither statsmodels nor
lifelines, so it sits with the kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ACCEPTED = (
    "a statsmodels results object, a lifelines CoxPHFitter, or a tuple "
    "(estimates, covariance, dfcom)"
)


@dataclass(frozen=True)
class ModelEstimates:
    """One imputation's analysis as typed values: term names, estimates (p,), covariance
    (p, p) and the complete-data df. What a Spark task sends back instead of the model."""

    terms: tuple[str, ...]
    estimates: np.ndarray
    covariance: np.ndarray
    dfcom: float


@dataclass(frozen=True)
class StackedEstimates:
    """The m analyses of `with_imputations` (or of a list of fits), one row per imputation;
    a `PoolableFits`, so `sparkmice.pool` takes it. dfcom is the first imputation's, as R
    mice's `get.dfcom`."""

    terms: tuple[str, ...]
    imputations: tuple[int, ...]
    estimates: np.ndarray  # (m, p)
    covariances: np.ndarray  # (m, p, p)
    dfcom: float

    @property
    def m(self) -> int:
        return len(self.imputations)

    @property
    def variances(self) -> np.ndarray:
        return np.diagonal(self.covariances, axis1=1, axis2=2)


def _dfcom_from(result: Any, n_estimates: int) -> float:
    """R mice's get.dfcom: residual df, else nobs - k, else infinity; at least 1."""
    df_resid = getattr(result, "df_resid", None)
    if df_resid is not None and np.isfinite(float(df_resid)):
        return max(float(df_resid), 1.0)
    nobs = getattr(result, "nobs", None)
    if nobs is None:
        nobs = getattr(result, "_n_examples", None)  # lifelines' fitted row count
    if nobs is None:
        return float("inf")
    return max(float(nobs) - n_estimates, 1.0)


def _names(values: Any, p: int) -> tuple[str, ...]:
    index = getattr(values, "index", None)
    if index is not None and len(index) == p:
        return tuple(str(name) for name in index)
    return tuple(f"x{j + 1}" for j in range(p))


def _from_tuple(value: tuple) -> ModelEstimates:
    if len(value) != 3:
        raise ValueError(
            f"an analysis returned a tuple of {len(value)} items; return "
            "(estimates, covariance, dfcom), e.g. (mean, variance_of_mean, n - 1)"
        )
    raw_q, raw_v, dfcom = value
    q = np.atleast_1d(np.asarray(raw_q, dtype=float))
    v = np.asarray(raw_v, dtype=float)
    p = len(q)
    if q.ndim != 1:
        raise ValueError(f"estimates must be a number or a vector; got shape {q.shape}")
    if v.shape in ((), (p,)):
        v = np.diag(np.atleast_1d(v))
    if v.shape != (p, p):
        raise ValueError(
            f"covariance must be ({p}, {p}) (or {p} variances) for {p} estimates; got {v.shape}"
        )
    return ModelEstimates(_names(raw_q, p), q, v, float(dfcom))


def estimates_of(result: Any) -> ModelEstimates:
    """The typed values of one analysis (see the module docstring); ValueError otherwise."""
    if isinstance(result, ModelEstimates):
        return result
    if isinstance(result, tuple):
        return _from_tuple(result)
    if hasattr(result, "params_") and hasattr(result, "variance_matrix_"):  # lifelines
        params = result.params_
        q = np.asarray(params, dtype=float)
        cov = np.asarray(result.variance_matrix_, dtype=float)
        return ModelEstimates(_names(params, len(q)), q, cov, _dfcom_from(result, len(q)))
    if hasattr(result, "fe_params") and hasattr(result, "k_fe"):  # statsmodels MixedLM
        params = result.fe_params
        k = int(result.k_fe)
        cov = np.asarray(result.cov_params(), dtype=float)[:k, :k]
        q = np.asarray(params, dtype=float)
        return ModelEstimates(_names(params, k), q, cov, _dfcom_from(result, k))
    if hasattr(result, "params") and hasattr(result, "cov_params"):  # statsmodels
        params = result.params
        q = np.asarray(params, dtype=float)
        cov = np.asarray(result.cov_params(), dtype=float)
        names = getattr(getattr(result, "model", None), "exog_names", None)
        terms = _names(params, len(q)) if names is None else tuple(str(n) for n in names)
        return ModelEstimates(terms, q, cov, _dfcom_from(result, len(q)))
    raise ValueError(f"an analysis returned {type(result).__name__}; return {ACCEPTED}")


def stack_estimates(
    results: Sequence[Any], imputations: Sequence[int] | None = None
) -> StackedEstimates:
    """The analyses of m imputations as one `StackedEstimates`; every analysis must give the
    same terms in the same order (else Rubin's rules would mix different parameters)."""
    found = [estimates_of(r) for r in results]
    if not found:
        raise ValueError("no analyses to pool: pass one fitted model per imputation")
    ks = tuple(range(1, len(found) + 1)) if imputations is None else tuple(imputations)
    if len(ks) != len(found):
        raise ValueError(f"{len(found)} analyses but {len(ks)} imputation numbers")
    terms = found[0].terms
    for k, e in zip(ks, found, strict=True):
        if e.terms != terms:
            raise ValueError(
                f"imputation {k}'s analysis has terms {list(e.terms)}, the first has "
                f"{list(terms)}; fit the same model (same levels: fix categories) on every "
                "imputation"
            )
    return StackedEstimates(
        terms,
        ks,
        np.stack([e.estimates for e in found]),
        np.stack([e.covariance for e in found]),
        found[0].dfcom,
    )
