"""logreg: logistic regression imputation of a binary variable (R mice's mice.impute.logreg).

1. Fit logit P(y=1) = X beta by IRLS on the observed rows plus the augmentation rows
   (see `augment`), warm-started; V = (X'WX)^-1 at the solution (unscaled, as quasibinomial).
2. beta* = beta-hat + chol(V) z, z ~ N(0, I).
3. For each missing row, impute 1 where u <= logistic(X_mis beta*), u ~ U(0, 1).
The fit calls `sums_at(beta)`, which the engine computes over all blocks and adds up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparkmice.kernels.augment import pseudo_rows
from sparkmice.kernels.contract import BlockView, StepData
from sparkmice.kernels.glm import GlmSums, irls_converged, irls_sums, mean_and_variance
from sparkmice.kernels.linalg import symmetric_cholesky

KINDS = ("binary",)
USES_PREDICTORS = True
AUGMENTS = True  # needs the predictors' ranges over all rows

MAX_ITER = 50
TOL = 1e-8  # glm.fit's epsilon


@dataclass(frozen=True)
class Fit:
    coef: np.ndarray
    v: np.ndarray
    iterations: int


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
    halving also on increase keeps warm starts from far-off coefficients safe).
    """
    beta = beta0
    info, score, dev = sums_at(beta)
    for it in range(1, max_iter + 1):
        step = _solve(info, score)
        for _ in range(30):
            new = beta + step
            info_new, score_new, dev_new = sums_at(new)
            if np.isfinite(dev_new) and dev_new <= dev + tol * (abs(dev) + 0.1):
                break
            step = step / 2.0
        beta, info, score, dev_old, dev = new, info_new, score_new, dev, dev_new
        if irls_converged(dev, dev_old, tol):
            return Fit(beta, _inverse(info), it)
    return Fit(beta, _inverse(info), max_iter)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 b for a full matrix, or per block for a (blocks, p, p) block-diagonal stack."""
    if a.ndim == 3:
        parts = np.split(b, len(a))
        return np.concatenate([_solve(blk, part) for blk, part in zip(a, parts, strict=True)])
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def _inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a full matrix, or per block of a block-diagonal stack."""
    if a.ndim == 3:
        return np.stack([_inverse(blk) for blk in a])
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a)


def block_sums(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> GlmSums:
    """One block's logistic sums (x with intercept column, y in {0, 1})."""
    return irls_sums(x, y, beta, "binomial")


def fit(
    observed_sums: Callable[[np.ndarray], GlmSums],
    aug_x: np.ndarray,
    aug_y: np.ndarray,
    aug_w: np.ndarray,
    beta0: np.ndarray,
) -> Fit:
    """IRLS over the observed rows' summed sums plus the augmentation rows."""

    def sums_at(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        s = observed_sums(beta) + irls_sums(aug_x, aug_y, beta, "binomial", aug_w)
        return s.xtwx, s.score, s.deviance

    return newton(sums_at, beta0)


def draw(f: Fit, rng: np.random.Generator) -> np.ndarray:
    """Step 2: beta* = beta-hat + chol(V) z."""
    return f.coef + symmetric_cholesky(f.v) @ rng.standard_normal(len(f.coef))


def augmentation(step: StepData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R mice's pseudo-rows for this step, with the intercept column added."""
    x, y, w = pseudo_rows(
        step.x_all.mean, np.sqrt(step.x_all.variance()), step.x_min, step.x_max, step.n_levels
    )
    return np.column_stack([np.ones(len(y)), x]), y, w


def parameters(step: StepData, rng: np.random.Generator) -> Draw:
    """Steps 1-2 over all blocks' sums."""
    aug_x, aug_y, aug_w = augmentation(step)
    p = len(step.moments.mean)  # predictors + intercept (the last slot of moments is y)
    beta0 = step.warm_start if step.warm_start is not None else np.zeros(p)
    f = fit(
        lambda beta: step.sum_over_blocks(lambda x, y: block_sums(x, y, beta)),
        aug_x,
        aug_y,
        aug_w,
        beta0,
    )
    return Draw(f.coef, draw(f, rng), f.iterations)


def impute(view: BlockView, params: Draw, rng: np.random.Generator) -> np.ndarray:
    """Step 3: codes 1.0 where u <= P(y=1 | x, beta*), else 0.0."""
    p, _ = mean_and_variance("binomial", view.linear_mis(params.beta))
    return (rng.random(len(p)) <= p).astype(float)
