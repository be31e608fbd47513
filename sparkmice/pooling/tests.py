"""Multiparameter tests of two nested models over m imputations: D1, D2 and D3.

Each returns the F statistic, df1 = k (number of extra terms), df2, the p-value P(F > stat)
and riv (the average relative increase in variance), as R mice's `D1()`, `D2()`, `D3()`
(mice 3.15; D1 and D2 delegate to mitml's `testModels`).

- D1: multivariate Wald test on the pooled estimates and full covariances
  (Li, Raghunathan & Rubin 1991); with a finite dfcom, df2 by Reiter (2007), as mice does.
- D2: combines the m complete-data Wald chi-squares (Li, Meng, Raghunathan & Rubin 1991).
- D3: likelihood-ratio test (Meng & Rubin 1992), which needs the m log-likelihoods at the
  fitted and at the pooled coefficients.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import special

from sparkmice.pooling.rubin import PoolableFits, _check_m


class LikelihoodFits(PoolableFits, Protocol):
    """Fits that can give -2 log-likelihood per imputation, as fitted and at given betas."""

    @property
    def minus2_loglik(self) -> np.ndarray: ...  # (m,)

    def minus2_loglik_at(self, beta: np.ndarray) -> np.ndarray:
        """-2 log-likelihood of each imputation's data with the coefficients fixed at beta."""
        ...


@dataclass(frozen=True)
class MultiparameterTest:
    """Result of D1/D2/D3: F statistic with (df1, df2) degrees of freedom."""

    test: str
    statistic: float
    df1: int
    df2: float
    p_value: float
    riv: float
    dropped: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        row = {
            "test": self.test, "statistic": self.statistic, "df1": self.df1, "df2": self.df2,
            "p_value": self.p_value, "riv": self.riv, "dropped": ",".join(self.dropped),
        }  # fmt: skip
        return pd.DataFrame([row])


def _old_f_df2(k: int, m: int, r: float) -> float:
    """Denominator df of D1/D3 without dfcom (Li, Raghunathan & Rubin 1991, eq. 1.19)."""
    t = k * (m - 1)
    if t > 4:
        return 4.0 + (t - 4) * (1.0 + (1.0 - 2.0 / t) / r) ** 2
    return t * (1.0 + 1.0 / k) * (1.0 + 1.0 / r) ** 2 / 2.0


def _reiter_df2(k: int, m: int, r: float, dfcom: float) -> float:
    """Small-sample denominator df of D1 (Reiter 2007, eq. 1-2), as mitml computes it."""
    t = k * (m - 1)
    if t <= 4:
        warnings.warn(
            f"D1's small-sample df2 is unreliable with k(m - 1) = {t} <= 4; use more "
            "imputations (m > 5) for a trustworthy test",
            stacklevel=3,
        )
    a = r * t / (t - 2)
    vstar = (dfcom + 1) / (dfcom + 3) * dfcom
    with np.errstate(divide="ignore"):
        c0 = np.float64(1.0) / (t - 4)
    c1 = vstar - 2 * (1 + a)
    c2 = vstar - 4 * (1 + a)
    z = (
        1 / c2
        + c0 * (a**2 * c1 / ((1 + a) ** 2 * c2))
        + c0 * (8 * a**2 * c1 / ((1 + a) * c2**2) + 4 * a**2 / ((1 + a) * c2))
        + c0 * (4 * a**2 / (c2 * c1) + 16 * a**2 * c1 / c2**3)
        + c0 * (8 * a**2 / c2**2)
    )
    return float(4 + 1 / z)


def _result(
    test: str, f: float, k: int, df2: float, r: float, dropped: list[str]
) -> MultiparameterTest:
    # the F distribution's sf; with infinite df2 (no between-imputation variance) it is
    # the chi-square's of k * f, as R's pf(f, k, Inf), where fdtrc gives nan
    p = float(special.chdtrc(k, k * f) if np.isinf(df2) else special.fdtrc(k, df2, f))
    return MultiparameterTest(test, float(f), k, float(df2), p, float(r), tuple(dropped))


def d1_statistic(
    qhat: np.ndarray, uhat: np.ndarray, dfcom: float = np.inf
) -> tuple[float, int, float, float]:
    """D1 from estimates (m, k) and covariances (m, k, k) of the k tested parameters (= 0).

    r = (1 + 1/m) tr(B Ubar^-1)/k; D1 = qbar' ((1 + r) Ubar)^-1 qbar / k.
    Returns (D1, k, df2, r).
    """
    m, k = qhat.shape
    qbar = qhat.mean(axis=0)
    ubar = uhat.mean(axis=0)
    b = np.cov(qhat, rowvar=False, ddof=1).reshape(k, k)
    r = (1.0 + 1.0 / m) * np.trace(np.linalg.solve(ubar, b)) / k
    f = float(qbar @ np.linalg.solve((1.0 + r) * ubar, qbar) / k)
    df2 = _old_f_df2(k, m, r) if np.isinf(dfcom) else _reiter_df2(k, m, r, dfcom)
    return f, k, df2, r


