"""Pooled R^2 of a linear model over m imputations, as R mice's `pool.r.squared()`.

Harel (2009): pool the Fisher z-transform of R, z = atanh(sqrt(R^2)), whose variance is
1/(n - 3), by Rubin's rules (`pool_scalar` with infinite dfcom), and transform back:
R^2 = tanh(z)^2. The 95% limits use z +/- 1.96 sqrt(t), as mice does.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from sparkmice.pooling.rubin import pool_scalar


class RSquaredFits(Protocol):
    """Per-imputation R^2, adjusted R^2 and number of rows of m gaussian fits."""

    r_squared: np.ndarray
    adj_r_squared: np.ndarray
    nobs: np.ndarray


def pool_r_squared(fits: RSquaredFits, adjusted: bool = False) -> pd.DataFrame:
    """One-row table (est, lo 95, hi 95, fmi) of the pooled (adjusted) R^2."""
    if adjusted:
        a = np.asarray(fits.adj_r_squared, dtype=float)
        r = np.sign(a) * np.sqrt(np.abs(a))
    else:
        r = np.sqrt(np.asarray(fits.r_squared, dtype=float))
    if np.any(np.isnan(r)):
        raise ValueError(
            "R^2 is defined for gaussian fits only; fit the model with family='gaussian'"
        )
    pooled = pool_scalar(np.arctanh(r), 1.0 / (np.asarray(fits.nobs, dtype=float) - 3.0))
    half = 1.96 * np.sqrt(pooled.t)
    row = {
        "est": np.tanh(pooled.qbar) ** 2,
        "lo 95": np.tanh(pooled.qbar - half) ** 2,
        "hi 95": np.tanh(pooled.qbar + half) ** 2,
        "fmi": pooled.fmi,
    }
    return pd.DataFrame([row], index=["adj R^2" if adjusted else "R^2"])
