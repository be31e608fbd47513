"""sparkmice/design.py: the design matrix of one target, built from a block's codes.

Intercept first, a number as itself, a K-level factor as K-1 treatment indicators (level 0
the reference), rare levels collapsed into one shared indicator, the target's categories
last; collapsed target categories expand back to levels in proportion to their counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from small_plans import plan_of

from sparkmice.design import Design


@pytest.fixture
def frame() -> pd.DataFrame:
    # c: a 12 rows, b 6, d 1, e 1 (d and e rare under collapse_below=3)
    return pd.DataFrame(
        {
            "x": [0.5, 1.5, None, 3.0, 4.5, 5.0, 6.5, 7.0, 8.0, 9.5] * 2,
            "c": ["a"] * 12 + ["b"] * 6 + ["d", "e"],
            "y": [1.0, None, 2.0, 3.0] * 5,
        }
    )


def test_columns_are_the_predictors_with_factors_as_treatment_dummies(frame):
    plan, _ = plan_of(frame)
    design = Design.for_target(plan, "y")
    ix = plan.index
    assert design.target == ix["y"]
    assert design.columns == ((ix["x"], ()), (ix["c"], (1,)), (ix["c"], (2,)), (ix["c"], (3,)))
    assert design.names == ("x", "c[b]", "c[d]", "c[e]")
    assert design.groups is None


def test_build_gives_intercept_predictors_and_target_in_the_rows_order(frame):
    plan, blocks = plan_of(frame)
    design = Design.for_target(plan, "y")
    values = blocks[0].values
    rows = np.array([19, 0, 12, 18])  # a d-row, an a-row, a b-row, the other rare row
    z = design.build(values, rows)
    ix = plan.index
    want_c = values[rows, ix["c"]]
    np.testing.assert_array_equal(z[:, 0], 1.0)
    np.testing.assert_array_equal(z[:, 1], values[rows, ix["x"]])
    for k in (1, 2, 3):
        np.testing.assert_array_equal(z[:, 1 + k], (want_c == k).astype(float))
    np.testing.assert_array_equal(z[:, -1], values[rows, ix["y"]])
    assert z.shape == (4, 6) and z.flags.f_contiguous


def test_rare_levels_share_one_indicator_as_predictor(frame):
    plan, blocks = plan_of(frame, collapse_below=3)
    design = Design.for_target(plan, "y")
    assert design.names == ("x", "c[b]", "c[d|e]")
    z = design.build(blocks[0].values, np.arange(20))
    codes = blocks[0].values[:, plan.index["c"]]
    np.testing.assert_array_equal(z[:, 3], np.isin(codes, [2, 3]).astype(float))


def test_a_collapsed_target_is_modelled_as_categories_and_expanded_to_levels(frame):
    frame.loc[[0, 5], "c"] = None
    plan, _ = plan_of(frame, collapse_below=3)
    design = Design.for_target(plan, "c")
    assert design.groups == (0, 1, 2, 2)
    np.testing.assert_array_equal(design.categories(np.array([0.0, 1, 2, 3])), [0, 1, 2, 2])
    rng = np.random.default_rng(1)
    levels = design.levels_of(np.array([0.0, 1.0] + [2.0] * 4000), rng)
    assert levels[:2].tolist() == [0.0, 1.0]  # a category of one level is that level
    shared = levels[2:]
    assert set(np.unique(shared)) == {2.0, 3.0}
    # d and e were seen once each: equal shares (chi-square at alpha 0.001)
    counts = [(shared == 2).sum(), (shared == 3).sum()]
    assert stats.chisquare(counts).pvalue > 1e-3


def test_without_collapsed_levels_categories_are_the_codes(frame):
    plan, _ = plan_of(frame)
    design = Design.for_target(plan, "x")
    codes = np.array([3.0, 0.5, 7.25])
    assert design.categories(codes) is codes
    assert design.levels_of(codes, np.random.default_rng(0)) is codes


@pytest.fixture
def long_tail() -> pd.DataFrame:
    # g: a 1 row, b 8, c 6, d 3, e 2 (level 0, "a", is rare); y incomplete
    return pd.DataFrame(
        {
            "g": ["a"] + ["b"] * 8 + ["c"] * 6 + ["d"] * 3 + ["e"] * 2,
            "y": [1.0, None, 2.0, 3.5] * 5,
        }
    )


def test_a_predictor_beyond_max_dummies_keeps_its_most_frequent_categories(long_tail):
    """max_dummies=2: b and c (8 and 6 rows) keep their indicators; a, d and e share one,
    which holds level 0 and so is the reference: exactly 2 indicators. Logged."""
    plan, blocks = plan_of(long_tail, max_dummies=2)
    g = plan.variable("g")
    assert g.predictor_groups == (0, 1, 2, 0, 0)
    assert g.groups is None  # its own model keeps every level
    design = Design.for_target(plan, "y")
    assert design.names == ("g[b]", "g[c]")
    z = design.build(blocks[0].values, np.arange(20))
    codes = blocks[0].values[:, plan.index["g"]]
    np.testing.assert_array_equal(z[:, 1], (codes == 1).astype(float))
    np.testing.assert_array_equal(z[:, 2], (codes == 2).astype(float))
    (event,) = [e for e in plan.events if e["event"] == "predictor levels pooled"]
    assert event["variable"] == "g"
    assert "3 of its 5 categories" in event["detail"] and "max_dummies=2" in event["detail"]


def test_a_pooled_group_without_level_0_is_an_indicator_named_compactly():
    """Level 0 frequent: the pooled levels (more than LABELLED_CODES) are one indicator,
    named by its first level and their number."""
    g = ["a"] * 9 + ["b"] * 5 + ["c", "d", "e", "f"]
    frame = pd.DataFrame({"g": g, "y": [1.0, None, 2.0] * 6})
    plan, blocks = plan_of(frame, max_dummies=2)
    assert plan.variable("g").predictor_groups == (0, 1, 2, 2, 2, 2)
    design = Design.for_target(plan, "y")
    assert design.names == ("g[b]", "g[c|... (4 levels)]")
    z = design.build(blocks[0].values, np.arange(18))
    codes = blocks[0].values[:, plan.index["g"]]
    np.testing.assert_array_equal(z[:, 2], (codes >= 2).astype(float))


def test_max_dummies_pools_only_what_is_above_it(long_tail):
    """4 indicators: max_dummies 4 (and the default, 20) pool nothing, None never does."""
    for options in ({"max_dummies": 4}, {}, {"max_dummies": None}):
        plan, _ = plan_of(long_tail, **options)
        assert plan.variable("g").predictor_groups is None
        assert len(Design.for_target(plan, "y").columns) == 4
        assert not any(e["event"] == "predictor levels pooled" for e in plan.events)


def test_max_dummies_counts_categories_after_collapse_below(long_tail):
    """collapse_below=3 makes a and e one category (3 rows: a, e); with max_dummies=2 the
    most frequent b and c keep theirs and d joins the shared rare category (the reference)."""
    plan, _ = plan_of(long_tail, collapse_below=3, max_dummies=2)
    g = plan.variable("g")
    assert g.groups == (0, 1, 2, 3, 0)
    assert g.predictor_groups == (0, 1, 2, 0, 0)
    assert Design.for_target(plan, "y").names == ("g[b]", "g[c]")
