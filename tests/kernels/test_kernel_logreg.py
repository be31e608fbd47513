"""sparkmice.kernels.logreg: logistic regression imputation (R mice's mice.impute.logreg).

- solver: `fit` without augmentation rows equals statsmodels GLM Binomial (params and
  cov_params) to 1e-6 relative (both converge to ~1e-10; 1e-6 leaves room for the stopping
  rules, which differ); with the augmentation rows it equals GLM on the rows appended with
  their weights (R's glm.fit with prior weights w).
- formula: beta* = beta-hat + chol(V) z and the 0/1 draw u <= logistic(x'beta*) with the same
  generator, exact up to rounding.
- Monte Carlo: whitened draws are N(0, I) (KS alpha 0.001, covariance within 4 SE), and the
  imputations' mean equals the posterior predictive probability within 4 SE.
- separation: augmentation keeps the estimate finite; without it the coefficient runs off.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from kernel_steps import step_data as shared_step_data
from scipy import stats

from sparkmice.kernels import logreg
from sparkmice.kernels.augment import augmentation
from sparkmice.kernels.contract import BlockView, StepData
from sparkmice.kernels.newton import MAX_ITER, Draw

ALPHA = 0.001
N_DRAWS = 4000
NO_AUG = (np.zeros((0, 3)), np.zeros(0), np.zeros(0))


def step_data(
    x_obs: np.ndarray, y_obs: np.ndarray, x_all: np.ndarray, warm_start=None, blocks: int = 1
) -> StepData:
    """A binary target's StepData (see kernel_steps)."""
    return shared_step_data(x_obs, y_obs, x_all, 2, blocks, warm_start)


@pytest.fixture(scope="module")
def data():
    """n = 400, logit P(y = 1) = -0.5 + x1 - 0.7 x2; a quarter of y missing."""
    rng = np.random.default_rng(20)
    n = 400
    x = rng.normal(size=(n, 2)) * [1.0, 1.5]
    xx = np.column_stack([np.ones(n), x])
    y = (rng.random(n) < 1 / (1 + np.exp(-(xx @ [-0.5, 1.0, -0.7])))).astype(float)
    missing = np.arange(n) % 4 == 0
    return x, xx, y, missing


def _observed(xx: np.ndarray, y: np.ndarray):
    return lambda beta: logreg.block_sums(xx, y, beta)


def test_fit_without_augmentation_equals_statsmodels_glm(data):
    x, xx, y, missing = data
    xo, yo = xx[~missing], y[~missing]
    f = logreg.fit(_observed(xo, yo), *NO_AUG, np.zeros(3))
    ref = sm.GLM(yo, xo, family=sm.families.Binomial()).fit(tol=1e-12)
    np.testing.assert_allclose(f.coef, ref.params, rtol=1e-6)
    np.testing.assert_allclose(f.v, ref.cov_params(), rtol=1e-6)


def test_parameters_equal_glm_on_rows_with_weighted_augmentation(data):
    """R's logreg: glm.fit on observed + pseudo-rows with prior weights (p+1)/nr; unscaled
    covariance. statsmodels var_weights are R's prior weights. Tolerance 1e-6 relative."""
    x, xx, y, missing = data
    step = step_data(x[~missing], y[~missing], x)
    got = logreg.parameters(step, np.random.default_rng(0))
    ax, ay, aw = augmentation(step)
    ref = sm.GLM(
        np.concatenate([y[~missing], ay]),
        np.vstack([xx[~missing], ax]),
        family=sm.families.Binomial(),
        var_weights=np.concatenate([np.ones(int((~missing).sum())), aw]),
    ).fit(tol=1e-12)
    np.testing.assert_allclose(got.coef, ref.params, rtol=1e-6)
    f = logreg.fit(_observed(xx[~missing], y[~missing]), ax, ay, aw, np.zeros(3))
    np.testing.assert_allclose(f.v, ref.cov_params(), rtol=1e-6)
    # the augmentation pulls the estimate slightly toward zero, by O((p+1)/n)
    plain = logreg.fit(_observed(xx[~missing], y[~missing]), *NO_AUG, np.zeros(3))
    assert np.linalg.norm(f.coef[1:]) < np.linalg.norm(plain.coef[1:])


def test_fit_over_blocks_and_from_a_warm_start_is_the_same_estimate(data):
    """Sums over 3 blocks (as over partitions) and a far-off warm start (step halving)
    reach the same estimate to 1e-8 relative; a warm start at the solution needs <= 2 steps."""
    x, xx, y, missing = data
    one = logreg.parameters(step_data(x[~missing], y[~missing], x), np.random.default_rng(0))
    three = logreg.parameters(
        step_data(x[~missing], y[~missing], x, blocks=3), np.random.default_rng(0)
    )
    np.testing.assert_allclose(three.coef, one.coef, rtol=1e-8)
    far = logreg.parameters(
        step_data(x[~missing], y[~missing], x, warm_start=np.array([8.0, -9.0, 7.0])),
        np.random.default_rng(0),
    )
    np.testing.assert_allclose(far.coef, one.coef, rtol=1e-8)
    warm = logreg.parameters(
        step_data(x[~missing], y[~missing], x, warm_start=one.coef), np.random.default_rng(0)
    )
    assert warm.iterations <= 2
    np.testing.assert_allclose(warm.coef, one.coef, rtol=1e-8)


