"""polyreg: multinomial logit imputation of a nominal variable with K levels.

1. Fit the multinomial logit (level 0 the reference, K-1 coefficient blocks) by Newton
   steps on the observed rows plus the augmentation rows (R mice augments too), warm-started.
2. Draw the K-1 blocks from their approximate normal posterior N(beta-hat, I^-1) — a proper
   draw; R mice's polyreg skips it and imputes from the fitted probabilities (mice issue 661).
3. Impute level k with probability pi_k(X_mis beta*), by one uniform per row.

Option `polyreg_prior` (MiceConfig; default "auto": "hierarchical" for targets with at
least AUTO_LEVELS levels, else "none"): "none" draws from N(beta-hat, I^-1) of the augmented
likelihood as above. "hierarchical" puts a normal prior on every level's slopes,
gamma_kj ~ N(0, tau_j^2 / sd_j^2) (per SD of predictor j, symmetric over all K levels, so
no level is special; intercepts flat), estimates tau_j by empirical Bayes (`prior_scales`,
no extra pass over the data) and draws from N(mode, (I + P)^-1) of that posterior. A level
seen a few times then keeps slopes near the common ones instead of the huge ones the flat
normal approximation allows: with 300 long-tailed levels those made the rare levels'
probabilities explode at some rows (benchmarks/many_levels.py: rare levels imputed 2.7
times as often as they occur), while a predictor that separates the levels strongly (age
for puberty stages) gets a wide tau and keeps its slopes (benchmarks/sparse_sim.py).

Where (K-1)·p exceeds FULL_INFORMATION_LIMIT (many levels), the q × q information matrix
is never built. Newton's steps are solved by conjugate gradients (`truncated_newton`) from
the information's product with a vector (`block_product`, two thin GEMMs a pass),
preconditioned by its p×p diagonal blocks (one per level) and a coarse block for the
direction that moves all levels against the reference: the same steps as full Newton's,
with the expensive blocks summed about once per fit. The draw is still exactly
N(mode, I^-1), cross-level correlation included, by perturbation (`Posterior.perturbed_draw`:
e ~ N(0, I) summed from per-row normals, theta* = mode + I^-1 e by CG). Rows are processed
in chunks, so memory stays O(chunk·K). These passes compute the probabilities, the
products and the diagonal blocks' GEMM in single precision (`PASS_DTYPE`; see
`probabilities`, `block_product`, `weighted_grams`) and add their sums up in double: the
mode moves by about 1e-6 of a standard error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkmice.kernels.augment import augmentation
from sparkmice.kernels.contract import BlockContext, BlockView, Method, StepData
from sparkmice.kernels.linalg import symmetric_cholesky, weighted_gram
from sparkmice.kernels.newton import (
    TOL,
    Draw,
    Fit,
    NewtonSums,
    apply_blocks,
    conjugate_gradient,
    inverse,
    newton,
    truncated_newton,
    two_level,
)

# the full information costs 2·n·q² flops a pass, q = (K-1)·p; truncated Newton's K·n·p² once
# a fit and its products' 4·n·q. A warm fit on 50,000 rows, full against truncated: q = 100
# 0.20 s against 0.22 s, q = 120 0.27 s against 0.20 s, q = 420 0.99 s against 0.28 s
FULL_INFORMATION_LIMIT = 100
PRIORS = ("auto", "none", "hierarchical")
DEFAULT_PRIOR = "auto"
# "auto": hierarchical from this many levels on (the EM estimates each tau_j^2 from K
# levels, relative SE about sqrt(2/K): 45% at K = 10, too loose below), else none
AUTO_LEVELS = 10
TAU_START = 2.5  # the start prior's scale, as Gelman et al. (2008)'s (`start_scales`)
TAU_MIN, TAU_MAX = 0.05, 20.0
EM_ROUNDS = 50
EM_TOL = 0.05  # |log| change of every tau_j^2 that ends the EM
START_TOL = 1e-4  # the first sweep's expansion point: near the mode is enough (see parameters)
CHUNK_ROWS = 4096
PRODUCT_CHUNK_ROWS = 256  # block_product's rows at a time: its K × rows temporaries in cache
STACKED_LEVELS = 32  # weighted_grams: one GEMM over all levels from this many on
PRODUCT_ROWS = 512  # rows of x_ia x_ib products formed at a time (p = 80: 6.6 MB in float32)
DRAW_TOL = 1e-6  # CG's relative residual for the many-level draw (a 1e-6 error in the draw)
PERTURBATION = 0  # purpose of a block's random stream (BlockContext.rng): the draw's e
CACHED_BYTES = 1 << 28  # most bytes of probabilities a block keeps for CG's products
# the many-level fit's passes over the rows: probabilities, products and the diagonal blocks'
# GEMM in single precision (see probabilities, block_product, weighted_grams); the score,
# deviance and information still add up in double
PASS_DTYPE = np.float32


def uses_full_information(p: int, k: int) -> bool:
    return (k - 1) * p <= FULL_INFORMATION_LIMIT


def probabilities(x: np.ndarray, beta: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """K × n category probabilities (category-major: each level's row is contiguous);
    beta is p × (K-1), level 0 has eta = 0. In place in one K × n array: with hundreds of
    levels the exponentials and their normalisation, not the GEMM, are the cost.

    In float32 (`PASS_DTYPE`) the exponentials run 4 times faster (numpy's SIMD single
    precision; double is scalar without AVX-512). The linear predictors are then formed
    from the predictors centred at the rows' means, with each level's value at the means
    added from double: a predictor far from zero (a year, a date) keeps its digits. The
    probabilities are then good to about 1e-6 relative, where the model's own uncertainty
    is 1/sqrt(rows) and more."""
    pi = np.empty((beta.shape[1] + 1, len(x)), dtype=dtype)
    if dtype == np.float64:
        pi[0] = 0.0
        np.matmul(beta.T, x.T, out=pi[1:])
    else:
        centre = x.mean(axis=0)
        at_centre = np.concatenate([[0.0], centre @ beta])
        np.matmul(beta.T.astype(dtype), (x - centre).T.astype(dtype), out=pi[1:])
        pi[0] = 0.0
        pi += (at_centre - at_centre.max()).astype(dtype)[:, None]
    pi -= pi.max(axis=0)
    np.exp(pi, out=pi)
    pi /= pi.sum(axis=0)
    return pi


def chunk_probabilities(
    xs: np.ndarray, beta: np.ndarray, chunks: list[np.ndarray] | None, i: int, dtype: type
) -> np.ndarray:
    """The probabilities of chunk i (rows xs) at beta: kept (`kept_probabilities`, its
    first chunks) or computed."""
    return chunks[i] if chunks and i < len(chunks) else probabilities(xs, beta, dtype)


def weighted_grams(x: np.ndarray, d: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """(K-1) × p × p stack of X' diag(d_k) X over all the rows, one per row of d
    ((K-1) × n, d >= 0).

    Few levels in double: per level and CHUNK_ROWS rows one BLAS rank-n update
    (`weighted_gram`, syrk: half a GEMM's flops).
    Many levels (at least STACKED_LEVELS), or single precision: per PRODUCT_ROWS rows one
    GEMM of d with the rows' products x_ia x_ib (a ≤ b), formed product-major (each
    product's values contiguous: three times faster to write than row by row), added up
    packed and unpacked once. Forming the products costs about as much as 25 levels' syrk
    in double, but then the GEMM runs at its full rate (300 levels, 79 predictors: 3 times
    faster); in float32 it is faster from 8 levels on (20 levels, 47 predictors, 50,000
    rows: 0.07 s against syrk's 0.18 s).

    In float32 (`dtype`) the products are of the predictors centred at their means, x - c,
    each PRODUCT_ROWS rows' GEMM added up in double, and the means' part is added back in
    double: X'DX = (X-c)'D(X-c) + s c' + c s' + t cc', s = (X-c)'d, t = sum(d). So a year
    next to the intercept keeps the digits its inverse needs."""
    n, p = x.shape
    single = dtype != np.float64
    if len(d) < STACKED_LEVELS and not single:
        out = np.zeros((len(d), p, p))
        for lo in range(0, n, CHUNK_ROWS):
            xs = x[lo : lo + CHUNK_ROWS]
            for k, dk in enumerate(d[:, lo : lo + CHUNK_ROWS]):
                out[k] += weighted_gram(xs, dk)
        return out
    centre = x.mean(axis=0) if single else None
    upper = np.triu_indices(p)
    dc: np.ndarray = d.astype(dtype, copy=False)
    packed = np.zeros((len(d), len(upper[0])))
    s = np.zeros((len(d), p))  # (X-c)'d, float32 only
    products = np.empty((len(upper[0]), min(n, PRODUCT_ROWS)), dtype=dtype)
    part: np.ndarray = np.empty(packed.shape, dtype=dtype)
    for lo in range(0, n, PRODUCT_ROWS):
        xt = x[lo : lo + PRODUCT_ROWS].T  # p × rows
        xt = (xt - centre[:, None] if centre is not None else xt).astype(dtype, order="C")
        rows = products[:, : xt.shape[1]]
        start = 0
        for a in range(p):  # x_ia x_ib for b = a..p-1, each a row of `rows`
            np.multiply(xt[a:], xt[a], out=rows[start : start + p - a])
            start += p - a
        ds = dc[:, lo : lo + PRODUCT_ROWS]
        np.matmul(ds, rows.T, out=part)
        packed += part
        if centre is not None:
            s += ds @ xt.T
    out = np.empty((len(d), p, p))
    out[:, upper[0], upper[1]] = packed
    out[:, upper[1], upper[0]] = packed
    if centre is not None:
        out += s[:, :, None] * centre + centre[:, None] * s[:, None, :]
        out += d.sum(axis=1, dtype=np.float64)[:, None, None] * np.outer(centre, centre)
    return out


def level_sums(x: np.ndarray, codes: np.ndarray, k: int, w: np.ndarray | None) -> np.ndarray:
    """K × p sums of w_i x_i over the rows of each category (the score's observed part,
    the same at every beta): one weighted bincount per predictor."""
    return np.stack(
        [
            np.bincount(codes, x[:, j] if w is None else x[:, j] * w, minlength=k)
            for j in range(x.shape[1])
        ],
        axis=1,
    )


def block_sums(
    x: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    w: np.ndarray | None = None,
    information: bool = True,
    chunks: list[np.ndarray] | None = None,
    by_level: np.ndarray | None = None,
    dtype: type = np.float64,
) -> NewtonSums:
    """One block's sums at beta (p × (K-1)); y holds codes 0..K-1, or n × K shares of the
    categories per row (`shared_rows`); theta = beta.ravel('F'). Without `information`,
    only the score and deviance (the information is an empty array): what a halving step
    or a Newton-CG iteration needs, at a fraction of the cost. `chunks`: the first chunks'
    probabilities at beta, if kept (`kept_probabilities`); `by_level`: the rows'
    `level_sums`, if kept (they are the same at every beta); `dtype`: the probabilities'
    (see `probabilities`; the sums are added in double either way).

    The information of level pair (a, b): X' diag(w p_a (δ_ab - p_b)) X. Its diagonal
    blocks X' diag(w p_a (1 - p_a)) X come from `weighted_grams`; the full information's
    off-diagonal blocks are those of -M'M, M = [sqrt(w) p_1 X, ..., sqrt(w) p_{K-1} X] (one
    GEMM). With many levels (not `uses_full_information`) the sums carry only the diagonal
    blocks and, last, the coarse block Z'IZ = X' diag(w p_0 (1 - p_0)) X, Z = 1 ⊗ I_p, for
    truncated Newton's preconditioner. The score is the rows' per-category sums less
    P'X, one GEMM. Rows go in chunks of CHUNK_ROWS, whose temporaries stay in the CPU
    cache, with every array category-major."""
    n, p = x.shape
    km1 = beta.shape[1]
    full = uses_full_information(p, km1 + 1)
    q = km1 * p
    info = np.zeros((q, q)) if full and information else np.zeros((0, 0))
    # many levels: the K-1 diagonal blocks, then the coarse block (truncated_newton)
    blocks = km1 + (0 if full else 1)
    # each row's weights of the diagonal blocks, one GEMM over all rows after the loop
    weights = np.empty((blocks, n if information else 0), dtype=dtype)
    codes = y.astype(np.intp) if y.ndim == 1 else None
    if codes is None:
        score = np.zeros((km1, p))
    else:
        score = (level_sums(x, codes, km1 + 1, w) if by_level is None else by_level)[1:].copy()
    deviance = 0.0
    for i, lo in enumerate(range(0, n, CHUNK_ROWS)):
        xs = x[lo : lo + CHUNK_ROWS]
        ws = None if w is None else w[lo : lo + CHUNK_ROWS]
        pi = chunk_probabilities(xs, beta, chunks, i, dtype)
        pk = pi[1:]
        if codes is not None:
            ys = codes[lo : lo + CHUNK_ROWS]
            observed = pi[ys, np.arange(len(ys))].astype(np.float64)
            log_pi = np.log(np.maximum(observed, 1e-300))
            score -= (pk if ws is None else pk * ws) @ xs
        else:  # each row's shares of the categories
            shares = y[lo : lo + CHUNK_ROWS].T
            log_pi = (shares * np.log(np.maximum(pi.astype(np.float64), 1e-300))).sum(axis=0)
            score += (shares[1:] - pk) * (1.0 if ws is None else ws) @ xs
        deviance -= 2.0 * float(log_pi.sum() if ws is None else ws @ log_pi)
        if not information:
            continue
        d = weights[:, lo : lo + CHUNK_ROWS]
        np.multiply(pk, 1.0 - pk, out=d[:km1])
        if not full:  # the coarse block: 1'(diag(p) - pp')1 = p_0 (1 - p_0) over the K-1 levels
            np.multiply(pi[0], 1.0 - pi[0], out=d[km1])
        if ws is not None:
            d *= ws
        if full:
            root = pk if ws is None else pk * np.sqrt(ws)
            m = (xs[:, None, :] * root.T[:, :, None]).reshape(len(xs), q)
            info -= m.T @ m
    if not information:
        return NewtonSums(np.zeros(0), score.ravel(), deviance)
    diagonal = weighted_grams(x, weights, dtype)
    if not full:
        return NewtonSums(diagonal, score.ravel(), deviance)
    for a in range(km1):
        info[a * p : (a + 1) * p, a * p : (a + 1) * p] = diagonal[a]
    return NewtonSums(info, score.ravel(), deviance)


def kept_level_sums(x: np.ndarray, y: np.ndarray, k: int, scratch: dict) -> np.ndarray:
    """The block's `level_sums` of its observed rows, made once a step and kept in its
    scratch: every score pass of the step needs them."""
    if "polyreg level sums" not in scratch:
        scratch["polyreg level sums"] = level_sums(x, y.astype(np.intp), k, None)
    return scratch["polyreg level sums"]


def block_product(
    x: np.ndarray,
    beta: np.ndarray,
    v: np.ndarray,
    w: np.ndarray | None = None,
    chunks: list[np.ndarray] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """One block's full information at beta times theta-shaped v, in theta's order:
    sum_i w_i x_i ⊗ r_i with r_ia = pi_ia (u_ia - sum_b pi_ib u_ib), u_i = V' x_i (V is v as
    p × (K-1)): the information (pair (a, b): X' diag(w p_a (δ_ab - p_b)) X) applied without
    forming it, in 4·n·p·(K-1) flops, PRODUCT_CHUNK_ROWS rows at a time (so that its
    K × rows temporaries stay in cache). `chunks`: as `block_sums`. In float32 (`dtype`)
    the two GEMMs run at twice the rate and read half the bytes; each PRODUCT_CHUNK_ROWS
    rows' part is added up in double, so the product keeps about 1e-7 relative."""
    n, p = x.shape
    km1 = beta.shape[1]
    vv: np.ndarray = v.reshape((p, km1), order="F").astype(dtype, copy=False)
    out = np.zeros((p, km1))
    for i, lo in enumerate(range(0, n, CHUNK_ROWS)):
        pc = chunk_probabilities(x[lo : lo + CHUNK_ROWS], beta, chunks, i, dtype)
        xc: np.ndarray = x[lo : lo + CHUNK_ROWS].astype(dtype, copy=False)
        for a in range(0, len(xc), PRODUCT_CHUNK_ROWS):
            xs = xc[a : a + PRODUCT_CHUNK_ROWS]
            pk = pc[1:, a : a + PRODUCT_CHUNK_ROWS]
            r = vv.T @ xs.T  # u, then in place r = pk (u - sum_b pk_b u_b)
            r -= np.einsum("ai,ai->i", pk, r)
            r *= pk
            if w is not None:
                r *= w[lo + a : lo + a + PRODUCT_CHUNK_ROWS]
            out += xs.T @ r.T
    return out.ravel(order="F")


def kept_probabilities(
    x: np.ndarray, beta: np.ndarray, scratch: dict, dtype: type
) -> list[np.ndarray]:
    """The probabilities at beta of the block's first chunks (of CHUNK_ROWS rows), as many
    as CACHED_BYTES hold (268 MB), kept in the block's scratch for the next passes at the
    same beta: a Newton iteration's score pass, the hundreds of products of conjugate
    gradients that follow at its point, and the draw's perturbation at the mode all take
    them, and the n·K exponentials were half their time. One beta at a time; the same
    numbers as computing them afresh."""
    key = beta.tobytes()
    kept = scratch.get("polyreg probabilities")
    if kept is None or kept[0] != key:
        rows = CACHED_BYTES // ((beta.shape[1] + 1) * np.dtype(dtype).itemsize)
        starts = range(0, min(len(x), rows - rows % CHUNK_ROWS), CHUNK_ROWS)
        chunks = [probabilities(x[lo : lo + CHUNK_ROWS], beta, dtype) for lo in starts]
        kept = scratch["polyreg probabilities"] = (key, chunks)
    return kept[1]


def block_perturbation(
    x: np.ndarray,
    beta: np.ndarray,
    rng: np.random.Generator,
    w: np.ndarray | None = None,
    chunks: list[np.ndarray] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """A draw from N(0, this block's information), in theta's order: sum_i sqrt(w_i) x_i ⊗
    u_i with u_i = sqrt(pi_i) ∘ z_i - pi_i (sqrt(pi_i)' z_i) over levels 1..K-1, z_i ~
    N(0, I_K) (cov(u_i) = diag(pi_i) - pi_i pi_i', as the information's per-row part).
    `chunks`, `dtype`: as `block_sums` (the normals are drawn in `dtype`)."""
    n, p = x.shape
    out = np.zeros((p, beta.shape[1]))
    for i, lo in enumerate(range(0, n, CHUNK_ROWS)):
        xs = x[lo : lo + CHUNK_ROWS]
        pi = chunk_probabilities(xs, beta, chunks, i, dtype)
        sz = np.sqrt(pi)
        sz *= rng.standard_normal(pi.shape, dtype=dtype)
        u = sz[1:] - pi[1:] * sz.sum(axis=0)
        if w is not None:
            u *= np.sqrt(w[lo : lo + CHUNK_ROWS])
        out += xs.T @ u.T
    return out.ravel(order="F")


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
    order = np.lexsort(x.T[::-1])  # rows in lexicographic order, as np.unique(axis=0)
    ordered = x[order]
    first = np.concatenate([[True], np.any(ordered[1:] != ordered[:-1], axis=1)])
    distinct = ordered[first]
    row = np.empty(len(x), dtype=np.intp)
    row[order] = np.cumsum(first) - 1
    weights = np.zeros((len(distinct), k))
    np.add.at(weights, (row, y.astype(np.intp)), w)
    total = weights.sum(axis=1)
    return distinct, weights / total[:, None], total


def prior_precision(sd: np.ndarray, scale2: np.ndarray) -> np.ndarray:
    """Per-coefficient precision (p; the intercept's 0) of the slope prior with variance
    scale2_j per SD of predictor j (constant predictors: 0, they are dropped before)."""
    return np.concatenate([[0.0], np.where(sd > 0, sd, 0.0) ** 2 / scale2])


def prior_product(v: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """The prior's (full) precision of `prior_sums` times theta-shaped v."""
    p = len(precision)
    km1 = len(v) // p
    vv = v.reshape((p, km1), order="F")
    across = vv - vv.sum(axis=1, keepdims=True) / (km1 + 1)
    return (across * precision[:, None]).ravel(order="F")


def prior_perturbation(precision: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A draw from N(0, the prior's precision of `prior_sums`): per predictor j, K standard
    normals centred over the levels ((I - J/K) as covariance), levels 1..K-1 kept, times
    sqrt(precision_j)."""
    g = rng.standard_normal((len(precision), k))
    centred = (g - g.mean(axis=1, keepdims=True))[:, 1:]
    return (centred * np.sqrt(precision)[:, None]).ravel(order="F")


def prior_sums(
    theta: np.ndarray, precision: np.ndarray, full: bool, information: bool = True
) -> NewtonSums:
    """Information, score and deviance (-2 log density) of the symmetric normal prior
    gamma_kj ~ N(0, scale^2 / sd_j^2) on all K levels' slopes, in the reference-coded
    theta: beta_k = gamma_k - gamma_0 then has precision (I - J/K) ⊗ diag(precision)
    across the K-1 levels; with many levels its diagonal blocks and coarse block, as
    `block_sums`."""
    p = len(precision)
    km1 = len(theta) // p
    beta = theta.reshape((p, km1), order="F")
    across = beta - beta.sum(axis=1, keepdims=True) / (km1 + 1)  # (I - J/K) per predictor
    score = -(across * precision[:, None]).ravel(order="F")
    deviance = float(np.sum(beta * across * precision[:, None]))
    if not information:
        return NewtonSums(np.zeros(0), score, deviance)
    if full:
        info = np.kron(np.eye(km1) - 1.0 / (km1 + 1), np.diag(precision))
    else:
        scale = np.append(np.full(km1, 1.0 - 1.0 / (km1 + 1)), km1 / (km1 + 1))  # coarse last
        info = np.diag(precision)[None] * scale[:, None, None]
    return NewtonSums(info, score, deviance)


@dataclass(frozen=True)
class Posterior:
    """A step's augmented likelihood times the slope prior of `precision` (None: flat):
    the sums, information-vector products and perturbations that Newton and the draw
    evaluate. `observed_sums(beta, information)` and `observed_product(beta, v)` are the
    observed rows' block_sums and block_product summed over all blocks (`perturbed_draw`
    takes their block_perturbation so summed); the augmentation rows are shared
    (`shared_rows`) and added here."""

    observed_sums: Callable[[np.ndarray, bool], NewtonSums]
    observed_product: Callable[[np.ndarray, np.ndarray], np.ndarray]
    aug_x: np.ndarray
    aug_y: np.ndarray
    aug_w: np.ndarray
    p: int
    k: int
    precision: np.ndarray | None = None

    @property
    def full(self) -> bool:
        return uses_full_information(self.p, self.k)

    def beta(self, theta: np.ndarray) -> np.ndarray:
        return theta.reshape((self.p, self.k - 1), order="F")

    def sums_at(
        self, theta: np.ndarray, information: bool = True
    ) -> tuple[np.ndarray, np.ndarray, float]:
        beta = self.beta(theta)
        s = self.observed_sums(beta, information)
        if len(self.aug_y):
            s = s + block_sums(self.aug_x, self.aug_y, beta, self.aug_w, information)
        if self.precision is not None:
            s = s + prior_sums(theta, self.precision, self.full, information)
        return s.info, s.score, s.deviance

    def product(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        beta = self.beta(theta)
        out = self.observed_product(beta, v)
        if len(self.aug_y):
            out = out + block_product(self.aug_x, beta, v, self.aug_w)
        if self.precision is not None:
            out = out + prior_product(v, self.precision)
        return out

    def fit(self, beta0: np.ndarray, tol: float = TOL) -> Fit:
        """The mode by Newton (full information) or truncated Newton (many levels), to
        glm.fit's relative deviance change `tol`; the Fit holds theta = beta.ravel('F') and
        the covariance I^-1 (full), or the inverted diagonal and coarse blocks (truncated
        Newton's preconditioner)."""
        if self.full:
            return newton(self.sums_at, beta0.ravel(order="F"), tol=tol)
        return truncated_newton(self.sums_at, self.product, beta0.ravel(order="F"), tol=tol)

    def perturbed_draw(
        self,
        f: Fit,
        observed_perturbation: Callable[[np.ndarray], np.ndarray],
        rng: np.random.Generator,
    ) -> np.ndarray:
        """theta* ~ N(the mode, I^-1) with the full information I (prior included), never
        built: e ~ N(0, I) as a sum of independent per-row parts (block_perturbation; the
        augmentation rows' and the prior's parts from rng), then theta* = mode + I^-1 e by
        conjugate gradients, whose covariance is I^-1 I I^-1 = I^-1 (to DRAW_TOL). The
        cross-level correlation is kept, which a draw per level block would drop."""
        beta = self.beta(f.coef)
        e = observed_perturbation(beta)
        if len(self.aug_y):
            e = e + block_perturbation(self.aug_x, beta, rng, self.aug_w)
        if self.precision is not None:
            e = e + prior_perturbation(self.precision, self.k, rng)
        step, _ = conjugate_gradient(
            functools.partial(self.product, f.coef), e, two_level(f.v), rtol=DRAW_TOL
        )
        return self.beta(f.coef + step)


def per_sd_moments(
    coef: np.ndarray, v: np.ndarray, p: int, sd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All K levels' slopes per SD of each predictor, centred over the levels
    ((p-1) × K), and their posterior variances ((p-1) × (K-1), levels 1..K-1), from
    theta (reference-coded) and its covariance (full or per block)."""
    km1 = len(coef) // p
    beta = coef.reshape((p, km1), order="F")[1:] * sd[:, None]
    gamma = np.hstack([np.zeros((p - 1, 1)), beta])
    diag = np.diag(v).reshape((p, km1), order="F") if v.ndim == 2 else np.diagonal(v, 0, 1, 2).T
    return gamma - gamma.mean(axis=1, keepdims=True), diag[1:] * (sd**2)[:, None]


def prior_scales(
    at: NewtonSums, theta0: np.ndarray, sd: np.ndarray, start: np.ndarray | None = None
) -> np.ndarray:
    """Empirical-Bayes variances tau_j^2 (per SD of predictor j) of the hierarchical slope
    prior gamma_kj ~ N(0, tau_j^2 / sd_j^2), one per predictor, shared by all K levels.

    EM on the quadratic expansion of the log-likelihood at theta0 (the warm start: last
    sweep's mode), so it costs no pass over the data: given tau, the posterior is
    N(theta0 + (I + P)^-1 (score - P theta0), (I + P)^-1) with P the prior precision; the
    update sets tau_j^2 to the mean over the K levels of the posterior second moment of
    the centred per-SD slope. Levels with little data then keep slopes near the common
    ones, while a predictor that separates levels strongly gets a wide prior.

    The EM starts from `start` when given (last sweep's scales, or in the first sweep the
    start prior's, `start_scales`), else from TAU_START: between sweeps the scales move
    little, and across sweeps it keeps approaching the fixed point that one run's
    tolerance stops short of. Scales shrinking towards TAU_MIN creep there by a few per
    cent a round (EM's slow convergence of a variance going to zero), so the rounds are
    accelerated by SQUAREM, which keeps EM's fixed point and stopping rule: on the wide
    workload 7-12 rounds from TAU_START instead of 18-30, and 3-7 from last sweep's scales
    instead of 6-17 (each round K-1 block inverses)."""
    p = len(sd) + 1
    full = at.info.ndim == 2
    k = len(theta0) // p + 1

    def em_round(scale2: np.ndarray) -> np.ndarray:
        prior = prior_sums(theta0, prior_precision(sd, scale2), full)
        posterior = at.info + prior.info
        if not full:  # the diagonal blocks, without truncated_newton's coarse one
            posterior = posterior[:-1]
        covariance = inverse(posterior)  # one factorisation for the mode and variances
        mode = theta0 + apply_blocks(covariance, at.score + prior.score)
        centred, v = per_sd_moments(mode, covariance, p, sd)
        return np.clip(((centred**2).sum(axis=1) + v.sum(axis=1)) / k, TAU_MIN**2, TAU_MAX**2)

    scale2 = np.full(p - 1, TAU_START**2) if start is None else start
    twice = scale2
    for _ in range(max(EM_ROUNDS // 2, 1)):
        # SQUAREM (Varadhan & Roland 2008, S3) on log tau^2: two EM rounds, then one
        # step along their path as long as many rounds would take; the stop is always an
        # EM round's own change, and what is returned an EM round's result
        once = em_round(scale2)
        r = np.log(once / scale2)
        if np.all(np.abs(r) <= EM_TOL):
            return once
        twice = em_round(once)
        second = np.log(twice / once)
        if np.all(np.abs(second) <= EM_TOL):
            return twice
        v = second - r
        alpha = min(-1.0, -float(np.linalg.norm(r) / max(np.linalg.norm(v), 1e-300)))
        scale2 = np.clip(
            np.exp(np.log(scale2) - 2 * alpha * r + alpha**2 * v), TAU_MIN**2, TAU_MAX**2
        )
    return twice


def start_scales(step: StepData, sd: np.ndarray) -> np.ndarray:
    """The start prior's tau_j^2 (per SD of predictor j): the first sweep's EM starts from
    them, and expands at the mode under them. As Gelman et al. (2008): TAU_START per SD
    for a number, and TAU_START per unit for a 0/1 column (its slope compares two groups),
    which is TAU_START·sd_j per SD: much tighter for a rare indicator. Per SD, a rare
    indicator's slopes on rare levels may wander far out where the likelihood is flat, and
    Newton takes many steps there (300 levels at 10^4 rows: 22 to START_TOL), to a mode
    further from the EM's than the start. One cheap pass finds the 0/1 columns."""
    other = step.sum_over_blocks(
        lambda x, y: np.count_nonzero((x[:, 1:] != 0.0) & (x[:, 1:] != 1.0), axis=0)
    )
    per_unit = np.clip(TAU_START * sd, TAU_MIN, TAU_START)
    return np.where(np.asarray(other) == 0, per_unit, TAU_START) ** 2


def intercept_start(step: StepData, p: int, aug_w: np.ndarray) -> np.ndarray:
    """The first sweep's start: slopes 0 and the intercepts of the intercept-only model,
    log(n_k / n_0) with each level's augmentation weight added (one cheap pass for the
    counts). From all-zero coefficients a long-tailed target's first Newton steps
    overshoot by orders of magnitude in deviance (measured: 300 levels, 72 predictors,
    16 halvings in 18 steps); as glm.fit's start from the observed mean, this one does not."""
    k = step.n_levels
    counts = step.sum_over_blocks(
        lambda x, y: np.bincount(y.astype(np.intp), minlength=k).astype(float)
    )
    counts = counts + aug_w.sum() / k
    beta0 = np.zeros((p, k - 1))
    beta0[0] = np.log(counts[1:] / counts[0])
    return beta0


def draw(f: Fit, p: int, rng: np.random.Generator) -> np.ndarray:
    """beta* (p × (K-1)) from N(the fit's mode, its covariance I^-1) of a full-information
    fit (with many levels, Posterior.perturbed_draw)."""
    theta = f.coef + symmetric_cholesky(f.v) @ rng.standard_normal(len(f.coef))
    return theta.reshape((p, len(f.coef) // p), order="F")


def parameters(
    step: StepData, rng: np.random.Generator, polyreg_prior: str = DEFAULT_PRIOR
) -> Draw:
    """Steps 1-2 over all blocks' sums; coefficients are p × (K-1). polyreg_prior: "none"
    (the augmented likelihood alone), "hierarchical" (see prior_scales) or "auto"
    (hierarchical when y has at least AUTO_LEVELS levels)."""
    if polyreg_prior not in PRIORS:
        raise ValueError(f"polyreg_prior must be one of {PRIORS}; got {polyreg_prior!r}")
    k = step.n_levels
    aug_x, aug_y, aug_w = shared_rows(*augmentation(step), k)
    p = len(step.moments.mean)  # predictors + 1 for the intercept (y's slot)
    beta0, last_scales = warm_parts(step.warm_start, k)
    if beta0 is None:
        beta0 = intercept_start(step, p, aug_w)

    last: dict[bytes, NewtonSums] = {}
    full = uses_full_information(p, k)
    dtype = np.float64 if full else PASS_DTYPE

    def in_context(f: Callable) -> Any:
        """Sums over blocks, each with its context (scratch, stream)."""
        if step.sum_over_blocks_with_context is None:
            raise ValueError("polyreg needs StepData.sum_over_blocks_with_context")
        return step.sum_over_blocks_with_context(f)

    def observed(beta: np.ndarray, information: bool = True) -> NewtonSums:
        """The observed rows' sums at beta; the last ones with the information are kept
        (the prior's scales and Newton's first step both need those at the warm start).
        Each block keeps its level sums for the step, and with many levels its
        probabilities at beta for the passes that follow at the same point."""
        key = beta.tobytes()
        if key in last:
            return last[key]

        def block(x: np.ndarray, y: np.ndarray, context: BlockContext) -> NewtonSums:
            kept = None if full else kept_probabilities(x, beta, context.scratch, dtype)
            by_level = kept_level_sums(x, y, k, context.scratch)
            return block_sums(x, y, beta, None, information, kept, by_level, dtype)

        if full and step.sum_over_blocks_with_context is None:  # a StepData without it
            sums = step.sum_over_blocks(lambda x, y: block_sums(x, y, beta, None, information))
        else:
            sums = in_context(block)
        if information:
            last.clear()
            last[key] = sums
        return sums

    def observed_product(beta: np.ndarray, v: np.ndarray) -> np.ndarray:
        return in_context(
            lambda x, y, context: block_product(
                x, beta, v, None, kept_probabilities(x, beta, context.scratch, dtype), dtype
            )
        )

    def observed_perturbation(beta: np.ndarray) -> np.ndarray:
        return in_context(
            lambda x, y, context: block_perturbation(
                x,
                beta,
                context.rng(PERTURBATION),
                None,
                kept_probabilities(x, beta, context.scratch, dtype),
                dtype,
            )
        )

    precision = None
    if polyreg_prior == "auto":
        polyreg_prior = "hierarchical" if step.n_levels >= AUTO_LEVELS else "none"
    if polyreg_prior == "hierarchical" and p > 1:
        sd = np.sqrt(step.x_all.variance())
        # first sweep: expand near the mode under the start prior. To START_TOL, not TOL:
        # the EM's expansion corrects for the score left there (second-order error, in the
        # first sweep's scales only), and the tail to TOL took as many Newton iterations
        # again (300 levels: 32 instead of 16); the fit below still goes to TOL.
        start = start_scales(step, sd) if last_scales is None else last_scales
        if step.warm_start is None:
            start_prior = prior_precision(sd, start)
            start_fit = Posterior(
                observed, observed_product, aug_x, aug_y, aug_w, p, k, start_prior
            )
            beta0 = start_fit.fit(beta0, START_TOL).coef.reshape(beta0.shape, order="F")
        at = observed(beta0)
        if len(aug_y):
            at = at + block_sums(aug_x, aug_y, beta0, aug_w)
        scales = prior_scales(at, beta0.ravel(order="F"), sd, start)
        precision = prior_precision(sd, scales)
    posterior = Posterior(observed, observed_product, aug_x, aug_y, aug_w, p, k, precision)
    f = posterior.fit(beta0)
    if posterior.full:
        beta = draw(f, p, rng)
    else:
        beta = posterior.perturbed_draw(f, observed_perturbation, rng)
    coef = f.coef.reshape(beta0.shape, order="F")
    if precision is not None:  # the scales ride along for the next sweep's EM
        coef = np.column_stack([coef, np.concatenate([[0.0], scales])])
    return Draw(coef, beta, f.iterations)


def warm_parts(warm: np.ndarray | None, k: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Last sweep's estimate as (coefficients p × (K-1), prior scales or None). Under the
    hierarchical prior `Draw.coef` carries one more column: the prior's scales tau_j^2 (its
    first row, the intercept's, 0), the empirical-Bayes part of the estimate."""
    if warm is None or warm.shape[1] == k - 1:
        return warm, None
    return warm[:, : k - 1], warm[1:, k - 1]


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
    fit_options=("polyreg_prior",),
)
