"""The analysis model's fits on m imputations (`AnalysisFits`), shared by the pandas and
Spark routes of `fit_imputations`, and the check that a table is a long table of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sparkmice.names import IMPUTATION


@dataclass(frozen=True)
class AnalysisFits:
    """The analysis model fitted on m imputations (arrays are indexed by imputation).

    `restricted_deviance(beta)` gives, per imputation, the deviance of the model whose linear
    predictor is fixed at X beta plus a re-estimated intercept: R mice's `fix.coef`, which
    refits `y ~ offset(X beta)` and so keeps R's implicit intercept. D3 uses it.
    """

    formula: str
    family: str
    terms: tuple[str, ...]
    imputations: tuple[int, ...]
    estimates: np.ndarray  # (m, p)
    covariances: np.ndarray  # (m, p, p)
    deviance: np.ndarray  # (m,)
    null_deviance: np.ndarray  # (m,) total sum of squares for gaussian, else NaN
    nobs: np.ndarray  # (m,)
    dfcom: float
    restricted_deviance: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)

    @property
    def m(self) -> int:
        return len(self.imputations)

    @property
    def variances(self) -> np.ndarray:
        return np.diagonal(self.covariances, axis1=1, axis2=2)

    def _minus2(self, deviance: np.ndarray) -> np.ndarray:
        if self.family == "gaussian":  # ML sigma^2 = RSS/n, as R's logLik.lm
            n = self.nobs
            return n * (np.log(2 * np.pi * deviance / n) + 1.0)
        return np.asarray(deviance, dtype=float)

    @property
    def minus2_loglik(self) -> np.ndarray:
        """-2 log-likelihood per imputation (poisson: up to a constant of the data alone)."""
        return self._minus2(self.deviance)

    def minus2_loglik_at(self, beta: np.ndarray) -> np.ndarray:
        """-2 log-likelihood per imputation at coefficients beta (see restricted_deviance)."""
        return self._minus2(self.restricted_deviance(np.asarray(beta, dtype=float)))

    @property
    def r_squared(self) -> np.ndarray:
        """R^2 = 1 - RSS/TSS per imputation (gaussian only; NaN otherwise)."""
        return 1.0 - self.deviance / self.null_deviance

    @property
    def adj_r_squared(self) -> np.ndarray:
        """Adjusted R^2 = 1 - (1 - R^2)(n - i)/(n - p), i = 1 with an intercept, as R's lm."""
        i = 1.0 if "Intercept" in self.terms else 0.0
        p = len(self.terms)
        return 1.0 - (1.0 - self.r_squared) * (self.nobs - i) / (self.nobs - p)

    def with_dfcom(self, dfcom: float) -> AnalysisFits:
        return dataclasses.replace(self, dfcom=float(dfcom))


def check_long(columns: list[str]) -> None:
    if IMPUTATION not in columns:
        raise ValueError(
            f"the table has no {IMPUTATION!r} column (columns: {columns}); pass the long "
            "table of imputations (sparkmice's output, one partition per imputation) or, for "
            "the original data, use fit_complete_cases / fit_mean_imputed"
        )
