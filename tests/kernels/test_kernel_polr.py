"""sparkmice.kernels.polr: proportional-odds imputation of an ordered variable.

Checks and tolerances:
- calculus: the summed score and information are the derivatives of the deviance (central
  differences, step 1e-5: truncation ~1e-10, rounding ~1e-11·|D|/1e-5; bound 1e-5 relative);
  block sums add up across blocks exactly (1e-9, rounding only).
- exact fit: on the same rows without augmentation, the estimate equals statsmodels'
  OrderedModel(distr="logit") to 1e-5 and the covariance to 1e-4, both in statsmodels'
  parametrisation (beta, theta_0, log(theta_k - theta_{k-1})). Both are optimisers stopped
  at a tolerance (ours Newton, quadratic; statsmodels BFGS with gtol 1e-9) and statsmodels'
  covariance is a finite-difference Hessian (relative error ~1e-6), so 1e-5 / 1e-4 leave
  two orders of margin above those errors while still catching any modelling difference.
- truth: n = 20000 from a known model, 30% MCAR: every estimate is within 3 SEs of the truth
  (a correct kernel fails one of the 5 checks with probability ~1.3% for a random seed; the
  seed is fixed, so the run is deterministic).
- draws: 1000 draws, whitened by chol(V)^-1, have mean 0 and covariance I within 4
  Monte-Carlo SEs (sqrt(1/N) for means and off-diagonals, sqrt(2/N) for diagonals).
- rejection: draws with unordered thresholds are redrawn, so the gap between two close
  thresholds follows the truncated normal, not the folded one that sorting gives (KS tests
  at alpha = 0.001, 5000 draws).
- imputations: always a level 0..K-1 (K = 2, 3, 7; extreme predictors), and at fixed
  parameters the imputed shares equal the model's probabilities within 4 binomial SEs.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import pytest
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel

from sparkmice.kernels import DEFAULT_METHOD, METHODS, polr
from sparkmice.kernels.augment import augmentation
from sparkmice.kernels.contract import BlockView, ObservedPool, StepData
from sparkmice.kernels.linalg import Moments
from sparkmice.kernels.newton import Draw, Fit, NewtonSums

ALPHA = 0.001
THETA = np.array([-1.0, 0.3, 1.2])
BETA = np.array([0.8, -0.5])


def simulate(n: int, theta: np.ndarray, beta: np.ndarray, seed: int):
    """Design with intercept and codes 0..K-1 from logit P(y <= k) = theta_k - z'beta."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(beta))) * [1.0, 2.0][: len(beta)]
    latent = z @ beta + rng.logistic(size=n)
    y = (latent[:, None] > theta).sum(axis=1).astype(float)
    return np.column_stack([np.ones(n), z]), y


def step_data(
    x: np.ndarray,
    y: np.ndarray,
    missing: np.ndarray,
    k: int,
    warm: np.ndarray | None = None,
    n_blocks: int = 3,
) -> StepData:
    """StepData over `n_blocks` row blocks (x with the intercept column)."""
    xo, yo = x[~missing], y[~missing]
    blocks = list(zip(np.array_split(xo, n_blocks), np.array_split(yo, n_blocks), strict=True))
    return StepData(
        moments=Moments.of(np.column_stack([xo[:, 1:], yo])),
        x_all=Moments.of(x[:, 1:]),
        x_min=x[:, 1:].min(0),
        x_max=x[:, 1:].max(0),
        n_levels=k,
        sum_over_blocks=lambda f: functools.reduce(operator.add, (f(a, b) for a, b in blocks)),
        warm_start=warm,
        pool=ObservedPool(yo, np.ones(len(yo))),
    )


