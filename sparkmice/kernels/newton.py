"""Newton-Raphson from summed information, score and deviance: the fitting loop of every
likelihood model among the methods (logreg, polyreg, polr).

The model supplies `sums_at(beta) -> (information, score, deviance)`, added over all blocks
by the engine; `newton` only solves, halves and stops, so it knows nothing of the model or of
where the rows are. The information may be full (q × q) or block-diagonal ((blocks, p, p),
polyreg with many levels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparkmice.kernels.glm import irls_converged

MAX_ITER = 50
TOL = 1e-8  # glm.fit's epsilon
STEP_TOL = 1e-7  # block-diagonal Newton: largest step, in standard errors


@dataclass(frozen=True)
class Fit:
    coef: np.ndarray
    v: np.ndarray
    iterations: int


@dataclass(frozen=True)
class NewtonSums:
    """Summed information (full, or (blocks, p, p) block-diagonal), score and deviance of a
    Newton step: what polyreg's and polr's blocks return, added over blocks."""

    info: np.ndarray
    score: np.ndarray
    deviance: float

    def __add__(self, other: NewtonSums) -> NewtonSums:
        return NewtonSums(
            self.info + other.info, self.score + other.score, self.deviance + other.deviance
        )


@dataclass(frozen=True)
class Draw:
    """beta-hat (kept for the next sweep's warm start), beta*, and the Newton steps taken."""

    coef: np.ndarray
    beta: np.ndarray
    iterations: int


def newton(
    sums_at: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, float]],
    beta0: np.ndarray,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> Fit:
    """Newton-Raphson on a concave log-likelihood from summed (information, score, deviance).

    Halves the step while the deviance rises (glm.fit halves only on non-finite deviance;
    halving also on increase keeps warm starts from far-off coefficients safe). Stops by
    glm.fit's deviance rule; with a block-diagonal information (polyreg with many levels)
    convergence is only linear, so it stops instead when every step is below STEP_TOL
    standard errors.
    """
    beta = beta0
    info, score, dev = sums_at(beta)
    for it in range(1, max_iter + 1):
        step = solve(info, score)
        for _ in range(30):
            new = beta + step
            info_new, score_new, dev_new = sums_at(new)
            if np.isfinite(dev_new) and dev_new <= dev + tol * (abs(dev) + 0.1):
                break
            step = step / 2.0
        beta, info, score, dev_old, dev = new, info_new, score_new, dev, dev_new
        if info.ndim == 3:
            v = inverse(info)
            se = np.sqrt(np.maximum(np.concatenate([np.diag(b) for b in v]), 0.0))
            if np.all(np.abs(step) <= STEP_TOL * se):
                return Fit(beta, v, it)
        elif irls_converged(dev, dev_old, tol):
            return Fit(beta, inverse(info), it)
    return Fit(beta, inverse(info), max_iter)


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 b for a full matrix, or per block for a (blocks, p, p) block-diagonal stack.

    Solved on the equilibrated system (unit diagonal): a predictor of size 1e18 (an id,
    epoch nanoseconds) next to one of size 1 leaves it exactly as solvable as the same
    predictors in standard units, where pivoting on the raw matrix would lose it."""
    if a.ndim == 3:
        parts = np.split(b, len(a))
        return np.concatenate([solve(blk, part) for blk, part in zip(a, parts, strict=True)])
    s = _equilibration(a)
    scaled = a * s[:, None] * s[None, :]
    try:
        return s * np.linalg.solve(scaled, s * b)
    except np.linalg.LinAlgError:
        return s * np.linalg.lstsq(scaled, s * b, rcond=None)[0]


def inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a full matrix, or per block of a block-diagonal stack (equilibrated as
    in `solve`)."""
    if a.ndim == 3:
        return np.stack([inverse(blk) for blk in a])
    s = _equilibration(a)
    scaled = a * s[:, None] * s[None, :]
    try:
        inv = np.linalg.inv(scaled)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(scaled)
    return inv * s[:, None] * s[None, :]


def _equilibration(a: np.ndarray) -> np.ndarray:
    """1 / sqrt of a's diagonal (1 where it is not positive): D a D has a unit diagonal."""
    d = np.diag(a)
    return np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 1.0)
