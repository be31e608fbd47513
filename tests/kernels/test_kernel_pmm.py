"""sparkmice.kernels.pmm: type-1 predictive mean matching (R mice's matchindex).

`match` is checked against a brute-force nearest-d search (exact, no tolerance: distances
are compared with the same floating-point subtraction), the random choice among the d
nearest with chi-square tests (alpha 0.001), and `impute` against the formula
y_obs[match(X_obs beta-hat, X_mis beta*)] with the same generator.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sparkmice.kernels import norm, pmm
from sparkmice.kernels.contract import BlockView

ALPHA = 0.001


def _within_nearest(yhat_obs: np.ndarray, yhat_mis: np.ndarray, idx: np.ndarray, d: int):
    """Brute force: each chosen donor's distance is at most the d-th smallest distance."""
    dist = np.abs(yhat_obs[None, :] - yhat_mis[:, None])
    dth = np.sort(dist, axis=1)[:, min(d, len(yhat_obs)) - 1]
    return dist[np.arange(len(yhat_mis)), idx] <= dth


@pytest.mark.parametrize("d", [1, 2, 5, 10])
@pytest.mark.parametrize("n_obs", [1, 3, 5, 9, 200])
def test_match_chooses_among_the_d_nearest(d: int, n_obs: int):
    """Targets inside and beyond the donors' range; n_obs below, at and above d and 2d;
    ties among yhat_obs (values rounded to a grid)."""
    rng = np.random.default_rng(100 * d + n_obs)
    yhat_obs = np.round(rng.normal(size=n_obs), 1)
    yhat_mis = np.concatenate([rng.normal(scale=1.5, size=300), [-10.0, 10.0]])
    idx = pmm.match(yhat_obs, yhat_mis, rng, donors=d)
    assert idx.shape == yhat_mis.shape
    assert np.all((idx >= 0) & (idx < n_obs))
    assert np.all(_within_nearest(yhat_obs, yhat_mis, idx, d))


def test_match_with_one_donor_is_the_exact_nearest():
    """d = 1 without ties: the argmin of |yhat_obs - yhat_mis|, row by row."""
    rng = np.random.default_rng(1)
    yhat_obs, yhat_mis = rng.normal(size=500), rng.normal(scale=2.0, size=1000)
    idx = pmm.match(yhat_obs, yhat_mis, rng, donors=1)
    want = np.argmin(np.abs(yhat_obs[None, :] - yhat_mis[:, None]), axis=1)
    np.testing.assert_array_equal(idx, want)


def test_match_draws_uniformly_among_the_d_nearest():
    """One target repeated 3000 times, d = 4: each of the 4 nearest donors about 1/4 of the
    time (chi-square, alpha 0.001); no other donor is ever chosen."""
    rng = np.random.default_rng(2)
    yhat_obs = rng.normal(size=30)
    target = 0.1
    nearest = np.argsort(np.abs(yhat_obs - target))[:4]
    idx = pmm.match(yhat_obs, np.full(3000, target), rng, donors=4)
    assert set(idx.tolist()) == set(nearest.tolist())
    counts = np.array([(idx == i).sum() for i in nearest])
    assert stats.chisquare(counts).pvalue > ALPHA


def test_tied_donors_are_chosen_at_random():
    """Two donors with the same yhat (0.0) and targets nearest to them.

    d = 1: as in R mice's matchindex, the observed rows are shuffled once per call, so one
    call sends all its rows to the same tied donor; over 1000 calls (one step each) both
    are chosen, each about half the time (two-sided binomial test, alpha 0.001).
    d = 2: within one call both tied donors are chosen, each about half of the rows."""
    yhat_obs = np.array([5.0, 0.0, -7.0, 0.0, 12.0])
    rng = np.random.default_rng(3)
    firsts = [pmm.match(yhat_obs, np.array([0.2, -0.1]), rng, donors=1) for _ in range(1000)]
    firsts = np.array(firsts)
    assert set(np.unique(firsts).tolist()) == {1, 3}
    assert stats.binomtest(int((firsts[:, 0] == 1).sum()), 1000).pvalue > ALPHA

    idx = pmm.match(yhat_obs, np.full(2000, 0.3), rng, donors=2)
    assert set(idx.tolist()) == {1, 3}
    assert stats.binomtest(int((idx == 1).sum()), 2000).pvalue > ALPHA


@pytest.mark.parametrize("grid", [None, 0.1])
def test_match_is_the_stable_sort_search(grid: float | None):
    """The faster sorts in `match` give exactly the donors of the plain recipe (shuffle,
    stable argsort, one searchsorted per row): tie order decided by the stable sort, so
    results do not depend on which sorting algorithm a CPU's numpy uses. With and without
    ties among yhat_obs and yhat_mis."""
    rng = np.random.default_rng(7)
    yhat_obs, yhat_mis = rng.normal(size=3000), rng.normal(size=2000)
    if grid:
        yhat_obs, yhat_mis = np.round(yhat_obs / grid) * grid, np.round(yhat_mis / grid) * grid

    def plain(r: np.random.Generator, d: int = 5) -> np.ndarray:
        shuffle = r.permutation(len(yhat_obs))
        order = shuffle[np.argsort(yhat_obs[shuffle], kind="stable")]
        s = yhat_obs[order]
        lo = np.clip(np.searchsorted(s, yhat_mis) - d, 0, len(s) - d)
        for _ in range(d):
            right = np.minimum(lo + d, len(s) - 1)
            lo = lo + ((lo + d < len(s)) & (s[right] - yhat_mis < yhat_mis - s[lo]))
        return order[lo + r.integers(0, d, len(yhat_mis))]

    got = pmm.match(yhat_obs, yhat_mis, np.random.default_rng(8))
    np.testing.assert_array_equal(got, plain(np.random.default_rng(8)))


def test_match_needs_an_observed_value():
    with pytest.raises(ValueError, match="at least one observed value"):
        pmm.match(np.zeros(0), np.zeros(3), np.random.default_rng(0))


def test_pmm_parameters_are_the_norm_draw():
    """beta-hat and beta* are drawn exactly as in norm (same function)."""
    assert pmm.parameters is norm.parameters


def test_impute_returns_observed_values_of_matched_donors():
    """yhat_obs = X_obs beta-hat, yhat_mis = X_mis beta* (not beta-hat: type-1 matching);
    the imputations are the matched donors' observed y, exactly."""
    rng = np.random.default_rng(4)
    n = 300
    x = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = np.round(x @ [1.0, 2.0, -1.0] + rng.normal(size=n), 2)
    missing = rng.random(n) < 0.3
    params = norm.NormDraw(np.array([1.0, 2.0, -1.0]), np.array([1.1, 1.8, -0.9]), 1.0)
    got = pmm.impute(BlockView.of(x, y, missing), params, np.random.default_rng(5))
    want_idx = pmm.match(
        x[~missing] @ params.coef, x[missing] @ params.beta, np.random.default_rng(5)
    )
    np.testing.assert_array_equal(got, y[~missing][want_idx])
    assert np.isin(got, y[~missing]).all()
    assert got.shape == (missing.sum(),)
    # matching on beta-hat for the missing rows would give other donors
    other = pmm.match(x[~missing] @ params.coef, x[missing] @ params.coef, np.random.default_rng(5))
    assert not np.array_equal(other, want_idx)
