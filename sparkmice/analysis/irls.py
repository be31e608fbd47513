"""IRLS (Fisher scoring) for m GLMs at once, from additive sums supplied by the caller.

The caller's `sums_at({imputation: beta})` returns `GlmSums` (X'WX, score, deviance, n) per
imputation; on Spark it is one pass over the data for all m models, in process a loop.
For canonical links the IRLS update is the Newton step beta += (X'WX)^-1 X'(y - mu).
Stopping rule as R's glm.fit: |dev - dev_old| / (|dev| + 0.1) < 1e-10.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparkmice.kernels.glm import GlmSums, irls_converged, mean_and_variance

SumsAt = Callable[[dict[int, np.ndarray]], dict[int, GlmSums]]
MAX_ITER = 25  # glm.control()'s maxit


@dataclass(frozen=True)
class IrlsResult:
    """Coefficients after the last step; `sums` evaluated at the coefficients before it."""

    beta: np.ndarray
    sums: GlmSums
    iterations: int


def sums_for(sums: dict[int, GlmSums], k: int) -> GlmSums:
    """The sums of imputation k, or an error if it had no usable rows."""
    if k not in sums or sums[k].n == 0:
        raise ValueError(
            f"imputation {k} has no rows without missing values in the formula's columns; "
            "check that the imputed table is complete for these columns"
        )
    return sums[k]


def irls(
    sums_at: SumsAt,
    start: dict[int, np.ndarray],
    n_free: int | None = None,
    first: dict[int, GlmSums] | None = None,
) -> dict[int, IrlsResult]:
    """Iterate until every imputation's deviance has converged (or MAX_ITER passes).

    Only the first `n_free` coefficients move (the rest are fixed, e.g. an offset's 1).
    `first`, if given, are the sums already evaluated at `start` (saves one pass).
    """
    beta = {k: np.array(b, dtype=float) for k, b in start.items()}
    dev_old = dict.fromkeys(beta, np.inf)
    done: dict[int, IrlsResult] = {}
    last: dict[int, GlmSums] = {}
    for it in range(1, MAX_ITER + 1):
        active = {k: b for k, b in beta.items() if k not in done}
        if not active:
            break
        sums = first if (it == 1 and first is not None) else sums_at(active)
        for k in active:
            s = last[k] = sums_for(sums, k)
            f = len(beta[k]) if n_free is None else n_free
            step = np.linalg.solve(s.xtwx[:f, :f], s.score[:f])
            new = beta[k].copy()
            new[:f] += step
            if irls_converged(s.deviance, dev_old[k]):
                done[k] = IrlsResult(new, s, it)
            beta[k], dev_old[k] = new, s.deviance
    for k in beta.keys() - done.keys():
        warnings.warn(
            f"IRLS did not converge in {MAX_ITER} iterations for imputation {k} (separation "
            "or a boundary estimate?); its estimates are unreliable",
            stacklevel=2,
        )
        done[k] = IrlsResult(beta[k], last[k], MAX_ITER)
    return done


def null_start(s0: GlmSums, family: str, intercept: int | None) -> np.ndarray:
    """Start at the intercept-only fit, link(ybar), from sums evaluated at beta = 0.

    At beta = 0 every mu equals mu0 = g^-1(0), so sum(y) = score[intercept] + n mu0.
    Without an intercept, start at 0. Needed for poisson: from eta = 0 with large counts
    the Newton steps overshoot and then creep down by about 1 per iteration.
    """
    beta = np.zeros(len(s0.score))
    if intercept is None:
        return beta
    mu0 = float(mean_and_variance(family, np.zeros(1))[0][0])
    ybar = (s0.score[intercept] + s0.n * mu0) / s0.n
    if family == "binomial":
        ybar = min(max(ybar, 1e-8), 1 - 1e-8)
        beta[intercept] = np.log(ybar / (1 - ybar))
    elif family == "poisson":
        beta[intercept] = np.log(max(ybar, 1e-8))
    else:
        beta[intercept] = ybar
    return beta


def offset_design(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Design [1, X beta] of a model with a free intercept and offset X beta (fixed coef 1)."""
    return np.column_stack([np.ones(len(x)), x @ beta])
