"""sparkmice.kernels.linalg: Moments (Chan merge), least squares from moments (R mice's
estimice), predictor removal (R mice's remove.lindep) and the symmetric Cholesky factor.

Reference solvers are numpy's lstsq / inv on the raw rows. Tolerances are relative and
state the rounding they allow: the kernel works from centred cross-products, the reference
from raw rows, so they agree to rounding amplified by the condition number (~1e2 here).
"""

from __future__ import annotations

import numpy as np
import pytest

from sparkmice.kernels import linalg
from sparkmice.kernels.linalg import (
    LINDEP_EPS,
    MAXCOR,
    RIDGE,
    Moments,
    collinear_predictors,
    least_squares,
    symmetric_cholesky,
)


def _design(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three predictors of different scales and offsets, and a linear y with noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [5.0, -20.0, 1.0]
    x[:, 1] += 3.0 * x[:, 0]  # correlated predictors
    y = 1.5 + x @ [0.7, -0.05, 3.0] + rng.normal(size=n)
    return x, y


def _assert_close(actual: np.ndarray, desired: np.ndarray, rtol: float) -> None:
    """Relative to the largest entry, so near-zero entries do not demand exact zeros."""
    scale = float(np.max(np.abs(desired)))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------- Moments


def test_moments_merge_of_split_blocks_equals_moments_of_all_rows():
    """Chan's pairwise merge, blocks of sizes 0, 1, 37, 62 (order as the engine adds them).

    Tolerance 1e-10 relative: both sides are exact up to rounding; an offset of 1e4 makes a
    raw-sums implementation lose ~8 digits, so this also guards the stable update."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(100, 4)) + 1e4
    cuts = [0, 0, 1, 38, 100]
    merged = Moments.of(z[0:0])
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        merged = merged.merge(Moments.of(z[lo:hi]))
    whole = Moments.of(z)
    assert merged.n == whole.n == 100
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12)
    _assert_close(merged.cross, whole.cross, rtol=1e-10)
    # the merge is order-free up to rounding (tasks may finish in any order)
    other = Moments.of(z[38:]).merge(Moments.of(z[:38]))
    _assert_close(other.cross, whole.cross, rtol=1e-10)


def test_moments_take_and_variance():
    z = np.random.default_rng(2).normal(size=(50, 3))
    m = Moments.of(z).take([2, 0])
    np.testing.assert_allclose(m.mean, z[:, [2, 0]].mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.variance(), z[:, [2, 0]].var(0, ddof=1), rtol=1e-12)


def test_diagonal_moments_merge_take_and_variance_as_the_full_ones(monkeypatch):
    """diagonal_of keeps the full Moments' n, means and diagonal through the same merges
    (blocks of 0, 1, 37, 62 rows, offset 1e4; its rows 16 at a time) and take: 1e-10
    relative, rounding only."""
    monkeypatch.setattr(linalg, "CHUNK_ROWS", 16)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(100, 4)) * [1.0, 2.0, 0.5, 3.0] + 1e4
    cuts = [0, 0, 1, 38, 100]
    full, diagonal = Moments.of(z[0:0]), Moments.diagonal_of(z[0:0])
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        full = full.merge(Moments.of(z[lo:hi]))
        diagonal = diagonal.merge(Moments.diagonal_of(z[lo:hi]))
    assert diagonal.cross.shape == (4,) and diagonal.n == full.n == 100
    np.testing.assert_allclose(diagonal.mean, full.mean, rtol=1e-12)
    np.testing.assert_allclose(diagonal.cross, np.diag(full.cross), rtol=1e-10)
    np.testing.assert_allclose(diagonal.variance(), z.var(0, ddof=1), rtol=1e-10)
    kept = diagonal.take([3, 1])
    np.testing.assert_allclose(kept.variance(), z[:, [3, 1]].var(0, ddof=1), rtol=1e-10)


# ---------------------------------------------------------------- least squares


def test_least_squares_matches_lstsq_on_raw_rows():
    """coef, V = (X'X)^-1 and RSS against numpy on [1, x]; tolerance 1e-9 relative
    (condition number of X'X here ~1e6 in raw scale, so raw-row rounding is ~1e-10)."""
    x, y = _design(200, 3)
    xx = np.column_stack([np.ones(len(y)), x])
    coef, _, _, _ = np.linalg.lstsq(xx, y, rcond=None)
    rss = float(np.sum((y - xx @ coef) ** 2))
    ls = least_squares(Moments.of(np.column_stack([x, y])))
    _assert_close(ls.coef, coef, rtol=1e-9)
    _assert_close(ls.v, np.linalg.inv(xx.T @ xx), rtol=1e-9)
    assert ls.rss == pytest.approx(rss, rel=1e-9)
    assert ls.df == len(y) - xx.shape[1]
    assert not ls.ridge


def test_least_squares_from_merged_blocks_equals_one_block():
    """The engine sums moments over partitions: same fit to 1e-10 relative."""
    x, y = _design(120, 4)
    z = np.column_stack([x, y])
    merged = Moments.of(z[:50]).merge(Moments.of(z[50:]))
    a, b = least_squares(merged), least_squares(Moments.of(z))
    _assert_close(a.coef, b.coef, rtol=1e-10)
    _assert_close(a.v, b.v, rtol=1e-10)
    assert a.rss == pytest.approx(b.rss, rel=1e-10)


def test_least_squares_intercept_only():
    """No predictors: coef = mean(y), V = 1/n, RSS = sum of squares about the mean."""
    y = np.random.default_rng(5).normal(size=17)
    ls = least_squares(Moments.of(y[:, None]))
    assert ls.coef == pytest.approx([y.mean()], rel=1e-12)
    assert ls.v == pytest.approx(np.array([[1 / 17]]), rel=1e-12)
    assert ls.rss == pytest.approx(float(np.sum((y - y.mean()) ** 2)), rel=1e-12)
    assert ls.df == 16


def test_least_squares_df_floor_is_one():
    """df = max(n_obs - p, 1) as R mice's estimice (3 rows, 3 predictors + intercept)."""
    z = np.random.default_rng(6).normal(size=(3, 4))
    assert least_squares(Moments.of(z)).df == 1.0


def test_least_squares_ridge_fallback_on_exact_collinearity():
    """x3 = x1 + x2: the ridge fallback (R mice's kappa = 1e-5 on diag) is used on the
    standardised centred cross-products; slopes equal the hand-computed ridge solution and
    the fitted values still reproduce the least-squares fit (x3 lies in the span)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 2))
    x = np.column_stack([x, x[:, 0] + x[:, 1]])
    y = 1.0 + x[:, 0] - x[:, 1] + rng.normal(size=80)
    ls = least_squares(Moments.of(np.column_stack([x, y])))
    assert ls.ridge
    c = x - x.mean(0)
    cxx, cxy = c.T @ c, c.T @ (y - y.mean())
    s = np.sqrt(np.diag(cxx))
    b = np.linalg.solve((cxx + RIDGE * np.diag(np.diag(cxx))) / np.outer(s, s), cxy / s) / s
    _assert_close(ls.coef[1:], b, rtol=1e-8)
    xx = np.column_stack([np.ones(80), x])
    full, *_ = np.linalg.lstsq(xx, y, rcond=None)
    # a ridge of 1e-5 moves the fitted values by O(1e-5) relative
    np.testing.assert_allclose(xx @ ls.coef, xx @ full, atol=1e-3)
    assert np.all(np.isfinite(ls.v))


# ---------------------------------------------------------------- remove.lindep


def _remove_lindep(x: np.ndarray, y: np.ndarray) -> list[int]:
    """R mice 3.x remove.lindep, written from its source on raw rows (returns dropped columns).

    One deliberate difference, as DESIGN §2 specifies: |cor(x, y)| >= maxcor is dropped,
    where R's code tests cor(x, y) < maxcor without abs (so R keeps r = -0.999)."""
    keep = x.var(axis=0, ddof=1) > LINDEP_EPS
    for i in np.flatnonzero(keep):
        if abs(np.corrcoef(x[:, i], y)[0, 1]) >= MAXCOR:
            keep[i] = False
    while keep.sum() > 1:
        idx = np.flatnonzero(keep)
        values, vectors = np.linalg.eigh(np.corrcoef(x[:, idx], rowvar=False))
        if values[0] / values[-1] >= LINDEP_EPS:
            break
        keep[idx[np.argmax(np.abs(vectors[:, 0]))]] = False
    return sorted(np.flatnonzero(~keep).tolist())


def _dropped(x: np.ndarray, y: np.ndarray) -> dict[int, str]:
    return dict(collinear_predictors(Moments.of(np.column_stack([x, y]))))


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(100, 2))
    y = x @ [0.5, -0.5] + rng.normal(size=100)
    return x, y


def test_no_predictor_dropped_on_well_conditioned_data(xy):
    assert _dropped(*xy) == {}


def test_predictor_constant_relative_to_its_size_is_dropped(xy):
    """Ids near 2^60 spaced 1e6 apart: sd / size ~ 1e-12 < R's QR tolerance 1e-7, so the
    column is the intercept to working precision; the same spacing near 0 is kept."""
    x, y = xy
    spacing = 1e6 * np.arange(len(y), dtype=float)
    assert _dropped(np.column_stack([x, 2.0**60 + spacing]), y) == {
        2: "collinear with the intercept"
    }
    assert _dropped(np.column_stack([x, spacing]), y) == {}


def test_constant_predictor_dropped(xy):
    """Variance 1e-6 < eps = 1e-4, and an exactly constant column: both 'constant'."""
    x, y = xy
    tiny = 1e-3 * np.random.default_rng(9).normal(size=len(y))
    x = np.column_stack([x[:, 0], np.full(len(y), 3.0), x[:, 1], 7.0 + tiny])
    assert _dropped(x, y) == {1: "constant", 3: "constant"}
    assert _remove_lindep(x, y) == [1, 3]


def test_predictor_nearly_identical_to_target_dropped(xy):
    """x2 = y + small noise (r ~ 0.999 >= 0.99): 'collinear with the target'."""
    x, y = xy
    close = y + 0.03 * np.random.default_rng(10).normal(size=len(y))
    assert np.corrcoef(close, y)[0, 1] >= MAXCOR
    x = np.column_stack([x, close])
    assert _dropped(x, y) == {2: "collinear with the target"}
    assert _remove_lindep(x, y) == [2]


def test_collinear_with_target_uses_absolute_correlation(xy):
    """r ~ -0.999 is dropped too (DESIGN §2: |r| >= 0.99). R mice's own code keeps it
    (it tests cor < maxcor without abs); this documents the chosen behaviour."""
    x, y = xy
    x = np.column_stack([x, -y + 0.03 * np.random.default_rng(10).normal(size=len(y))])
    assert _dropped(x, y) == {2: "collinear with the target"}


def test_one_of_linearly_dependent_predictors_dropped(xy):
    """x3 = x1 + x2: exactly one column goes, the one loading most on the smallest
    eigenvector of cor(x) (here x3, whose standardised loading is ~sqrt(2) times larger)."""
    x, y = xy
    x = np.column_stack([x, x[:, 0] + x[:, 1]])
    assert _dropped(x, y) == {2: "collinear"}
    assert _remove_lindep(x, y) == [2]


def test_repeated_removal_and_all_reasons_agree_with_reference():
    """Two dependencies (x3 = x1 + x2, x4 = x1 - 2 x2), a constant and a copy of y:
    the kernel drops the same columns as the literal remove.lindep on raw rows."""
    rng = np.random.default_rng(11)
    n = 150
    x1, x2, x5 = rng.normal(size=(3, n))
    y = x1 - x2 + 0.5 * x5 + rng.normal(size=n)
    x = np.column_stack(
        [x1, np.ones(n), x2, x1 + x2, y + 0.01 * rng.normal(size=n), x1 - 2 * x2, x5]
    )
    dropped = _dropped(x, y)
    assert sorted(dropped) == _remove_lindep(x, y)
    assert dropped[1] == "constant"
    assert dropped[4] == "collinear with the target"
    # rank({x1, x2, x1 + x2, x1 - 2 x2}) = 2: two of them go, x5 stays
    assert [dropped.get(i) for i in (0, 2, 3, 5)].count("collinear") == 2
    assert 6 not in dropped


def test_collinearity_from_merged_moments_matches_single_block():
    """The sampler calls it on moments summed over partitions."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(90, 2))
    x = np.column_stack([x, 2 * x[:, 0] - x[:, 1], np.full(90, 1.0)])
    z = np.column_stack([x, rng.normal(size=90)])
    merged = Moments.of(z[:31]).merge(Moments.of(z[31:]))
    assert collinear_predictors(merged) == collinear_predictors(Moments.of(z))


# ---------------------------------------------------------------- symmetric Cholesky


def test_symmetric_cholesky_symmetrises_first():
    """R mice's chol(sym(v)): a slightly asymmetric V (rounding) gives the factor of
    (V + V')/2 to 1e-12 relative."""
    a = np.random.default_rng(13).normal(size=(4, 4))
    v = a @ a.T + np.eye(4)
    skew = v.copy()
    skew[0, 1] += 1e-9
    low = symmetric_cholesky(skew)
    assert np.allclose(np.triu(low, 1), 0.0)
    np.testing.assert_allclose(low @ low.T, (skew + skew.T) / 2, rtol=1e-12, atol=1e-12)


def test_symmetric_cholesky_jitters_a_singular_covariance():
    """Rank-deficient PSD V: finite factor, L L' = V up to the 1e-10·max(diag) jitter."""
    b = np.random.default_rng(14).normal(size=(3, 2))
    v = b @ b.T  # rank 2
    low = symmetric_cholesky(v)
    assert np.all(np.isfinite(low))
    np.testing.assert_allclose(low @ low.T, v, atol=1e-8 * np.max(np.diag(v)))


def test_newton_solve_and_inverse_do_not_depend_on_units():
    """Rescaling the predictors by D (1e-9..1e9) rescales a^-1 b and a^-1 by D^-1 exactly
    in exact arithmetic; equilibrated, in floating point to 1e-10 relative."""
    from sparkmice.kernels.newton import inverse, solve

    rng = np.random.default_rng(16)
    z = rng.normal(size=(200, 4))
    a, b = z.T @ z, rng.normal(size=4)
    d = np.array([1e-9, 1.0, 1e4, 1e9])
    scaled_a, scaled_b = a * np.outer(d, d), b * d
    np.testing.assert_allclose(solve(scaled_a, scaled_b) * d, solve(a, b), rtol=1e-10)
    np.testing.assert_allclose(
        inverse(scaled_a) * np.outer(d, d), inverse(a), rtol=1e-10, atol=0
    )
