"""sparkmice.kernels.glm: one IRLS step's additive sums, against statsmodels GLM.

At any beta, X'WX equals minus statsmodels' Hessian (canonical links: observed = expected
information), the score equals its score and the deviance its family's deviance, to 1e-10
relative (same formulas, different rounding). Blocks add up to the sums over all rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from sparkmice.kernels.glm import GlmSums, irls_converged, irls_sums, mean_and_variance

FAMILIES = {
    "gaussian": sm.families.Gaussian(),
    "binomial": sm.families.Binomial(),
    "poisson": sm.families.Poisson(),
}


def _data(family: str):
    rng = np.random.default_rng(50)
    n = 150
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    eta = x @ [0.3, 0.5, -0.4]
    if family == "binomial":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        y = eta + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    return x, y, w


@pytest.mark.parametrize("family", list(FAMILIES))
def test_irls_sums_equal_statsmodels(family: str):
    x, y, w = _data(family)
    beta = np.array([0.1, 0.4, -0.2])
    got = irls_sums(x, y, beta, family, w)
    model = sm.GLM(y, x, family=FAMILIES[family], var_weights=w)
    # statsmodels scales the Gaussian log-likelihood by 1/scale; fix scale = 1
    np.testing.assert_allclose(got.xtwx, -model.hessian(beta, scale=1.0), rtol=1e-10)
    np.testing.assert_allclose(got.score, model.score(beta, scale=1.0), rtol=1e-10)
    mu = FAMILIES[family].link.inverse(x @ beta)
    assert got.deviance == pytest.approx(FAMILIES[family].deviance(y, mu, var_weights=w), 1e-10)
    assert got.n == pytest.approx(w.sum())


def test_binomial_deviance_of_proportions_equals_statsmodels():
    """Proportions (successes out of 5) take the general binomial deviance, 0/1 outcomes
    (above) its shortcut -2 log(probability of the outcome): both as statsmodels', 1e-10."""
    x, _, w = _data("binomial")
    mu = 1 / (1 + np.exp(-(x @ [0.3, 0.5, -0.4])))
    y = np.random.default_rng(51).binomial(5, mu) / 5.0
    assert np.any((y > 0) & (y < 1))
    beta = np.array([0.1, 0.4, -0.2])
    got = irls_sums(x, y, beta, "binomial", w)
    at = FAMILIES["binomial"].link.inverse(x @ beta)
    assert got.deviance == pytest.approx(FAMILIES["binomial"].deviance(y, at, var_weights=w), 1e-10)


def test_sums_add_over_blocks_and_round_trip_through_arrays():
    x, y, w = _data("binomial")
    beta = np.array([0.1, 0.4, -0.2])
    whole = irls_sums(x, y, beta, "binomial", w)
    parts = irls_sums(x[:60], y[:60], beta, "binomial", w[:60]) + irls_sums(
        x[60:], y[60:], beta, "binomial", w[60:]
    )
    for a, b in zip(parts, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    back = GlmSums.from_array(whole.to_array(), 3)
    for a, b in zip(back, whole, strict=True):
        np.testing.assert_array_equal(a, b)


def test_logistic_mean_does_not_overflow():
    mu, var = mean_and_variance("binomial", np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(mu, [0.0, 0.5, 1.0])
    assert np.all(np.isfinite(var))


def test_unknown_family_names_the_options():
    with pytest.raises(ValueError, match="family must be one of"):
        mean_and_variance("gamma", np.zeros(2))


def test_convergence_rule_is_glm_fit_s():
    """|dev - dev_old| / (|dev| + 0.1) < tol."""
    assert irls_converged(100.0, 100.0 + 1e-9, 1e-10)
    assert not irls_converged(100.0, 100.0 + 1e-7, 1e-10)
