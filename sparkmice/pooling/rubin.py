"""Rubin's rules: pool m complete-data estimates into one inference, as R mice's `pool()`.

For one term with estimates Q_1..Q_m and variances U_1..U_m (Rubin 1987, ch. 3):

    qbar = mean(Q)                      (3.1.2)
    ubar = mean(U)                      (3.1.3)
    b    = var(Q), denominator m - 1    (3.1.4)
    t    = ubar + (1 + 1/m) b           (3.1.5)
    riv  = (1 + 1/m) b / ubar           (3.1.7)
    lambda = (1 + 1/m) b / t
    fmi  = (riv + 2/(df + 3)) / (1 + riv)

and df from Barnard & Rubin (1999) (`barnard_rubin_df`). The summary columns (statistic,
p_value, conf_low, conf_high) are those of R mice's `summary(pool(fit), conf.int = TRUE)`:
Student t with df degrees of freedom. Column names follow R's with `.` spelled `_`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import special

from sparkmice.pooling.results import stack_estimates

POOLED_COLUMNS = (
    "term", "m", "estimate", "ubar", "b", "t", "dfcom", "df", "riv", "lambda", "fmi",
    "std_error", "statistic", "p_value", "conf_low", "conf_high",
)  # fmt: skip

LAMBDA_FLOOR = 1e-4  # R mice's barnard.rubin() floors lambda here, so df stays finite at b = 0


class PoolableFits(Protocol):
    """What `pool` needs from the analyses of m imputations (see sparkmice.analysis).
    Read-only, so that frozen dataclasses such as AnalysisFits provide it."""

    @property
    def terms(self) -> tuple[str, ...]: ...
    @property
    def estimates(self) -> np.ndarray: ...  # (m, p)
    @property
    def covariances(self) -> np.ndarray: ...  # (m, p, p)
    @property
    def dfcom(self) -> float: ...


@dataclass(frozen=True)
class ScalarPool:
    """Pooled inference for one scalar, the fields of R mice's `pool.scalar()`."""

    m: int
    qhat: np.ndarray
    u: np.ndarray
    qbar: float
    ubar: float
    b: float
    t: float
    df: float
    r: float
    fmi: float


def barnard_rubin_df(m: int, b: np.ndarray, t: np.ndarray, dfcom: float) -> np.ndarray:
    """Barnard & Rubin (1999) small-sample degrees of freedom of the pooled t statistic.

    df_old = (m - 1)/lambda^2 (Rubin 1987, 3.1.6) with lambda = (1 + 1/m) b/t floored at 1e-4
    as R mice does; df_obs = (dfcom + 1)/(dfcom + 3) dfcom (1 - lambda);
    df = df_old df_obs / (df_old + df_obs), or df_old when dfcom is infinite.
    """
    lam = np.maximum((1.0 + 1.0 / m) * np.asarray(b, float) / np.asarray(t, float), LAMBDA_FLOOR)
    df_old = (m - 1) / lam**2
    if np.isinf(dfcom):
        return df_old
    df_obs = (dfcom + 1.0) / (dfcom + 3.0) * dfcom * (1.0 - lam)
    return df_old * df_obs / (df_old + df_obs)


def _check_m(m: int) -> None:
    if m < 2:
        raise ValueError(
            f"pooling needs at least 2 imputations; got m = {m}. Impute with m >= 2 "
            "(m = 5 to 20 is usual), or read all imputations of the table."
        )


def pool_scalar(Q: np.ndarray, U: np.ndarray, n: float = np.inf, k: int = 1) -> ScalarPool:
    """Pool m estimates Q of one scalar with variances U, as R mice's `pool.scalar()`.

    `n` is the sample size and `k` the number of parameters, so dfcom = n - k (Inf by
    default, which gives Rubin's 1987 df). Rule "rubin1987" only.
    """
    q = np.asarray(Q, dtype=float)
    u = np.asarray(U, dtype=float)
    if q.shape != u.shape or q.ndim != 1:
        raise ValueError(f"Q and U must be 1-d of equal length; got shapes {q.shape}, {u.shape}")
    m = len(q)
    _check_m(m)
    qbar, ubar, b = float(q.mean()), float(u.mean()), float(q.var(ddof=1))
    t = ubar + (1.0 + 1.0 / m) * b
    r = (1.0 + 1.0 / m) * b / ubar
    df = float(barnard_rubin_df(m, np.array(b), np.array(t), n - k))
    fmi = (r + 2.0 / (df + 3.0)) / (r + 1.0)
    return ScalarPool(m, q, u, qbar, ubar, b, t, df, r, fmi)