def test_draw_reproduces_the_formula(data):
    """beta* = beta-hat + chol(V) z, z ~ N(0, I) from the same generator; 1e-12."""
    x, xx, y, missing = data
    step = step_data(x[~missing], y[~missing], x)
    got = logreg.parameters(step, np.random.default_rng(7))
    f = logreg.fit(_observed(xx[~missing], y[~missing]), *augmentation(step), np.zeros(3))
    z = np.random.default_rng(7).standard_normal(3)
    want = f.coef + np.linalg.cholesky(f.v) @ z
    np.testing.assert_allclose(got.beta, want, rtol=1e-12)
    np.testing.assert_allclose(logreg.draw(f, np.random.default_rng(7)), want, rtol=1e-12)


def test_impute_reproduces_the_formula(data):
    """1 where u <= 1/(1 + exp(-x'beta*)), u ~ U(0, 1) from the same generator; exact."""
    _, xx, y, missing = data
    params = Draw(np.zeros(3), np.array([0.3, -1.2, 0.8]), 1)
    got = logreg.impute(BlockView.of(xx, y, missing), params, np.random.default_rng(8))
    u = np.random.default_rng(8).random(int(missing.sum()))
    prob = 1 / (1 + np.exp(-(xx[missing] @ params.beta)))
    np.testing.assert_array_equal(got, (u <= prob).astype(float))
    assert set(np.unique(got)) <= {0.0, 1.0}


@pytest.fixture(scope="module")
def posterior(data):
    """N_DRAWS draws of beta* and of the imputations of 4 missing rows at a fixed fit."""
    x, xx, y, missing = data
    step = step_data(x[~missing], y[~missing], x)
    f = logreg.fit(_observed(xx[~missing], y[~missing]), *augmentation(step), np.zeros(3))
    view = BlockView.of(xx[:16], y[:16], missing[:16])  # rows 0, 4, 8, 12 missing
    rng = np.random.default_rng(9)
    betas, imputed = [], []
    for _ in range(N_DRAWS):
        beta = logreg.draw(f, rng)
        betas.append(beta)
        imputed.append(logreg.impute(view, Draw(f.coef, beta, 0), rng))
    return f, np.array(betas), np.array(imputed), xx[:16][missing[:16]]


def test_beta_draws_have_covariance_v(posterior):
    """W = chol(V)^-1 (beta* - beta-hat) ~ N(0, I): KS per coordinate (alpha 0.001);
    sample covariance within 4 SE of I (SE sqrt(2/N) diagonal, sqrt(1/N) off-diagonal);
    mean of beta* within 4 SE of beta-hat."""
    f, betas, _, _ = posterior
    w = np.linalg.solve(np.linalg.cholesky(f.v), (betas - f.coef).T).T
    for j in range(w.shape[1]):
        assert stats.kstest(w[:, j], stats.norm.cdf).pvalue > ALPHA
    se = np.where(np.eye(3, dtype=bool), np.sqrt(2.0), 1.0) / np.sqrt(N_DRAWS)
    assert np.all(np.abs(w.T @ w / N_DRAWS - np.eye(3)) < 4 * se)
    assert np.all(np.abs(w.mean(0)) < 4 / np.sqrt(N_DRAWS))


def test_imputations_mean_is_the_posterior_predictive_probability(posterior):
    """E[y*] = E[logistic(x'beta*)] with x'beta* ~ N(x'beta-hat, x'Vx) (Gauss-Hermite,
    60 nodes); each row's mean of 4000 imputations within 4 binomial SEs of it. That
    probability is within 0.01 of the fitted probability logistic(x'beta-hat)."""
    f, _, imputed, x_mis = posterior
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    mu = x_mis @ f.coef
    sd = np.sqrt(np.einsum("ij,jk,ik->i", x_mis, f.v, x_mis))
    prob = (weights / weights.sum() / (1 + np.exp(-(mu[:, None] + sd[:, None] * nodes)))).sum(1)
    se = np.sqrt(prob * (1 - prob) / N_DRAWS)
    assert np.all(np.abs(imputed.mean(0) - prob) < 4 * se)
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-mu)), atol=0.01)


@pytest.fixture(scope="module")
def separated():
    """x1 perfectly separates y (y = 1 exactly when x1 > 0)."""
    rng = np.random.default_rng(30)
    n = 200
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] > 0).astype(float)
    missing = np.arange(n) % 5 == 0
    return x, y, missing


def test_separation_augmentation_keeps_the_estimate_finite(separated):
    """With the pseudo-rows (the default) the fit converges to moderate coefficients
    (|beta| < 50), and the draws and imputations are finite 0/1 values."""
    x, y, missing = separated
    step = step_data(x[~missing], y[~missing], x)
    got = logreg.parameters(step, np.random.default_rng(1))
    assert got.iterations < MAX_ITER
    assert np.all(np.isfinite(got.coef)) and np.all(np.abs(got.coef) < 50)
    assert np.all(np.isfinite(got.beta))
    xx = np.column_stack([np.ones(len(y)), x])
    imp = logreg.impute(BlockView.of(xx, y, missing), got, np.random.default_rng(2))
    assert set(np.unique(imp)) <= {0.0, 1.0}
    # the separating predictor still dominates: imputations follow the sign of x1 mostly
    assert np.mean(imp == (x[missing, 0] > 0)) > 0.9


def test_separation_without_augmentation_runs_off(separated):
    """Documents why augmentation is the default: without the pseudo-rows the maximum
    likelihood estimate does not exist, and the x1 coefficient ends > 10× larger in
    magnitude than the augmented one, with a variance beyond 1e6."""
    x, y, missing = separated
    xo = np.column_stack([np.ones(int((~missing).sum())), x[~missing]])
    plain = logreg.fit(_observed(xo, y[~missing]), *NO_AUG, np.zeros(3))
    aug = logreg.parameters(step_data(x[~missing], y[~missing], x), np.random.default_rng(1))
    assert abs(plain.coef[1]) > 10 * abs(aug.coef[1])
    assert plain.v[1, 1] > 1e6
