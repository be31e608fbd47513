"""sparkmice.kernels.sample and .mean: the baselines (R mice's mice.impute.sample/.mean).

sample: only observed values, with the pool's weights (chi-square, alpha 0.001), and the
same draw as ObservedPool.draw by hand with the same generator. mean: the observed mean
(1e-12 relative: one mean over the rows vs Moments' mean).
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_steps import step_data as shared_step_data
from scipy import stats

from sparkmice.kernels import mean, sample
from sparkmice.kernels.contract import BlockView, ObservedPool, StepData
from sparkmice.kernels.linalg import Moments

ALPHA = 0.001


def step_data(x_obs: np.ndarray, y_obs: np.ndarray, pool: ObservedPool) -> StepData:
    return shared_step_data(x_obs, y_obs, pool=pool)


def _view(n: int, n_mis: int) -> BlockView:
    missing = np.zeros(n, dtype=bool)
    missing[:n_mis] = True
    return BlockView.of(np.ones((n, 1)), np.zeros(n), missing)


def test_sample_draws_observed_values_with_the_pool_weights():
    """Pool values 1, 2, 5 standing for 1, 3 and 6 rows: 20000 draws take only those
    values, in proportion 1:3:6 (chi-square, alpha 0.001)."""
    pool = ObservedPool(np.array([1.0, 2.0, 5.0]), np.array([1.0, 3.0, 6.0]))
    x = np.random.default_rng(0).normal(size=(10, 2))
    params = sample.parameters(step_data(x, np.arange(10.0), pool), np.random.default_rng(1))
    assert params is pool
    imp = sample.impute(_view(20005, 20000), params, np.random.default_rng(2))
    assert imp.shape == (20000,)
    assert set(np.unique(imp)) <= {1.0, 2.0, 5.0}
    counts = np.array([(imp == v).sum() for v in (1.0, 2.0, 5.0)])
    assert stats.chisquare(counts, 20000 * np.array([0.1, 0.3, 0.6])).pvalue > ALPHA


def test_sample_reproduces_the_weighted_choice():
    """values[rng.choice(n, size, p = w / sum(w))] with the same generator; exact."""
    pool = ObservedPool(np.array([3.0, -1.0, 4.0, 1.5]), np.array([2.0, 1.0, 1.0, 4.0]))
    got = pool.draw(50, np.random.default_rng(3))
    idx = np.random.default_rng(3).choice(4, size=50, p=pool.weights / pool.weights.sum())
    np.testing.assert_array_equal(got, pool.values[idx])


def test_sample_from_an_empty_pool_fails_clearly():
    pool = ObservedPool(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="no observed values"):
        sample.impute(_view(3, 2), pool, np.random.default_rng(0))


def test_mean_imputes_the_observed_mean():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(25, 2)), rng.normal(loc=3.0, size=25)
    pool = ObservedPool(y, np.ones(25))
    params = mean.parameters(step_data(x, y, pool), rng)
    assert params == pytest.approx(y.mean(), rel=1e-12)
    imp = mean.impute(_view(30, 7), params, rng)
    np.testing.assert_array_equal(imp, np.full(7, params))


def test_mean_over_merged_blocks_is_the_overall_mean():
    """The sampler merges per-partition moments; the mean is the mean of all observed y."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(40, 2)) + [0.0, 10.0]
    merged = Moments.of(z[:13]).merge(Moments.of(z[13:]))
    step = step_data(z[:, :1], z[:, 1], ObservedPool(z[:, 1], np.ones(40)))
    step = StepData(**{**step.__dict__, "moments": merged})
    assert mean.parameters(step, rng) == pytest.approx(z[:, 1].mean(), rel=1e-12)
