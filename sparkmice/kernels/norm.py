"""norm: Bayesian linear regression imputation (Rubin 1987, p. 167; R mice's mice.impute.norm).

Given beta-hat, V = (X'X)^-1 and the residual sum of squares S from the observed rows:
  1. g ~ chi2(df), df = max(n_obs - p, 1);  sigma* = sqrt(S / g)
  2. beta* = beta-hat + sigma* * L z1, L = chol(V) lower, z1 ~ N(0, I)
  3. y_mis = X_mis beta* + sigma* z2, z2 ~ N(0, I)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparkmice.kernels.contract import BlockView, Method, StepData
from sparkmice.kernels.linalg import LeastSquares, least_squares, symmetric_cholesky


@dataclass(frozen=True)
class NormDraw:
    coef: np.ndarray  # beta-hat
    beta: np.ndarray  # beta*
    sigma: float  # sigma*


def draw(ls: LeastSquares, rng: np.random.Generator) -> NormDraw:
    """Steps 1-2: a draw of (beta*, sigma*) from their posterior given the fit."""
    g = rng.chisquare(ls.df)
    sigma = float(np.sqrt(ls.rss / g))
    z = rng.standard_normal(len(ls.coef))
    beta = ls.coef + sigma * (symmetric_cholesky(ls.v) @ z)
    return NormDraw(ls.coef, beta, sigma)


def parameters(step: StepData, rng: np.random.Generator) -> NormDraw:
    """Fit from the observed rows' moments, then draw (steps 1-2)."""
    return draw(least_squares(step.moments), rng)


def impute(view: BlockView, params: NormDraw, rng: np.random.Generator) -> np.ndarray:
    """Step 3: X_mis beta* + sigma* z2 (x_mis includes the intercept column)."""
    return view.linear_mis(params.beta) + params.sigma * rng.standard_normal(view.n_mis)


METHOD = Method("norm", kinds=("continuous",), parameters=parameters, impute=impute)
