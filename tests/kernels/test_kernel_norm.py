"""sparkmice.kernels.norm: Bayesian linear regression draw (R mice's .norm.draw) and imputation.

Two kinds of checks:
- formula: with a generator seeded identically, the draw re-derived by hand on the raw rows
  (lstsq, chi-square, Cholesky of (X'X)^-1, in R mice's order) equals the kernel's to 1e-10;
- Monte Carlo: over many draws on one data set, the draws follow the exact posterior.
  With g ~ chi2(df), sigma*^2 = S/g and beta* | sigma* ~ N(beta-hat, sigma*^2 V):
  (beta*_j - beta-hat_j) / sqrt(S/df · V_jj) ~ t_df exactly, Cov(beta*) = S/(df-2) · V,
  E[sigma*^2] = S/(df-2). Bounds are 4 Monte-Carlo SEs (a correct kernel fails one such
  check with probability ~6e-5 for a random seed; the seeds are fixed, so runs are
  deterministic) and KS tests at alpha = 0.001.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_steps import step_data
from scipy import stats

from sparkmice.kernels import norm
from sparkmice.kernels.contract import BlockView

ALPHA = 0.001
N_DRAWS = 4000


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x for all rows, y (observed where ~missing), the missing mask (every 4th row)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)) * [1.0, 2.0] + [0.5, -1.0]
    y = 2.0 + x @ [1.0, -0.5] + rng.normal(size=n)
    missing = np.arange(n) % 4 == 0
    return x, y, missing


def _by_hand(x_obs: np.ndarray, y_obs: np.ndarray):
    xx = np.column_stack([np.ones(len(y_obs)), x_obs])
    coef, *_ = np.linalg.lstsq(xx, y_obs, rcond=None)
    rss = float(np.sum((y_obs - xx @ coef) ** 2))
    v = np.linalg.inv(xx.T @ xx)
    df = max(len(y_obs) - xx.shape[1], 1)
    return coef, v, rss, df


def test_parameters_reproduce_the_formula_with_the_same_random_inputs():
    """g ~ chi2(df) first, then z1 ~ N(0, I) (R mice's order); sigma* = sqrt(S/g);
    beta* = beta-hat + sigma* chol(V) z1. Tolerance 1e-10 relative: only rounding differs
    (moments vs raw rows)."""
    x, y, missing = _data(60, 1)
    x_obs, y_obs = x[~missing], y[~missing]
    coef, v, rss, df = _by_hand(x_obs, y_obs)
    rng = np.random.default_rng(42)
    g = rng.chisquare(df)
    sigma = np.sqrt(rss / g)
    beta = coef + sigma * np.linalg.cholesky(v) @ rng.standard_normal(len(coef))

    got = norm.parameters(step_data(x_obs, y_obs, x), np.random.default_rng(42))
    np.testing.assert_allclose(got.coef, coef, rtol=1e-10)
    np.testing.assert_allclose(got.beta, beta, rtol=1e-10)
    assert got.sigma == pytest.approx(sigma, rel=1e-10)


def test_impute_reproduces_the_formula():
    """y_mis = X_mis beta* + sigma* z2, x including the intercept; exact up to 1e-12."""
    x, y, missing = _data(40, 2)
    xx = np.column_stack([np.ones(len(y)), x])
    params = norm.NormDraw(np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0]), 0.7)
    got = norm.impute(BlockView.of(xx, y, missing), params, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    want = xx[missing] @ params.beta + 0.7 * rng.standard_normal(int(missing.sum()))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == (missing.sum(),)


@pytest.fixture(scope="module")
def posterior():
    """N_DRAWS draws of (beta*, sigma*) and of the imputations of 5 rows, on n_obs = 30
    (df = 27: far enough from the normal limit that the df/(df-2) factor is visible)."""
    x, y, missing = _data(40, 4)
    x_obs, y_obs = x[~missing], y[~missing]
    step = step_data(x_obs, y_obs, x)
    xx = np.column_stack([np.ones(len(y)), x])
    view = BlockView.of(xx, y, missing)
    rng = np.random.default_rng(5)
    betas, sigmas, imputed = [], [], []
    for _ in range(N_DRAWS):
        p = norm.parameters(step, rng)
        betas.append(p.beta)
        sigmas.append(p.sigma)
        imputed.append(norm.impute(view, p, rng)[:5])
    coef, v, rss, df = _by_hand(x_obs, y_obs)
    return {
        "beta": np.array(betas),
        "sigma": np.array(sigmas),
        "imputed": np.array(imputed),
        "x_mis": xx[missing][:5],
        "coef": coef,
        "v": v,
        "rss": rss,
        "df": df,
    }


def test_sigma_draws_follow_the_scaled_inverse_chi_square(posterior):
    """S / sigma*^2 ~ chi2(df) (KS, alpha 0.001); mean of sigma*^2 = S/(df-2) within
    4 SE, SD(sigma*^2) = S/(df-2)·sqrt(2/(df-4))."""
    rss, df, s2 = posterior["rss"], posterior["df"], posterior["sigma"] ** 2
    assert stats.kstest(rss / s2, stats.chi2(df).cdf).pvalue > ALPHA
    mean = rss / (df - 2)
    se = mean * np.sqrt(2.0 / (df - 4)) / np.sqrt(N_DRAWS)
    assert abs(s2.mean() - mean) < 4 * se


def test_beta_draws_are_t_distributed_about_beta_hat(posterior):
    """(beta*_j - beta-hat_j)/sqrt(S/df · V_jj) ~ t_df exactly: KS per coefficient
    (alpha 0.001) and the mean within 4 MC SEs of beta-hat."""
    beta, coef, v, rss, df = (posterior[k] for k in ("beta", "coef", "v", "rss", "df"))
    scale = np.sqrt(rss / df * np.diag(v))
    for j in range(len(coef)):
        assert stats.kstest((beta[:, j] - coef[j]) / scale[j], stats.t(df).cdf).pvalue > ALPHA
    cov = rss / (df - 2) * v
    se = np.sqrt(np.diag(cov) / N_DRAWS)
    assert np.all(np.abs(beta.mean(0) - coef) < 4 * se)


def test_beta_draws_have_the_exact_posterior_covariance(posterior):
    """Cov(beta*) = sigma-hat^2 (X'X)^-1 df/(df-2) = S/(df-2) · V.

    Whitened by chol of that covariance, the draws W = sqrt((df-2)/g)·z have Cov(W) = I;
    each entry of the sample covariance has SE sqrt((3(df-2)/(df-4) - 1)/N) on the diagonal
    and sqrt((df-2)/(df-4)/N) off it (fourth moments of the multivariate t). Bound: 4 SE."""
    beta, coef, v, rss, df = (posterior[k] for k in ("beta", "coef", "v", "rss", "df"))
    low = np.linalg.cholesky(rss / (df - 2) * v)
    w = np.linalg.solve(low, (beta - coef).T).T
    sample = w.T @ w / N_DRAWS  # centred at the known mean
    kurt = (df - 2) / (df - 4)
    se = np.where(np.eye(len(coef), dtype=bool), np.sqrt(3 * kurt - 1), np.sqrt(kurt))
    se = se / np.sqrt(N_DRAWS)
    assert np.all(np.abs(sample - np.eye(len(coef))) < 4 * se)


def test_imputations_follow_the_posterior_predictive(posterior):
    """For a missing row x: (y* - x'beta-hat) / sqrt(S/df (1 + x'Vx)) ~ t_df exactly
    (KS on the first row, alpha 0.001); every row's variance equals
    S/(df-2)·(1 + x'Vx) = sigma-hat^2 (1 + x'Vx) df/(df-2) within 4 SE."""
    imp, x_mis, coef, v, rss, df = (
        posterior[k] for k in ("imputed", "x_mis", "coef", "v", "rss", "df")
    )
    lev = np.einsum("ij,jk,ik->i", x_mis, v, x_mis)
    centred = imp - x_mis @ coef
    t0 = centred[:, 0] / np.sqrt(rss / df * (1 + lev[0]))
    assert stats.kstest(t0, stats.t(df).cdf).pvalue > ALPHA
    var = rss / (df - 2) * (1 + lev)
    se = var * np.sqrt((3 * (df - 2) / (df - 4) - 1) / N_DRAWS)
    assert np.all(np.abs((centred**2).mean(0) - var) < 4 * se)
