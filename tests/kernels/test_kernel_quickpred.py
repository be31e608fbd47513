"""sparkmice/kernels/quickpred.py: pair moments that add up across batches in any split,
without losing precision to large means, and R's correlations from them."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from sparkmice.kernels import quickpred as qp


def codes_frame(n: int = 300, seed: int = 11) -> np.ndarray:
    """(rows, 4) codes with holes: a timestamp-like column (mean 1.7e9, sd 1), one related to
    it, a 3-category nominal and a constant; missing as NaN."""
    rng = np.random.default_rng(seed)
    t = 1.7e9 + rng.normal(size=n)
    y = 0.6 * (t - 1.7e9) + rng.normal(size=n)
    k = rng.integers(0, 3, size=n).astype(float)
    codes = np.column_stack([t, y, k, np.full(n, 0.1)])
    codes[rng.random(n) < 0.3, 1] = np.nan
    codes[rng.random(n) < 0.2, 0] = np.nan
    codes[rng.random(n) < 0.1, 2] = np.nan
    return codes


CATEGORIES = [0, 0, 3, 0]


def moments(codes: np.ndarray, cuts: list[int]) -> qp.PairMoments:
    parts = np.split(codes, cuts)
    return functools.reduce(
        qp.merge_moments, (qp.local_moments(p, CATEGORIES) for p in parts), qp.PairMoments.empty(6)
    )


def test_any_split_gives_the_same_association():
    codes = codes_frame()
    codes[:40, 1] = np.nan  # a batch in which y is never observed
    whole = qp.association(moments(codes, []), qp.owners(CATEGORIES))
    for cuts in ([40], [0, 40, 41, 200], [299]):  # with an empty batch and one-row batches
        split = qp.association(moments(codes, cuts), qp.owners(CATEGORIES))
        np.testing.assert_allclose(split.strength, whole.strength, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(split.pairs, whole.pairs)
        assert split.rows == whole.rows == len(codes)


def test_correlations_keep_their_precision_at_large_means():
    """cor(t, y) with t around 1.7e9: raw sums of squares (~3e18 per row) would leave no
    correct digit; the shifted moments agree with pandas' pairwise correlation."""
    codes = codes_frame()
    got = qp.association(moments(codes, [100, 200]), qp.owners(CATEGORIES))
    frame = pd.DataFrame(codes[:, :2], columns=["t", "y"])
    want = abs(frame["t"].corr(frame["y"]))
    assert want > 0.3
    assert got.strength[1, 0] == pytest.approx(want, rel=1e-9)


def test_constant_column_correlates_with_nothing():
    """R sets an undefined correlation to 0; the constant 0.1 gives exactly 0 in any split."""
    got = qp.association(moments(codes_frame(), [7, 150]), qp.owners(CATEGORIES))
    assert not got.strength[3].any() and not got.strength[:, 3].any()


def test_constant_on_the_pair_rows_only_has_no_spread_there():
    """x is constant (1000.1) on the rows where y is observed and varies elsewhere, its
    first observed value elsewhere: rounding leaves it a tiny m2 there (a correlation of
    ~1e-8 with y, which mincor 0 would keep); counted as 0, as R's undefined cor. The
    response indicator still sees x."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random(1000) < 0.5, 1000.1, rng.normal(size=1000) * 1e3)
    y = np.where(x == 1000.1, rng.normal(size=1000), np.nan)
    x[0], y[0] = -777.3, np.nan
    parts = np.array_split(np.column_stack([y, x]), 7)
    m = functools.reduce(
        qp.merge_moments, (qp.local_moments(p, [0, 0]) for p in parts), qp.PairMoments.empty(2)
    )
    assert m.m2[1, 0] > 0  # the rounding
    spread = qp._spread(m)
    assert spread[1, 0] == 0 and (spread[[0, 0, 1], [0, 1, 1]] == m.m2[[0, 0, 1], [0, 1, 1]]).all()
    strength = qp.association(m, qp.owners([0, 0])).strength
    frame = pd.DataFrame({"y": y, "x": x})
    response = abs(frame["y"].notna().astype(float).corr(frame["x"]))
    assert strength[0, 1] == pytest.approx(response, rel=1e-9) and response > 0.1
    assert (
        qp.rule(qp.association(m, qp.owners([0, 0])), ["y", "x"], qp.Options(mincor=0.6))[0, 1] == 0
    )


def test_nominal_is_the_largest_over_its_categories():
    codes = codes_frame()
    got = qp.association(moments(codes, []), qp.owners(CATEGORIES))
    frame = pd.DataFrame({"y": codes[:, 1], "k": codes[:, 2]})
    dummies = [(frame["k"] == level).astype(float).where(frame["k"].notna()) for level in range(3)]
    want = max(abs(frame["y"].corr(d)) for d in dummies)
    response = frame["y"].notna().astype(float)
    want = max(want, *(abs(response.corr(d)) for d in dummies))
    assert got.strength[1, 2] == pytest.approx(want, rel=1e-9)


def test_option_values():
    assert qp.options(None) is None and qp.options(False) is None
    assert qp.options(True) == qp.Options()
    assert qp.options({"minpuc": 0.25, "include": ["a"]}) == qp.Options(minpuc=0.25, include=("a",))
    assert not qp.valid({"method": "spearman"}) and not qp.valid({"mincor": True})
