"""Newton-Raphson from summed information, score and deviance: the fitting loop of every
likelihood model among the methods (logreg, polyreg, polr).

The model supplies `sums_at(beta) -> (information, score, deviance)`, added over all blocks
by the engine; `newton` only solves, halves and stops, so it knows nothing of the model or of
where the rows are. Where the q × q information is too large to build (polyreg with many
levels), `truncated_newton` takes its diagonal blocks and its product with a vector instead,
and solves each Newton step by preconditioned conjugate gradients: the same steps, so about
as few passes over the data, without the q × q matrix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparkmice.kernels.glm import irls_converged

MAX_ITER = 50
TOL = 1e-8  # glm.fit's epsilon
CG_TOL = 1e-6  # smallest relative residual (preconditioner's norm) a CG solve aims for
CG_MAX_ITER = 200


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
    glm.fit's deviance rule.
    """
    beta = beta0
    info, score, dev = sums_at(beta)
    for it in range(1, max_iter + 1):
        dev_old = dev
        beta, (info, score, dev) = _halving(sums_at, beta, solve(info, score), dev, tol)
        if irls_converged(dev, dev_old, tol):
            return Fit(beta, inverse(info), it)
    return Fit(beta, inverse(info), max_iter)


def truncated_newton(
    sums_at: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray, float]],
    product: Callable[[np.ndarray, np.ndarray], np.ndarray],
    beta0: np.ndarray,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> Fit:
    """Newton's iteration (halving and stopping as `newton`) for a model whose q × q
    information is too large to build: `product(beta, v)` gives the information times v,
    `sums_at(beta, blocks)` the score and deviance, and with blocks=True also the
    information's diagonal blocks ((blocks, p, p), the expensive part). Each step solves
    information · step = score by conjugate gradients, preconditioned with the diagonal
    blocks taken at the start and refreshed only when a solve took more CG iterations than
    that pass is worth (a stale preconditioner slows CG a little but never changes its
    answer), to a relative residual min(0.5, sqrt(|score| / |first score|)) in the
    preconditioner's norm (an Eisenstat-Walker forcing term: loose far from the mode,
    tight near it, so the steps become exact Newton steps where that matters). The Fit's
    `v` is that preconditioner's inverted blocks (the diagonal ones, then the coarse one),
    for the caller's draw: no expensive pass at the estimate."""
    beta = beta0
    blocks, score, dev = sums_at(beta, True)
    inverted = inverse(blocks)
    precondition = two_level(inverted)
    # a CG iteration costs about 4/p of a pass of the diagonal blocks: refresh them when
    # the last solve took more iterations than that pass is worth
    refresh = max(blocks.shape[-1] // 4, 1)
    first, iterations = None, max_iter
    for it in range(1, max_iter + 1):
        residual = float(score @ precondition(score))
        first = residual if first is None else first
        rtol = min(0.5, np.sqrt(np.sqrt(residual / first))) if first > 0 else 0.5
        step, cg_iterations = conjugate_gradient(
            functools.partial(product, beta), score, precondition, rtol=max(rtol, CG_TOL)
        )
        dev_old = dev
        scores_at = functools.partial(_with_blocks, sums_at, False)
        beta, (_, score, dev) = _halving(scores_at, beta, step, dev, tol)
        if irls_converged(dev, dev_old, tol):
            iterations = it
            break
        if cg_iterations > refresh:  # the blocks at the accepted point only
            inverted = inverse(sums_at(beta, True)[0])
            precondition = two_level(inverted)
    return Fit(beta, inverted, iterations)


def two_level(inverted: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Two-level preconditioner from the inverses of the information's diagonal blocks and
    of its coarse block Z'IZ, Z = 1 ⊗ I_p (last in `inverted`; the direction that moves
    every block's coefficients together, against the reference: poorly conditioned where
    the reference is rare): r -> D^-1 r + Z (Z'IZ)^-1 Z'r."""
    diagonal, coarse = inverted[:-1], inverted[-1]

    def apply(r: np.ndarray) -> np.ndarray:
        together = coarse @ r.reshape(len(diagonal), -1).sum(axis=0)
        return apply_blocks(diagonal, r) + np.tile(together, len(diagonal))

    return apply


def _halving(
    sums_at: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, float]],
    beta: np.ndarray,
    step: np.ndarray,
    dev: float,
    tol: float,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, float]]:
    """beta + step, the step halved (up to 30 times) while the deviance rises; with the
    sums there."""
    for _ in range(30):
        new = beta + step
        sums = sums_at(new)
        if np.isfinite(sums[2]) and sums[2] <= dev + tol * (abs(dev) + 0.1):
            break
        step = step / 2.0
    return new, sums


def _with_blocks(
    sums_at: Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray, float]],
    blocks: bool,
    theta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    return sums_at(theta, blocks)


def apply_blocks(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """a times v, for a full matrix or a block-diagonal stack ((blocks, p, p))."""
    if a.ndim == 2:
        return a @ v
    return np.matmul(a, v.reshape(len(a), -1, 1)).ravel()


def conjugate_gradient(
    apply: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    precondition: Callable[[np.ndarray], np.ndarray],
    rtol: float = CG_TOL,
    max_iter: int = CG_MAX_ITER,
) -> tuple[np.ndarray, int]:
    """x with apply(x) ≈ b for a symmetric positive definite operator, and the iterations
    taken, by preconditioned conjugate gradients from x = 0 (so the first iterate is the
    preconditioned step, scaled to its best length); stops when the residual's
    preconditioned norm is below rtol times b's."""
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r)
    rz = float(r @ z)
    if rz <= 0.0:
        return x, 0
    stop = rtol * np.sqrt(rz)
    d = z
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        ad = apply(d)
        curvature = float(d @ ad)
        if curvature <= 0.0:  # not positive definite along d (rounding): keep what we have
            break
        alpha = rz / curvature
        x = x + alpha * d
        r = r - alpha * ad
        z = precondition(r)
        rz_new = float(r @ z)
        if rz_new <= 0.0 or np.sqrt(rz_new) <= stop:
            break
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, iterations


def solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^-1 b for a full matrix, or per block for a (blocks, p, p) block-diagonal stack.

    Solved on the equilibrated system (unit diagonal): a predictor of size 1e18 (an id,
    epoch nanoseconds) next to one of size 1 leaves it exactly as solvable as the same
    predictors in standard units, where pivoting on the raw matrix would lose it."""
    if a.ndim == 3:
        s = _equilibration(a)
        scaled = a * s[:, :, None] * s[:, None, :]
        rhs = s * b.reshape(s.shape)
        try:  # all blocks in one call; a singular block sends them one by one
            return (s * np.linalg.solve(scaled, rhs[..., None])[..., 0]).ravel()
        except np.linalg.LinAlgError:
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
    s = _equilibration(a)
    outer = s[..., :, None] * s[..., None, :]
    try:  # a stack in one call; a singular block sends them one by one
        return np.linalg.inv(a * outer) * outer
    except np.linalg.LinAlgError:
        if a.ndim == 3:
            return np.stack([inverse(blk) for blk in a])
        return np.linalg.pinv(a * outer) * outer


def _equilibration(a: np.ndarray) -> np.ndarray:
    """1 / sqrt of a's diagonal (per block of a stack; 1 where it is not positive): D a D
    has a unit diagonal."""
    d = np.diagonal(a, axis1=-2, axis2=-1)
    return np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 1.0)
