"""polr: proportional-odds imputation of an ordered categorical variable with K levels.

Model (McCullagh 1980), y in codes 0..K-1, z the predictors without the intercept:

    logit P(y <= k | z) = theta_k - z'beta,   k = 0..K-2,   theta_0 < ... < theta_{K-2}.

The thresholds absorb the intercept, so the design's column 0 is dropped inside the kernel.
The signs are those of MASS::polr and statsmodels' OrderedModel.

1. Fit (theta, beta) by Newton steps on the observed rows plus R mice's augmentation rows
   (White, Daniel & Royston 2010), warm-started from the previous sweep. Each step needs the
   log-likelihood's gradient and full Hessian over the K-1 + q parameters, which are sums
   over rows (`block_sums`). The log-likelihood is concave in (theta, beta) on the ordered
   set (Pratt 1981), so the steps are taken in this natural parametrisation: a step that
   leaves the ordered set (deviance +inf, found without a pass over the data) or raises the
   deviance is halved. The covariance is the inverse observed information at the estimate.
2. Proper draw: (theta*, beta*) ~ N(estimate, I^-1). A draw whose thresholds come out
   unordered is rejected and redrawn (the normal restricted to the ordered set), up to
   MAX_REDRAWS times; only then are the thresholds sorted. R mice's mice.impute.polr imputes
   from the fitted probabilities without drawing the parameters (improper, mice issue 661).
3. Impute: cumulative probabilities c_k = logistic(theta*_k - z'beta*) at the missing rows;
   with one u ~ U(0, 1) per row, the code is #{k : u > c_k}, always a level 0..K-1.

Parameters travel as a p × (K-1) matrix B of cumulative-logit coefficients on the design
(intercept first): B[0, k] = theta_k and B[1:, k] = -beta, so X @ B holds the K-1 cumulative
logits. `Draw.coef` (the estimate, the next sweep's warm start) and `Draw.beta` (the draw)
both use it; the Newton vector is (theta, beta).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sparkmice.kernels.augment import augmentation
from sparkmice.kernels.contract import BlockView, Method, StepData
from sparkmice.kernels.linalg import symmetric_cholesky, weighted_gram
from sparkmice.kernels.newton import TOL, Draw, Fit, NewtonSums, newton

MAX_REDRAWS = 100
CHUNK_CELLS = 2_000_000
ONE_HOT_LEVELS = 64


def _log_expit(z: np.ndarray) -> np.ndarray:
    """log F(z) for the logistic F, without overflow; -inf at z = -inf, 0 at +inf."""
    return -np.logaddexp(0.0, -z)


def _group_sums(idx: np.ndarray, z: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """(len(weights) · k) × q matrix: for each row of `weights` (columns of n row weights),
    the k sums of w_i z_i by group idx in 0..k-1. A weighted one-hot product (one GEMM, its
    n × k temporaries instead of n × q ones) for few groups, per-column bincounts (O(n·q))
    for many."""
    if k <= ONE_HOT_LEVELS:
        one_hot = idx[:, None] == np.arange(k)
        return np.hstack([one_hot * w[:, None] for w in weights]).T @ z
    per_weight = [
        np.column_stack([np.bincount(idx, z[:, j] * w, minlength=k) for j in range(z.shape[1])])
        for w in weights
    ]
    return np.vstack(per_weight)


def block_sums(
    x: np.ndarray,
    y: np.ndarray,
    theta: np.ndarray,
    beta: np.ndarray,
    w: np.ndarray | None = None,
) -> NewtonSums:
    """One block's sums at (theta, beta); x is the design with the intercept in column 0.

    With u = theta_y - z'beta, l = theta_{y-1} - z'beta (theta_{-1} = -inf,
    theta_{K-1} = +inf) a row's log-likelihood is log(F(u) - F(l)). Writing
    p = F(u) - F(l) = F(u) F(-l) (1 - e^{l-u}) (stable), a = f(u)/p, b = f(l)/p and
    f' = f (1 - 2F):
        d/du = a,  d/dl = -b,  d2/du2 = a(1 - 2F(u)) - a^2,  d2/dl2 = -b(1 - 2F(l)) - b^2,
        d2/du dl = ab;  du/dtheta_y = dl/dtheta_{y-1} = 1,  du/dbeta = dl/dbeta = -z.
    """
    km1 = len(theta)
    n, q = x.shape[0], len(beta)
    w = np.ones(n) if w is None else np.asarray(w, dtype=float)
    cuts = np.concatenate([[-np.inf], theta, [np.inf]])
    info = np.zeros((km1 + q, km1 + q))
    score = np.zeros(km1 + q)
    deviance = 0.0
    step = max(1, CHUNK_CELLS // (km1 + q + 1))
    for lo in range(0, n, step):
        z, ws = x[lo : lo + step, 1:], w[lo : lo + step]
        yk = y[lo : lo + step].astype(int)
        eta = z @ beta
        u, low = cuts[yk + 1] - eta, cuts[yk] - eta
        # log F(u), log F(-l); log F(-u) = log F(u) - u, log F(l) = log F(-l) + l (u > -inf,
        # l < +inf always), so two log-sum-exps per row instead of four
        log_fu, log_fml = _log_expit(u), _log_expit(-low)
        log_fmu, log_fl = log_fu - u, log_fml + low
        log_gap = np.log(-np.expm1(low - u))
        deviance += -2.0 * float(np.sum(ws * (log_fu + log_fml + log_gap)))
        a = np.exp(log_fmu - log_fml - log_gap)  # f(u)/p
        b = np.exp(log_fl - log_fu - log_gap)  # f(l)/p
        huu = a * (1.0 - 2.0 * np.exp(log_fu)) - a * a
        hll = -b * (1.0 - 2.0 * np.exp(log_fl)) - b * b
        hul = a * b
        # thresholds: u indexes theta_y (y <= K-2), l indexes theta_{y-1} (y >= 1)
        score[:km1] += (
            np.bincount(yk, ws * a, minlength=km1 + 1)[:km1]
            - np.bincount(yk, ws * b, minlength=km1 + 1)[1:]
        )
        score[km1:] -= z.T @ (ws * (a - b))
        diag = (
            np.bincount(yk, ws * huu, minlength=km1 + 1)[:km1]
            + np.bincount(yk, ws * hll, minlength=km1 + 1)[1:]
        )
        off = np.bincount(yk, ws * hul, minlength=km1 + 1)[1:km1]  # (theta_y, theta_{y-1})
        h_tt = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
        by_level = _group_sums(yk, z, np.stack([ws * (huu + hul), ws * (hll + hul)]), km1 + 1)
        h_tb = -(by_level[:km1] + by_level[km1 + 2 :])
        # h_bb = Z' diag(v) Z with v = ws·d²log p/deta² <= 0 (the logistic's differences are
        # log-concave), by syrk of -v; max(, 0) drops rounding's sign
        h_bb = -weighted_gram(z, np.maximum(-(ws * (huu + hll + 2.0 * hul)), 0.0))
        info -= np.block([[h_tt, h_tb], [h_tb.T, h_bb]])
    return NewtonSums(info, score, deviance)


def ordered(theta: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(theta)) and np.all(np.diff(theta) > 0))


def fit(
    observed_sums: Callable[[np.ndarray, np.ndarray], NewtonSums],
    aug_x: np.ndarray,
    aug_y: np.ndarray,
    aug_w: np.ndarray,
    start: np.ndarray,
    n_levels: int,
    tol: float = TOL,
) -> Fit:
    """Newton fit of (theta, beta) = start's layout over the observed rows' summed sums
    plus the augmentation rows (pass empty arrays for none). Unordered trial points get
    deviance +inf without a pass, so `newton` halves the step back into the ordered set."""
    km1 = n_levels - 1

    def sums_at(par: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        theta, beta = par[:km1], par[km1:]
        if not (ordered(theta) and np.all(np.isfinite(beta))):
            return np.full((len(par), len(par)), np.nan), np.full(len(par), np.nan), np.inf
        s = observed_sums(theta, beta)
        if len(aug_y):
            s = s + block_sums(aug_x, aug_y, theta, beta, aug_w)
        return s.info, s.score, s.deviance

    return newton(sums_at, start, tol=tol)


def to_matrix(par: np.ndarray, n_levels: int) -> np.ndarray:
    """(theta, beta) -> p × (K-1) cumulative-logit coefficients B (B[0] = theta, B[1:] = -beta)."""
    theta, beta = par[: n_levels - 1], par[n_levels - 1 :]
    return np.vstack([theta[None, :], np.repeat(-beta[:, None], n_levels - 1, axis=1)])


def from_matrix(b: np.ndarray) -> np.ndarray:
    """p × (K-1) B -> (theta, beta)."""
    return np.concatenate([b[0], -b[1:, 0]])


def start_values(warm: np.ndarray | None, p: int, n_levels: int) -> np.ndarray:
    """The warm start if it fits (shape p × (K-1), ordered), else thresholds at the logits
    of equal cumulative shares (k+1)/K and zero slopes."""
    if warm is not None and warm.shape == (p, n_levels - 1):
        par = from_matrix(warm)
        if ordered(par[: n_levels - 1]) and np.all(np.isfinite(par)):
            return par
    share = np.arange(1, n_levels) / n_levels
    return np.concatenate([np.log(share / (1.0 - share)), np.zeros(p - 1)])


def draw(f: Fit, n_levels: int, rng: np.random.Generator) -> np.ndarray:
    """Step 2: (theta*, beta*) ~ N(estimate, I^-1), redrawn while the thresholds are
    unordered (at most MAX_REDRAWS times, then sorted)."""
    km1 = n_levels - 1
    chol = symmetric_cholesky(f.v)
    for _ in range(MAX_REDRAWS):
        par = f.coef + chol @ rng.standard_normal(len(f.coef))
        if ordered(par[:km1]):
            return par
    par[:km1] = np.sort(par[:km1])
    return par


def parameters(step: StepData, rng: np.random.Generator) -> Draw:
    """Steps 1-2 over all blocks' sums; coef and beta are p × (K-1) matrices B."""
    k = step.n_levels
    if k < 2:
        raise ValueError(f"polr needs an ordered variable with at least 2 levels; got {k}")
    aug_x, aug_y, aug_w = augmentation(step)
    p = len(step.moments.mean)  # predictors + 1 for the intercept (y's slot)
    f = fit(
        lambda theta, beta: step.sum_over_blocks(lambda x, y: block_sums(x, y, theta, beta)),
        aug_x,
        aug_y,
        aug_w,
        start_values(step.warm_start, p, k),
        k,
    )
    return Draw(to_matrix(f.coef, k), to_matrix(draw(f, k, rng), k), f.iterations)


def impute(view: BlockView, params: Draw, rng: np.random.Generator) -> np.ndarray:
    """Step 3: codes 0..K-1 from the cumulative probabilities at the drawn parameters."""
    logits = view.x_mis @ params.beta  # n_mis × (K-1) cumulative logits, increasing in k
    cum = np.exp(_log_expit(logits))
    u = rng.random(len(cum))
    return (u[:, None] > cum).sum(axis=1).astype(float)


METHOD = Method(
    "polr",
    kinds=("ordered",),
    parameters=parameters,
    impute=impute,
    augments=True,
    warm_start=True,
)
