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

from sparkmice.kernels.augment import augmentation
from sparkmice.kernels.contract import BlockView, Method, StepData
from sparkmice.kernels.linalg import symmetric_cholesky
from sparkmice.kernels.newton import Draw, Fit, NewtonSums, newton

FULL_INFORMATION_LIMIT = 600
CHUNK_ROWS = 4096


def uses_full_information(p: int, k: int) -> bool:
    return (k - 1) * p <= FULL_INFORMATION_LIMIT


def probabilities(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """K × n category probabilities (category-major: each level's row is contiguous);
    beta is p × (K-1), level 0 has eta = 0."""
    eta = beta.T @ x.T
    top = np.maximum(eta.max(axis=0, initial=-np.inf), 0.0)
    e = np.exp(np.vstack([-top, eta - top]))
    return e / e.sum(axis=0)


def weighted_grams(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(K-1) × p × p stack of X' diag(d_k) X, one per row of d ((K-1) × n, d >= 0): per
    level one BLAS rank-n update Z'Z of Z = sqrt(d_k) X (syrk: half a GEMM's flops;
    Fortran order, as BLAS reads it fastest)."""
    out = np.empty((d.shape[0], x.shape[1], x.shape[1]))
    for k, dk in enumerate(d):
        z = np.multiply(x, np.sqrt(dk)[:, None], order="F")
        out[k] = z.T @ z
    return out


def block_sums(
    x: np.ndarray, y: np.ndarray, beta: np.ndarray, w: np.ndarray | None = None
) -> NewtonSums:
    """One block's sums at beta (p × (K-1)); y holds codes 0..K-1, or n × K shares of the
    categories per row (`shared_rows`); theta = beta.ravel('F').

    The information of level pair (a, b) is X' diag(w p_a (δ_ab - p_b)) X. Its diagonal
    blocks X' diag(w p_a (1 - p_a)) X come from `weighted_grams` (the block-diagonal
    information is just these); the full information's off-diagonal blocks are those of
    -M'M, M = [sqrt(w) p_1 X, ..., sqrt(w) p_{K-1} X] (one GEMM). Rows go in chunks of
    CHUNK_ROWS, whose temporaries stay in the CPU cache, with every array category-major."""
    n, p = x.shape
    km1 = beta.shape[1]
    full = uses_full_information(p, km1 + 1)
    q = km1 * p
    info = np.zeros((q, q)) if full else np.zeros((km1, p, p))
    diagonal = np.zeros((km1, p, p))
    score = np.zeros((km1, p))
    deviance = 0.0
    levels = np.arange(1, km1 + 1)[:, None]
    for lo in range(0, n, CHUNK_ROWS):
        xs = x[lo : lo + CHUNK_ROWS]
        ws = np.ones(len(xs)) if w is None else w[lo : lo + CHUNK_ROWS]
        pi = probabilities(xs, beta)
        pk = pi[1:]
        if y.ndim == 1:
            ys = y[lo : lo + CHUNK_ROWS].astype(np.intp)
            log_pi = np.log(np.maximum(pi[ys, np.arange(len(ys))], 1e-300))
            score += ((ys == levels) - pk) * ws @ xs
        else:  # each row's shares of the categories
            shares = y[lo : lo + CHUNK_ROWS].T
            log_pi = (shares * np.log(np.maximum(pi, 1e-300))).sum(axis=0)
            score += (shares[1:] - pk) * ws @ xs
        deviance -= 2.0 * float(ws @ log_pi)
        pkw = pk * ws
        diagonal += weighted_grams(xs, pkw * (1.0 - pk))
        if full:
            m = (xs[:, None, :] * (pk * np.sqrt(ws)).T[:, :, None]).reshape(len(xs), q)
            info -= m.T @ m
    if not full:
        return NewtonSums(diagonal, score.ravel(), deviance)
    for a in range(km1):
        info[a * p : (a + 1) * p, a * p : (a + 1) * p] = diagonal[a]
    return NewtonSums(info, score.ravel(), deviance)


def shared_rows(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with equal x as one row: its total weight and each category's share of it.

    The same sums as the rows themselves (score, information and deviance are linear in
    the rows' weights per category, and the probabilities depend on x alone). R mice's
    augmentation repeats each of its 2p pseudo-rows once per category, 2pK rows; shared,
    they are 2p, which for K = 300 levels is 300 times fewer rows per Newton pass."""
    if not len(y):
        return x, y, w
    distinct, row = np.unique(x, axis=0, return_inverse=True)
    row = row.ravel()
    weights = np.zeros((len(distinct), k))
    np.add.at(weights, (row, y.astype(np.intp)), w)
    total = weights.sum(axis=1)
    return distinct, weights / total[:, None], total


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
    aug_x, aug_y, aug_w = shared_rows(aug_x, aug_y, aug_w, km1 + 1)

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
    u = rng.random(pi.shape[1])
    codes = (u > np.cumsum(pi, axis=0)).sum(axis=0)
    return np.minimum(codes, pi.shape[0] - 1).astype(float)


METHOD = Method(
    "polyreg",
    kinds=("nominal", "binary", "ordered"),
    parameters=parameters,
    impute=impute,
    augments=True,
    warm_start=True,
)
