"""Moments of a block of rows, merged stably across blocks, and the least-squares pieces
(R mice's `estimice` and `remove.lindep`) computed from them.

Every continuous conditional model needs only the count, the means and the centred
cross-product matrix of [x, y] over the observed rows. Blocks are merged with Chan et al.'s
pairwise update, which stays accurate where raw sums of squares would cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE = 1e-5  # R mice's `ridge` default (estimice fallback)
QR_TOL = 1e-7  # R's glm.fit / lm.fit rank tolerance
LINDEP_EPS = 1e-4  # R mice's `eps` in remove.lindep
MAXCOR = 0.99  # R mice's `maxcor`
CHUNK_ROWS = 4096  # diagonal_of's rows at a time: their centred copy stays in the CPU cache


@dataclass(frozen=True)
class Moments:
    """n rows, column means, and the centred cross-products sum((z - mean)(z - mean)'), or
    (`diagonal_of`) only their diagonal, as a vector."""

    n: float
    mean: np.ndarray
    cross: np.ndarray

    @classmethod
    def of(cls, z: np.ndarray) -> Moments:
        n = z.shape[0]
        if n == 0:
            k = z.shape[1]
            return cls(0.0, np.zeros(k), np.zeros((k, k)))
        mean = z.mean(axis=0)
        c = z - mean
        return cls(float(n), mean, c.T @ c)

    @classmethod
    def diagonal_of(cls, z: np.ndarray) -> Moments:
        """n, the column means and the diagonal of the cross-products: the variances are all
        that the augmentation rows and polyreg's per-SD prior take of all rows, at p
        instead of p² flops a row (and p instead of p² values to exchange)."""
        k = z.shape[1]
        if z.shape[0] == 0:
            return cls(0.0, np.zeros(k), np.zeros(k))
        mean = z.mean(axis=0)
        squares = np.zeros(k)
        for lo in range(0, z.shape[0], CHUNK_ROWS):
            c = z[lo : lo + CHUNK_ROWS] - mean
            squares += np.einsum("ij,ij->j", c, c)
        return cls(float(z.shape[0]), mean, squares)

    @classmethod
    def means_of(cls, z: np.ndarray) -> Moments:
        """n and the column means only, the cross-products left out (zero before a merge,
        meaningless after): for a model that needs no more (the trees), at a tenth of
        the cost of `of` on many rows."""
        k = z.shape[1]
        mean = z.mean(axis=0) if z.shape[0] else np.zeros(k)
        return cls(float(z.shape[0]), mean, np.zeros((k, k)))

    def merge(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        between = np.outer(delta, delta) if self.cross.ndim == 2 else delta * delta
        cross = self.cross + other.cross + between * (self.n * other.n / n)
        return Moments(n, mean, cross)

    def take(self, idx: np.ndarray | list[int]) -> Moments:
        idx = np.asarray(idx, dtype=int)
        cross = self.cross[np.ix_(idx, idx)] if self.cross.ndim == 2 else self.cross[idx]
        return Moments(self.n, self.mean[idx], cross)

    def variance(self) -> np.ndarray:
        diagonal = np.diag(self.cross) if self.cross.ndim == 2 else self.cross
        return diagonal / max(self.n - 1.0, 1.0)


def collinear_predictors(m: Moments) -> list[tuple[int, str]]:
    """Predictors (columns 0..k-2 of [x, y]) that R mice's remove.lindep would drop.

    Returns (index, reason) pairs: near-constant (variance < 1e-4), constant relative to its
    size (sd < 1e-7 * sqrt(mean^2 + sd^2): collinear with the intercept by the rank
    tolerance of R's glm.fit/lm.fit QR, e.g. ids near 2^60), nearly identical to y
    (|r| >= 0.99), or linearly dependent (smallest/largest eigenvalue of cor(x) < 1e-4;
    drops the column loading most on the smallest eigenvector, repeatedly).
    """
    k = len(m.mean) - 1
    if k == 0 or m.n < 2:
        return []
    var = m.variance()
    dropped: list[tuple[int, str]] = []
    keep = np.ones(k, dtype=bool)
    for i in range(k):
        if not var[i] > LINDEP_EPS:
            keep[i] = False
            dropped.append((i, "constant"))
    sd = np.sqrt(np.maximum(var, 0.0))
    for i in np.flatnonzero(keep).tolist():
        if sd[i] < QR_TOL * np.hypot(m.mean[i], sd[i]):
            keep[i] = False
            dropped.append((i, "collinear with the intercept"))
    if var[k] > 0:
        for i in np.flatnonzero(keep).tolist():
            r = m.cross[i, k] / (m.n - 1.0) / (sd[i] * sd[k])
            if abs(r) >= MAXCOR:
                keep[i] = False
                dropped.append((i, "collinear with the target"))
    while keep.sum() > 1:
        idx = np.flatnonzero(keep)
        cov = m.cross[np.ix_(idx, idx)] / (m.n - 1.0)
        cor = cov / np.outer(sd[idx], sd[idx])
        values, vectors = np.linalg.eigh(cor)  # ascending
        if values[0] / values[-1] >= LINDEP_EPS:
            break
        worst = idx[int(np.argmax(np.abs(vectors[:, 0])))]
        keep[worst] = False
        dropped.append((int(worst), "collinear"))
    return dropped


@dataclass(frozen=True)
class LeastSquares:
    """OLS of y on [1, x]: coefficients (intercept first), V = (X'X)^-1, residual SS, df."""

    coef: np.ndarray
    v: np.ndarray
    rss: float
    df: float
    ridge: bool


def least_squares(m: Moments) -> LeastSquares:
    """R mice's estimice from moments of [x, y]: beta-hat, (X'X)^-1 with intercept, RSS.

    Slopes solve Cxx b = Cxy on the column-standardised centred cross-products; where that
    is singular, fall back to R mice's ridge (Cxx + kappa*diag(Cxx)), kappa = 1e-5.
    V follows from the block inverse of X'X = [[n, n m'], [n m, Cxx + n m m']].
    """
    k = len(m.mean) - 1
    n = m.n
    cxx, cxy, cyy = m.cross[:k, :k], m.cross[:k, k], m.cross[k, k]
    mx, my = m.mean[:k], m.mean[k]
    ridge = False
    if k:
        scale = np.sqrt(np.diag(cxx))
        scale[scale == 0] = 1.0
        s = cxx / np.outer(scale, scale)
        try:
            chol = np.linalg.cholesky(s)
            if np.min(np.diag(chol)) ** 2 < 1e-12:
                raise np.linalg.LinAlgError("ill-conditioned")
            s_inv = np.linalg.inv(s)
        except np.linalg.LinAlgError:
            ridge = True
            s_inv = np.linalg.inv(s + RIDGE * np.diag(np.diag(s)))
        cxx_inv = s_inv / np.outer(scale, scale)
        b = cxx_inv @ cxy
    else:
        cxx_inv = np.zeros((0, 0))
        b = np.zeros(0)
    intercept = my - mx @ b
    coef = np.concatenate([[intercept], b])
    v = np.empty((k + 1, k + 1))
    v[1:, 1:] = cxx_inv
    v[1:, 0] = v[0, 1:] = -(cxx_inv @ mx)
    v[0, 0] = 1.0 / n + mx @ cxx_inv @ mx
    rss = max(float(cyy - b @ cxy), 0.0)
    return LeastSquares(coef, v, rss, max(n - (k + 1), 1.0), ridge)


def weighted_gram(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """X' diag(w) X for weights w >= 0, as Z'Z of Z = sqrt(w) X: BLAS's syrk, half a GEMM's
    flops (Z in Fortran order, as BLAS reads it fastest)."""
    z = np.multiply(x, np.sqrt(w)[:, None], order="F")
    return z.T @ z


def symmetric_cholesky(v: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a covariance, symmetrised first (R mice's chol(sym(v)));
    a tiny jitter is added if rounding has made it indefinite."""
    v = (v + v.T) / 2.0
    try:
        return np.linalg.cholesky(v)
    except np.linalg.LinAlgError:
        jitter = 1e-10 * max(float(np.max(np.abs(np.diag(v)))), 1e-300)
        return np.linalg.cholesky(v + jitter * np.eye(len(v)))
