"""polyreg: multinomial logit imputation of a nominal variable with K levels.

1. Fit the multinomial logit (level 0 the reference, K-1 coefficient blocks) by Newton
   steps on the observed rows plus the augmentation rows (R mice augments too), warm-started.
2. Draw the K-1 blocks from their approximate normal posterior N(beta-hat, I^-1) — a proper
   draw; R mice's polyreg skips it and imputes from the fitted probabilities (mice issue 661).
3. Impute level k with probability pi_k(X_mis beta*), by one uniform per row.

Where (K-1)·p exceeds FULL_INFORMATION_LIMIT (hundreds of levels), the information matrix is
kept block-diagonal (one p×p block per level, cross-level terms dropped): the Newton steps
still converge to the same estimate, and the draw ignores the cross-level correlation,
which is small when each level is a small share of the rows. Rows are processed in chunks,
so memory stays O(chunk·K).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sparkmice.kernels.contract import BlockView, StepData
from sparkmice.kernels.linalg import symmetric_cholesky
from sparkmice.kernels.logreg import Draw, Fit, NewtonSums, augmentation, newton

KINDS = ("nominal", "binary", "ordered")
USES_PREDICTORS = True
AUGMENTS = True  # needs the predictors' ranges over all rows

FULL_INFORMATION_LIMIT = 600
CHUNK_CELLS = 2_000_000


def uses_full_information(p: int, k: int) -> bool:
    return (k - 1) * p <= FULL_INFORMATION_LIMIT


def probabilities(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """n × K category probabilities; beta is p × (K-1), level 0 has eta = 0."""
    eta = np.concatenate([np.zeros((x.shape[0], 1)), x @ beta], axis=1)
    eta -= eta.max(axis=1, keepdims=True)
    e = np.exp(eta)
    return e / e.sum(axis=1, keepdims=True)


def block_sums(
    x: np.ndarray, y: np.ndarray, beta: np.ndarray, w: np.ndarray | None = None
) -> NewtonSums:
    """One block's sums at beta (p × (K-1)); y holds codes 0..K-1; theta = beta.ravel('F')."""
    n, p = x.shape
    k = beta.shape[1] + 1
    full = uses_full_information(p, k)
    q = (k - 1) * p
    info = np.zeros((q, q)) if full else np.zeros((k - 1, p, p))
    score = np.zeros(q)
    deviance = 0.0
    w = np.ones(n) if w is None else w
    step = max(1, CHUNK_CELLS // max(k, 1))
    for lo in range(0, n, step):
        xs, ys, ws = x[lo : lo + step], y[lo : lo + step].astype(int), w[lo : lo + step]
        pi = probabilities(xs, beta)
        onehot = np.zeros_like(pi)
        onehot[np.arange(len(ys)), ys] = 1.0
        resid = (onehot - pi)[:, 1:] * ws[:, None]
        score += (xs.T @ resid).ravel(order="F")
        p_y = np.maximum(pi[np.arange(len(ys)), ys], 1e-300)
        deviance += -2.0 * float(np.sum(ws * np.log(p_y)))
        pk = pi[:, 1:]
        if full:
            for a in range(k - 1):
                for b in range(a, k - 1):
                    d = ws * pk[:, a] * ((a == b) - pk[:, b])
                    blk = (xs * d[:, None]).T @ xs
                    info[a * p : (a + 1) * p, b * p : (b + 1) * p] += blk
                    if a != b:
                        info[b * p : (b + 1) * p, a * p : (a + 1) * p] += blk.T
        else:
            d = ws[:, None] * pk * (1.0 - pk)
            info += np.einsum("ni,nk,nj->kij", xs, d, xs, optimize=True)
    return NewtonSums(info, score, deviance)


def fit(
    observed_sums: Callable[[np.ndarray], NewtonSums],
    aug_x: np.ndarray,
    aug_y: np.ndarray,
    aug_w: np.ndarray,
    beta0: np.ndarray,
) -> Fit:
    """Newton fit over the observed rows' summed sums plus the augmentation rows.

    The returned Fit holds theta = beta.ravel('F') and its covariance (full or per block)."""
    p, km1 = beta0.shape

    def sums_at(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        beta = theta.reshape((p, km1), order="F")
        s = observed_sums(beta)
        if len(aug_y):
            s = s + block_sums(aug_x, aug_y, beta, aug_w)
        return s.info, s.score, s.deviance

    return newton(sums_at, beta0.ravel(order="F"))


def draw(f: Fit, p: int, rng: np.random.Generator) -> np.ndarray:
    """beta* (p × (K-1)) from N(beta-hat, I^-1), full or block-diagonal."""
    km1 = len(f.coef) // p
    if f.v.ndim == 2:
        theta = f.coef + symmetric_cholesky(f.v) @ rng.standard_normal(len(f.coef))
    else:
        z = rng.standard_normal((km1, p, 1))
        theta = f.coef + (np.linalg.cholesky((f.v + f.v.transpose(0, 2, 1)) / 2) @ z).ravel()
    return theta.reshape((p, km1), order="F")


def parameters(step: StepData, rng: np.random.Generator) -> Draw:
    """Steps 1-2 over all blocks' sums; coefficients are p × (K-1)."""
    aug_x, aug_y, aug_w = augmentation(step)
    p = len(step.moments.mean)  # predictors + 1 for the intercept (y's slot)
    beta0 = step.warm_start
    if beta0 is None:
        beta0 = np.zeros((p, step.n_levels - 1))
    f = fit(
        lambda beta: step.sum_over_blocks(lambda x, y: block_sums(x, y, beta)),
        aug_x,
        aug_y,
        aug_w,
        beta0,
    )
    return Draw(f.coef.reshape(beta0.shape, order="F"), draw(f, p, rng), f.iterations)


def impute(view: BlockView, params: Draw, rng: np.random.Generator) -> np.ndarray:
    """Step 3: codes 0..K-1 drawn from the category probabilities at beta*."""
    pi = probabilities(view.x_mis, params.beta)
    u = rng.random(len(pi))
    codes = (u[:, None] > np.cumsum(pi, axis=1)).sum(axis=1)
    return np.minimum(codes, pi.shape[1] - 1).astype(float)