def d2_statistic(d: np.ndarray, k: int) -> tuple[float, int, float, float]:
    """D2 from m complete-data chi-squares d with k df each.

    r = (1 + 1/m) var(sqrt(d)); D2 = (mean(d)/k - (m + 1)/(m - 1) r)/(1 + r);
    df2 = k^(-3/m) (m - 1) (1 + 1/r)^2. Returns (D2, k, df2, r).
    """
    m = len(d)
    r = (1.0 + 1.0 / m) * np.var(np.sqrt(d), ddof=1)
    f = (np.mean(d) / k - (m + 1) / (m - 1) * r) / (1.0 + r)
    df2 = k ** (-3.0 / m) * (m - 1) * (1.0 + 1.0 / r) ** 2 if r > 0 else np.inf  # b = 0
    return float(f), k, float(df2), float(r)


def d3_statistic(
    dev1_fitted: np.ndarray,
    dev0_fitted: np.ndarray,
    dev1_pooled: np.ndarray,
    dev0_pooled: np.ndarray,
    k: int,
) -> tuple[float, int, float, float]:
    """D3 from -2 log-likelihoods (m,) of the full (1) and null (0) models.

    dM = mean(dev0_fitted - dev1_fitted), dL = mean(dev0_pooled - dev1_pooled);
    r = (m + 1)/(k (m - 1)) (dM - dL); D3 = dL/(k (1 + r)). Returns (D3, k, df2, r).
    """
    m = len(dev1_fitted)
    d_m = np.mean(np.asarray(dev0_fitted) - np.asarray(dev1_fitted))
    d_l = np.mean(np.asarray(dev0_pooled) - np.asarray(dev1_pooled))
    r = (m + 1) / (k * (m - 1)) * (d_m - d_l)
    f = d_l / (k * (1.0 + r))
    return float(f), k, _old_f_df2(k, m, r), float(r)


def _extra_terms(fit1: PoolableFits, fit0: PoolableFits | None) -> list[str]:
    """Terms of fit1 absent from fit0, after checking that fit0 is nested in fit1."""
    terms1 = list(fit1.terms)
    m1 = len(fit1.estimates)
    _check_m(m1)
    if fit0 is None:
        return terms1
    if len(fit0.estimates) != m1:
        raise ValueError(
            f"the two models were fitted on different numbers of imputations "
            f"({m1} and {len(fit0.estimates)}); fit both on the same imputed data"
        )
    outside = [t for t in fit0.terms if t not in terms1]
    extra = [t for t in terms1 if t not in fit0.terms]
    if outside or not extra:
        why = (f"terms {outside} of the smaller model are not in the larger one" if outside
               else "both models have the same terms")  # fmt: skip
        raise ValueError(
            f"models are not nested: {why}. Pass the larger model first and a smaller model "
            "whose terms are a subset of its terms (same formula with terms removed)"
        )
    return extra


def D1(
    fit1: PoolableFits, fit0: PoolableFits | None = None, dfcom: float | None = None
) -> MultiparameterTest:
    """Multivariate Wald test that the terms of fit1 absent from fit0 are all zero.

    fit0 = None tests all terms of fit1. dfcom defaults to fit1's (n - p); np.inf gives the
    large-sample df2. Only fit0's term names are used.
    """
    extra = _extra_terms(fit1, fit0)
    idx = [list(fit1.terms).index(t) for t in extra]
    qhat = np.asarray(fit1.estimates)[:, idx]
    uhat = np.asarray(fit1.covariances)[:, idx][:, :, idx]
    f, k, df2, r = d1_statistic(qhat, uhat, fit1.dfcom if dfcom is None else dfcom)
    return _result("D1", f, k, df2, r, extra)


def D2(fit1: PoolableFits, fit0: PoolableFits | None = None) -> MultiparameterTest:
    """Test that the extra terms of fit1 are zero by pooling the m Wald chi-squares."""
    extra = _extra_terms(fit1, fit0)
    idx = [list(fit1.terms).index(t) for t in extra]
    qhat = np.asarray(fit1.estimates)[:, idx]
    uhat = np.asarray(fit1.covariances)[:, idx][:, :, idx]
    d = np.array([q @ np.linalg.solve(u, q) for q, u in zip(qhat, uhat, strict=True)])
    return _result("D2", *d2_statistic(d, len(extra)), extra)


def D3(fit1: LikelihoodFits, fit0: LikelihoodFits) -> MultiparameterTest:
    """Meng-Rubin likelihood-ratio test of fit0 (nested) against fit1.

    Each model's log-likelihood is evaluated on every imputation at its own fit and at its
    pooled coefficients qbar; see `AnalysisFits.minus2_loglik_at` for how (as R mice's
    `fix.coef`).
    """
    extra = _extra_terms(fit1, fit0)
    dev1 = fit1.minus2_loglik_at(np.mean(fit1.estimates, axis=0))
    dev0 = fit0.minus2_loglik_at(np.mean(fit0.estimates, axis=0))
    stat = d3_statistic(fit1.minus2_loglik, fit0.minus2_loglik, dev1, dev0, len(extra))
    return _result("D3", *stat, extra)