def no_rows(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((0, p)), np.zeros(0), np.zeros(0)


def fit_rows(x: np.ndarray, y: np.ndarray, k: int, augmented: StepData | None = None) -> Fit:
    aug = augmentation(augmented) if augmented is not None else no_rows(x.shape[1])
    start = polr.start_values(None, x.shape[1], k)
    return polr.fit(lambda t, b: polr.block_sums(x, y, t, b), *aug, start, k)


def to_statsmodels(par: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(theta, beta) and its covariance -> (beta, theta_0, log increments), by the delta
    method (exact for the covariance at the MLE, where the score term vanishes)."""
    km1 = k - 1
    theta, beta = par[:km1], par[km1:]
    phi = np.concatenate([beta, [theta[0]], np.log(np.diff(theta))])
    # d phi / d (theta, beta)
    jac = np.zeros((len(par), len(par)))
    q = len(beta)
    jac[:q, km1:] = np.eye(q)
    jac[q, 0] = 1.0
    for j in range(1, km1):
        d = theta[j] - theta[j - 1]
        jac[q + j, j], jac[q + j, j - 1] = 1.0 / d, -1.0 / d
    return phi, jac @ v @ jac.T


def test_registered_as_default_for_ordered():
    assert METHODS["polr"] is polr.METHOD
    assert DEFAULT_METHOD["ordered"] == "polr"
    m = polr.METHOD
    assert m.kinds == ("ordered",) and m.uses_predictors and m.augments and m.warm_start


def test_score_and_information_are_derivatives_of_deviance():
    x, y = simulate(300, THETA, BETA, seed=2)
    par = np.array([-0.7, 0.1, 1.5, 0.5, -0.2])

    def sums(p: np.ndarray) -> NewtonSums:
        return polr.block_sums(x, y, p[:3], p[3:], np.linspace(0.5, 1.5, len(y)))

    s, h = sums(par), 1e-5
    eye = np.eye(len(par))
    num_score = np.array(
        [-(sums(par + h * e).deviance - sums(par - h * e).deviance) / (4 * h) for e in eye]
    )
    num_info = np.array(
        [-(sums(par + h * e).score - sums(par - h * e).score) / (2 * h) for e in eye]
    )
    np.testing.assert_allclose(s.score, num_score, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.info, num_info, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.info, s.info.T, atol=1e-10)


def test_block_sums_add_up_across_blocks():
    x, y = simulate(500, THETA, BETA, seed=3)
    theta, beta = np.array([-0.5, 0.2, 0.9]), np.array([0.3, 0.1])
    whole = polr.block_sums(x, y, theta, beta)
    parts = [
        polr.block_sums(a, b, theta, beta)
        for a, b in zip(*map(lambda m: np.array_split(m, 7), (x, y)), strict=True)
    ]
    total = functools.reduce(operator.add, parts)
    np.testing.assert_allclose(total.info, whole.info, rtol=1e-9)
    np.testing.assert_allclose(total.score, whole.score, rtol=1e-9, atol=1e-9)
    assert total.deviance == pytest.approx(whole.deviance, rel=1e-12)


def test_fit_equals_statsmodels_ordered_model():
    k = 4
    x, y = simulate(400, THETA, BETA, seed=1)
    f = fit_rows(x, y, k)
    ours, ours_cov = to_statsmodels(f.coef, f.v, k)
    res = OrderedModel(y, x[:, 1:], distr="logit").fit(
        method="bfgs", disp=False, maxiter=5000, gtol=1e-9
    )
    np.testing.assert_allclose(ours, np.asarray(res.params), atol=1e-5)
    np.testing.assert_allclose(ours_cov, np.asarray(res.cov_params()), atol=1e-4)


def test_recovers_the_truth_within_three_standard_errors():
    k, n = 4, 20_000
    x, y = simulate(n, THETA, BETA, seed=11)
    missing = np.random.default_rng(12).random(n) < 0.3
    step = step_data(x, y, missing, k)
    params = polr.parameters(step, np.random.default_rng(13))
    estimate = polr.from_matrix(params.coef)
    f = fit_rows(x[~missing], y[~missing], k, augmented=step)
    np.testing.assert_allclose(estimate, f.coef, atol=1e-6)  # same fit through StepData
    z = (estimate - np.concatenate([THETA, BETA])) / np.sqrt(np.diag(f.v))
    assert np.all(np.abs(z) < 3.0), z
    assert params.beta.shape == params.coef.shape == (3, k - 1)


def test_draws_follow_the_normal_posterior():
    k, n_draws = 4, 1000
    x, y = simulate(20_000, THETA, BETA, seed=21)
    f = fit_rows(x, y, k)
    rng = np.random.default_rng(22)
    draws = np.array([polr.draw(f, k, rng) for _ in range(n_draws)])
    white = np.linalg.solve(np.linalg.cholesky(f.v), (draws - f.coef).T).T
    assert np.all(np.abs(white.mean(0)) < 4 * np.sqrt(1 / n_draws))
    c = np.cov(white, rowvar=False)
    se = np.where(np.eye(len(c), dtype=bool), np.sqrt(2 / n_draws), np.sqrt(1 / n_draws))
    assert np.all(np.abs(c - np.eye(len(c))) < 4 * se), c


def test_unordered_draws_are_rejected_not_sorted(monkeypatch):
    # thresholds 0.1 apart with unit variances: about half the raw draws are unordered.
    # Rejection leaves the gap theta_1 - theta_0 ~ N(0.1, 2) truncated at 0; sorting would
    # fold it (|N(0.1, 2)|). KS at alpha = 0.001 with 5000 draws tells the two apart.
    f = Fit(np.array([0.0, 0.1, 0.5]), np.eye(3), 1)
    rng = np.random.default_rng(5)
    draws = np.array([polr.draw(f, 3, rng) for _ in range(5000)])
    gap = draws[:, 1] - draws[:, 0]
    assert np.all(gap > 0)
    s = np.sqrt(2.0)
    assert stats.kstest(gap, stats.truncnorm(-0.1 / s, np.inf, loc=0.1, scale=s).cdf).pvalue > ALPHA
    assert stats.kstest(gap, stats.foldnorm(0.1 / s, scale=s).cdf).pvalue < ALPHA
    # after MAX_REDRAWS failures the thresholds are sorted
    monkeypatch.setattr(polr, "MAX_REDRAWS", 1)
    f_tied = Fit(np.array([0.0, 0.0, 0.5]), np.eye(3), 1)
    sorted_draws = np.array([polr.draw(f_tied, 3, rng) for _ in range(200)])
    assert np.all(np.diff(sorted_draws[:, :2], axis=1) >= 0)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_imputations_are_valid_levels(k):
    rng = np.random.default_rng(k)
    n = 5000
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2)) * [1.0, 1e3]])
    theta = np.sort(rng.normal(size=k - 1) * 3)
    b = polr.to_matrix(np.concatenate([theta, [1.0, 0.01]]), k)
    view = BlockView.of(x, np.zeros(n), rng.random(n) < 0.5)
    codes = polr.impute(view, Draw(b, b, 1), rng)
    assert len(codes) == view.n_mis
    assert set(np.unique(codes)) <= set(range(k))
    assert np.all(codes == np.round(codes))


def test_imputed_shares_equal_model_probabilities():
    k, n = 4, 20_000
    x = np.tile([1.0, 0.5, -1.0], (n, 1))
    b = polr.to_matrix(np.concatenate([THETA, BETA]), k)
    codes = polr.impute(
        BlockView.of(x, np.zeros(n), np.ones(n, bool)), Draw(b, b, 1), np.random.default_rng(3)
    )
    cum = 1 / (1 + np.exp(-(THETA - x[0, 1:] @ BETA)))
    probs = np.diff(np.concatenate([[0.0], cum, [1.0]]))
    shares = np.bincount(codes.astype(int), minlength=k) / n
    assert np.all(np.abs(shares - probs) < 4 * np.sqrt(probs * (1 - probs) / n))


def test_warm_start_reaches_the_same_estimate_in_fewer_steps():
    k = 4
    x, y = simulate(3000, THETA, BETA, seed=31)
    missing = np.arange(3000) % 5 == 0
    cold = polr.parameters(step_data(x, y, missing, k), np.random.default_rng(1))
    warm = polr.parameters(step_data(x, y, missing, k, warm=cold.coef), np.random.default_rng(1))
    np.testing.assert_allclose(warm.coef, cold.coef, atol=1e-6)
    assert warm.iterations < cold.iterations
    # a warm start of the wrong shape (a predictor dropped since) is ignored
    odd = polr.parameters(step_data(x, y, missing, k, warm=cold.coef[:2]), np.random.default_rng(1))
    np.testing.assert_allclose(odd.coef, cold.coef, atol=1e-6)


def test_empty_level_stays_finite_with_augmentation():
    # level 2 of 4 never observed: without augmentation theta_1 = theta_2 (no MLE in the
    # ordered set); R mice's pseudo-rows give every level weight, so the fit stays finite
    k = 4
    x, y = simulate(2000, THETA, BETA, seed=41)
    y[y == 2] = 3
    missing = np.arange(2000) % 3 == 0
    params = polr.parameters(step_data(x, y, missing, k), np.random.default_rng(2))
    assert np.all(np.isfinite(params.coef)) and np.all(np.isfinite(params.beta))
    assert polr.ordered(params.coef[0]) and polr.ordered(params.beta[0])
    codes = polr.impute(BlockView.of(x, y, missing), params, np.random.default_rng(3))
    assert set(np.unique(codes)) <= set(range(k))


def test_needs_two_levels():
    x, y = simulate(50, THETA, BETA, seed=1)
    with pytest.raises(ValueError, match="at least 2 levels; got 1"):
        polr.parameters(step_data(x, np.zeros(50), np.zeros(50, bool), 1), np.random.default_rng(1))


@pytest.mark.parametrize("one_hot_levels", [polr.ONE_HOT_LEVELS, 0])
def test_group_sums_by_one_hot_product_and_by_bincount(monkeypatch, one_hot_levels: int):
    """The per-level weighted sums of the information's threshold-slope block, by the
    weighted one-hot GEMM (few levels) and by bincounts (many), against a plain loop over
    the levels (1e-12: rounding only)."""
    monkeypatch.setattr(polr, "ONE_HOT_LEVELS", one_hot_levels)
    rng = np.random.default_rng(3)
    idx, z = rng.integers(0, 5, 300), rng.standard_normal((300, 4))
    w = rng.standard_normal((2, 300))
    want = np.vstack([[(z[idx == g] * v[idx == g, None]).sum(axis=0) for g in range(5)] for v in w])
    np.testing.assert_allclose(polr._group_sums(idx, z, w, 5), want, rtol=1e-12, atol=1e-12)