def _as_variances(v: np.ndarray, m: int, p: int) -> np.ndarray:
    """Per-imputation variances (m, p) from variances (m, p) or covariances (m, p, p)."""
    if v.shape == (m, p):
        return v
    if v.shape == (m, p, p):
        return np.diagonal(v, axis1=1, axis2=2)
    raise ValueError(
        f"variances_or_covs must have shape (m, p) = {(m, p)} or (m, p, p) = {(m, p, p)} "
        f"to match the estimates; got {v.shape}"
    )


def pool_estimates(
    estimates: np.ndarray,
    variances_or_covs: np.ndarray,
    dfcom: float,
    terms: list[str] | tuple[str, ...] | None = None,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Pool estimates (m, p) with variances (m, p) or covariances (m, p, p) by Rubin's rules.

    Returns one row per term with the columns of R mice's `pool()` and
    `summary(pool(), conf.int = TRUE)` (see POOLED_COLUMNS). `dfcom` is the complete-data
    residual df (n - p); `np.inf` gives Rubin's 1987 df. Works for any model fitted
    elsewhere, as long as its estimates are approximately normal.
    """
    q = np.asarray(estimates, dtype=float)
    v = np.asarray(variances_or_covs, dtype=float)
    if q.ndim == 1:  # one term: estimates (m,), variances (m,)
        q, v = q[:, None], v.reshape(-1, 1) if v.ndim == 1 else v
    m, p = q.shape
    _check_m(m)
    u = _as_variances(v, m, p)
    if not dfcom > 0:
        raise ValueError(f"dfcom must be positive (n - p, or inf); got {dfcom}")
    names = [f"x{j + 1}" for j in range(p)] if terms is None else list(terms)
    if len(names) != p:
        raise ValueError(f"got {len(names)} term names for {p} estimates per imputation")

    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t = ubar + (1.0 + 1.0 / m) * b
    df = barnard_rubin_df(m, b, t, dfcom)
    riv = (1.0 + 1.0 / m) * b / ubar
    lam = (1.0 + 1.0 / m) * b / t
    fmi = (riv + 2.0 / (df + 3.0)) / (1.0 + riv)
    se = np.sqrt(t)
    statistic = qbar / se
    p_value = 2.0 * special.stdtr(df, -np.abs(statistic))  # Student t's sf
    half = special.stdtrit(df, 0.5 + conf_level / 2.0) * se  # its quantile
    return pd.DataFrame({
        "term": names, "m": m, "estimate": qbar, "ubar": ubar, "b": b, "t": t,
        "dfcom": float(dfcom), "df": df, "riv": riv, "lambda": lam, "fmi": fmi,
        "std_error": se, "statistic": statistic, "p_value": p_value,
        "conf_low": qbar - half, "conf_high": qbar + half,
    })  # fmt: skip


def pool(
    fits: PoolableFits | Sequence[Any], dfcom: float | None = None, conf_level: float = 0.95
) -> pd.DataFrame:
    """Pool the m analyses of `fit_imputations` or `with_imputations` (any PoolableFits), or
    a list of m fitted models (see `sparkmice.pooling.results.estimates_of`), by Rubin's rules.

    dfcom defaults to the fits' own (n - p of the first imputation's fit, as R mice's
    `get.dfcom`). Returns the table of `pool_estimates`.
    """
    if isinstance(fits, Sequence):
        fits = stack_estimates(fits)
    return pool_estimates(
        fits.estimates,
        fits.covariances,
        fits.dfcom if dfcom is None else dfcom,
        terms=fits.terms,
        conf_level=conf_level,
    )


def summary(pooled: pd.DataFrame) -> pd.DataFrame:
    """The columns of R's `summary(pool(fit), conf.int = TRUE)` from a pooled table."""
    cols = ["term", "estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high"]
    return pooled[[c for c in ["method", *cols] if c in pooled.columns]]
