"""sparkmice.kernels.augment: R mice's augment() pseudo-rows (White, Daniel & Royston 2010).

R builds the rows as (mice 3.x, R/augment.R)
    nr <- 2 * p * k
    a  <- matrix(mean, nrow = nr, ncol = p, byrow = TRUE)
    b  <- matrix(rep(c(rep.int(c(0.5, -0.5), k), rep.int(0, nr)), length = nr * p),
                 nrow = nr, ncol = p, byrow = FALSE)
    c  <- matrix(sd, nrow = nr, ncol = p, byrow = TRUE)
    d  <- pmin(maxx, pmax(minx, a + b * c))
    e  <- rep(rep(icod, each = 2), p);   w <- (p + 1) / nr
with mean, sd (n - 1 denominator), min and max over all rows of x. `_r_augment` below is
that code in numpy, R's vector recycling included; the tiny case is also worked by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from sparkmice.kernels.augment import augmentation, pseudo_rows
from sparkmice.kernels.contract import ObservedPool, StepData
from sparkmice.kernels.linalg import Moments


def _r_augment(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, p = x.shape
    nr = 2 * p * k
    a = np.tile(x.mean(0), (nr, 1))
    pattern = np.concatenate([np.tile([0.5, -0.5], k), np.zeros(nr)])
    b = np.resize(pattern, nr * p).reshape((nr, p), order="F")  # R's recycling, by column
    c = np.tile(x.std(0, ddof=1), (nr, 1))
    d = np.minimum(np.tile(x.max(0), (nr, 1)), np.maximum(np.tile(x.min(0), (nr, 1)), a + b * c))
    e = np.tile(np.repeat(np.arange(k, dtype=float), 2), p)
    return d, e, np.full(nr, (p + 1) / nr)


def _rows(x: np.ndarray, k: int):
    return pseudo_rows(x.mean(0), x.std(0, ddof=1), x.min(0), x.max(0), k)


def test_tiny_case_by_hand():
    """x1 = 1..5 (mean 3, sd sqrt(2.5)); x2 = 0,0,0,0,10 (mean 2, sd sqrt(20)): its
    2 - 0.5 sd = -0.236 is clipped to the minimum 0. k = 2 categories: 2·p·k = 8 rows,
    weights (p + 1)/nr = 3/8, codes 0,0,1,1 per predictor. Exact to 1e-12."""
    x = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 10.0]])
    h1, h2 = 0.5 * np.sqrt(2.5), 0.5 * np.sqrt(20.0)
    want_x = np.array(
        [
            [3 + h1, 2.0],
            [3 - h1, 2.0],
            [3 + h1, 2.0],
            [3 - h1, 2.0],
            [3.0, 2 + h2],
            [3.0, 0.0],  # clipped to min(x2)
            [3.0, 2 + h2],
            [3.0, 0.0],
        ]
    )
    ax, ay, aw = _rows(x, 2)
    np.testing.assert_allclose(ax, want_x, rtol=1e-12)
    np.testing.assert_array_equal(ay, [0, 0, 1, 1, 0, 0, 1, 1])
    np.testing.assert_allclose(aw, np.full(8, 3 / 8), rtol=1e-15)
    assert aw.sum() == pytest.approx(3.0)  # total weight p + 1


@pytest.mark.parametrize("p,k", [(1, 2), (3, 2), (2, 3), (4, 5)])
def test_equals_r_augment(p: int, k: int):
    """Against R's construction (recycling and all), exact to 1e-12; includes clipping
    (skewed columns) and the total weight p + 1."""
    rng = np.random.default_rng(10 * p + k)
    x = rng.exponential(size=(12, p)) ** 3  # skewed: mean - sd/2 often below the min
    ax, ay, aw = _rows(x, k)
    rx, ry, rw = _r_augment(x, k)
    assert ax.shape == (2 * p * k, p)
    np.testing.assert_allclose(ax, rx, rtol=1e-12)
    np.testing.assert_array_equal(ay, ry)
    np.testing.assert_allclose(aw, rw, rtol=1e-15)
    assert aw.sum() == pytest.approx(p + 1)
    assert np.all((ax >= x.min(0)) & (ax <= x.max(0)))
    if p > 1:
        assert np.any(ax == x.min(0))  # the clipping branch is exercised


def test_no_predictors_no_rows():
    ax, ay, aw = pseudo_rows(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), 3)
    assert ax.shape[0] == ay.shape[0] == aw.shape[0] == 0


def test_logreg_augmentation_uses_all_rows_of_x_and_adds_the_intercept():
    """The step's rows come from x over all rows (observed and missing y), as R's augment
    receives the full x; intercept column first."""
    rng = np.random.default_rng(3)
    x_all = rng.normal(size=(30, 2)) * [1.0, 3.0]
    obs = np.arange(30) % 3 != 0
    y = (rng.random(30) < 0.5).astype(float)
    step = StepData(
        moments=Moments.of(np.column_stack([x_all[obs], y[obs]])),
        x_all=Moments.of(x_all),
        x_min=x_all.min(0),
        x_max=x_all.max(0),
        n_levels=2,
        sum_over_blocks=lambda f: None,
        warm_start=None,
        pool=ObservedPool(y[obs], np.ones(int(obs.sum()))),
    )
    ax, ay, aw = augmentation(step)
    rx, ry, rw = _r_augment(x_all, 2)
    np.testing.assert_allclose(ax, np.column_stack([np.ones(len(ry)), rx]), rtol=1e-12)
    np.testing.assert_array_equal(ay, ry)
    np.testing.assert_allclose(aw, rw, rtol=1e-15)
