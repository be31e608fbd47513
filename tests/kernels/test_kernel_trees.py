"""sparkmice/kernels/histtree.py, cart.py, rf.py: quantile bins, the histogram split against
a brute-force search over every split of small data, rpart's cp pruning, donors from the
missing row's own leaf, and trees that do not depend on how the rows fall into blocks."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator

import numpy as np
import pytest

from sparkmice.kernels import cart, histtree, rf
from sparkmice.kernels.contract import BlockContext, BlockView, ObservedPool, StepData
from sparkmice.kernels.histtree import QuantilePoints, best_splits
from sparkmice.kernels.linalg import Moments


def binned(x: np.ndarray, unordered: list[bool]) -> tuple[np.ndarray, list[int]]:
    """Bin codes of x's columns (numbers by their cut points, categoricals as they are)."""
    codes = np.empty_like(x)
    bins = []
    for f in range(x.shape[1]):
        if unordered[f]:
            codes[:, f] = x[:, f]
            bins.append(int(x[:, f].max()) + 1)
        else:
            cuts = np.asarray(QuantilePoints.of(x[:, f]).cuts())
            codes[:, f] = np.searchsorted(cuts, x[:, f], side="right")
            bins.append(len(cuts) + 1)
    return codes, bins


def tree_step(
    codes: np.ndarray,
    y: np.ndarray,
    bins: list[int],
    unordered: list[bool] | None = None,
    n_levels: int = 0,
    blocks: int = 1,
    seed: int = 0,
) -> StepData:
    """StepData of a binned method over `blocks` contiguous blocks, each with its own
    random stream and scratch, as the sampler hands them."""
    n = len(y)
    xx = np.column_stack([np.ones(n), codes])
    parts = np.array_split(np.arange(n), blocks)
    scratch: list[dict] = [{} for _ in parts]

    def with_context(f):
        total = None
        for b, part in enumerate(parts):
            value = f(xx[part], y[part], BlockContext((seed, 1, 1, 0, 3, b), scratch[b]))
            total = value if total is None else total + value
        return total

    return StepData(
        moments=Moments.of(np.column_stack([codes, y])),
        x_all=Moments.of(codes),
        x_min=codes.min(0),
        x_max=codes.max(0),
        n_levels=n_levels,
        sum_over_blocks=lambda f: None,
        warm_start=None,
        pool=ObservedPool(y, np.ones(n)),
        bins=tuple(bins),
        unordered=tuple(unordered or [False] * len(bins)),
        sum_over_blocks_with_context=with_context,
    )


def view(codes_obs, y_obs, codes_mis) -> BlockView:
    ones = np.ones
    return BlockView(
        np.column_stack([ones(len(y_obs)), codes_obs]),
        y_obs,
        np.column_stack([ones(len(codes_mis)), codes_mis]),
    )


# -- bins --------------------------------------------------------------------------------
def test_few_distinct_values_each_get_their_own_bin_cut_midway():
    values = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 1.0])
    cuts = QuantilePoints.of(values).cuts()
    assert cuts == (1.5, 2.5, 4.0)  # rpart's split points: midway between values


def test_many_values_get_bins_of_equal_counts_from_merged_blocks():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(20_000)
    points = QuantilePoints.of(values[:7000]) + QuantilePoints.of(values[7000:])
    cuts = np.asarray(points.cuts())
    assert len(cuts) == histtree.BINS - 1
    counts = np.bincount(np.searchsorted(cuts, values, side="right"))
    expected = len(values) / histtree.BINS
    # each block's points are its quantiles at 1/256 steps: a bin is off by < 2 points' rows
    assert np.abs(counts - expected).max() < 2 * len(values) / histtree.POINTS


def test_exact_points_merge_in_any_grouping_to_the_same_cuts():
    values = np.repeat(np.arange(10.0), 7)
    whole = QuantilePoints.of(values).cuts()
    halves = (QuantilePoints.of(values[::2]) + QuantilePoints.of(values[1::2])).cuts()
    assert whole == halves


# -- the split against brute force ----------------------------------------------------------
def histograms(codes, y, bins, k):
    """One node's histograms, nodes x (every feature's bins) x stat, by plain loops."""
    stat = k if k else 2
    h = np.zeros((1, sum(bins), stat))
    for f in range(codes.shape[1]):
        for c, v in zip(codes[:, f].astype(int), y, strict=True):
            if k:
                h[0, sum(bins[:f]) + c, int(v)] += 1
            else:
                h[0, sum(bins[:f]) + c] += (1.0, v)
    return h


def impurity(y, k):
    """rpart's node impurity: sum of squares (anova) or n * gini (class)."""
    if not k:
        return ((y - y.mean()) ** 2).sum()
    p = np.bincount(y.astype(int), minlength=k) / len(y)
    return len(y) * (1 - (p**2).sum())


def brute_force(codes, y, bins, unordered, min_leaf, k):
    """The best gain over every threshold of an ordered feature and every subset of a
    nominal one's categories, and the left rows of one best split."""
    parent = impurity(y, k)
    best, rows = -np.inf, None
    for f in range(codes.shape[1]):
        c = codes[:, f].astype(int)
        present = np.unique(c)
        if unordered[f]:
            sides = [
                set(s)
                for r in range(1, len(present))
                for s in itertools.combinations(present.tolist(), r)
            ]
        else:
            sides = [set(range(b + 1)) for b in range(bins[f] - 1)]
        for side in sides:
            left = np.isin(c, list(side))
            if left.sum() < min_leaf or (~left).sum() < min_leaf:
                continue
            gain = parent - impurity(y[left], k) - impurity(y[~left], k)
            if gain > best + 1e-9:
                best, rows = gain, left
    return best, rows


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [0, 2], ids=["anova", "gini-two-classes"])
def test_histogram_split_is_the_brute_force_best(seed, k):
    rng = np.random.default_rng(seed)
    n = 40
    x = np.column_stack(
        [
            rng.integers(0, 8, n),  # numeric with 8 values
            rng.integers(0, 5, n),  # nominal, 5 categories
            rng.standard_normal(n).round(1),
        ]
    ).astype(float)
    unordered = [False, True, False]
    codes, bins = binned(x, unordered)
    signal = np.sin(x[:, 0]) + (x[:, 1] % 2) + 0.5 * x[:, 2]
    y = signal + rng.standard_normal(n)
    if k:
        y = (y > np.median(y)).astype(float)
    min_leaf = 5
    split = best_splits(
        histograms(codes, y, bins, k), np.array(bins), np.array(unordered), min_leaf, k
    )
    f, gain, goes_left = split.feature[0], split.gain[0], split.goes_left[0]
    expected, rows = brute_force(codes, y, bins, unordered, min_leaf, k)
    assert gain == pytest.approx(expected, rel=1e-9)
    left = goes_left[codes[:, f].astype(int)]
    split_gain = impurity(y, k) - impurity(y[left], k) - impurity(y[~left], k)
    assert split_gain == pytest.approx(expected, rel=1e-9)  # the split has that gain
    assert min(left.sum(), (~left).sum()) >= min_leaf


@pytest.mark.parametrize("seed", range(6))
def test_gini_split_of_three_classes_on_ordered_features_is_the_brute_force_best(seed):
    rng = np.random.default_rng(seed)
    n = 60
    x = np.column_stack([rng.integers(0, 10, n), rng.integers(0, 6, n)]).astype(float)
    y = np.clip((x[:, 0] // 4 + rng.integers(-1, 2, n)), 0, 2).astype(float)
    codes, bins = binned(x, [False, False])
    gain = best_splits(histograms(codes, y, bins, 3), np.array(bins), np.zeros(2, bool), 5, 3).gain[
        0
    ]
    expected, _ = brute_force(codes, y, bins, [False, False], 5, 3)
    assert gain == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("occupied", "left_bins"), [((0, 5), 3), ((1, 4), 3), ((0, 1), 1), ((2, 6), 5)]
)
def test_a_split_across_empty_bins_cuts_in_their_middle(occupied, left_bins):
    """A node with rows in two bins only, others empty (values only missing or out-of-bag
    rows have): every boundary between the two splits its rows alike, and the cut goes
    halfway, as rpart's and ranger's between the neighbouring values, so the empty bins
    are shared between the sides (the lower half left), not all sent right."""
    hist = np.zeros((1, 7, 2))
    low, high = occupied
    hist[0, low], hist[0, high] = [3.0, 0.0], [3.0, 30.0]  # weight, sum y
    split = best_splits(hist, np.array([7]), np.zeros(1, bool), 1.0, 0)
    assert split.feature[0] == 0 and split.gain[0] > 0
    assert split.goes_left[0].tolist() == [i < left_bins for i in range(7)]


def test_the_grown_trees_root_split_is_the_brute_force_best():
    rng = np.random.default_rng(4)
    n = 300
    x = np.column_stack([rng.integers(0, 20, n), rng.integers(0, 4, n)]).astype(float)
    y = (x[:, 0] > 12) * 2.0 + (x[:, 1] == 2) + rng.standard_normal(n)
    unordered = [False, True]
    codes, bins = binned(x, unordered)
    forest = cart.parameters(tree_step(codes, y, bins, unordered, blocks=3), rng)
    expected, rows = brute_force(codes, y, bins, unordered, 5, 0)
    f = forest.feature[0]
    assert f >= 0
    left = forest.goes_left[0][codes[:, f].astype(int)]
    assert (left == rows).all() or (left == ~rows).all()


@pytest.mark.parametrize("k", [0, 2], ids=["anova", "gini"])
def test_every_split_of_a_grown_tree_is_the_brute_force_best_for_its_rows(k):
    """Level by level, from summed and subtracted histograms: each node's split is the best
    over its own rows (cp = 0, so nothing is pruned away)."""
    rng = np.random.default_rng(1)
    n = 700
    x = np.column_stack(
        [rng.standard_normal(n), rng.standard_normal(n), rng.integers(0, 5, n)]
    ).astype(float)
    y = x[:, 0] ** 2 + x[:, 1] + (x[:, 2] == 3) + rng.standard_normal(n)
    if k:
        y = (y > np.median(y)).astype(float)
    unordered = [False, False, True]
    codes, bins = binned(x, unordered)
    forest = cart.parameters(
        tree_step(codes, y, bins, unordered, n_levels=k, blocks=3), rng, cp=0.0
    )
    checked = 0
    for node, rows in node_rows(forest, codes).items():
        f = forest.feature[node]
        if f < 0:
            continue
        expected, _ = brute_force(codes[rows], y[rows], bins, unordered, 5, k)
        go = forest.goes_left[node][codes[rows, f].astype(int)]
        gain = impurity(y[rows], k) - impurity(y[rows][go], k) - impurity(y[rows][~go], k)
        assert gain == pytest.approx(expected, rel=1e-7), node
        checked += 1
    assert checked > 20


# -- pruning -------------------------------------------------------------------------------
def node_rows(forest, codes):
    """Each node's rows, by walking the tree."""
    members = {0: np.arange(len(codes))}
    out = {}
    todo = [0]
    while todo:
        n = todo.pop()
        rows = members[n]
        out[n] = rows
        f = forest.feature[n]
        if f >= 0:
            go = forest.goes_left[n][codes[rows, f].astype(int)]
            members[forest.left[n]], members[forest.left[n] + 1] = rows[go], rows[~go]
            todo += [forest.left[n], forest.left[n] + 1]
    return out


def test_every_split_left_after_pruning_is_worth_cp():
    """Breiman's T(alpha): each split node's subtree lowers the risk by more than alpha per
    extra leaf (else rpart would have cut it back), alpha = cp * risk(root)."""
    rng = np.random.default_rng(7)
    n = 2000
    x = rng.standard_normal((n, 3))
    y = x[:, 0] ** 2 + np.where(x[:, 1] > 0, 1.0, 0.0) + rng.standard_normal(n)
    codes, bins = binned(x, [False] * 3)
    cp = 0.002
    forest = cart.parameters(tree_step(codes, y, bins), rng, cp=cp)
    rows = node_rows(forest, codes)
    alpha = cp * impurity(y, 0)
    leaves_below: dict[int, list[int]] = {}
    for n_ in sorted(rows, reverse=True):
        f = forest.feature[n_]
        leaves_below[n_] = (
            [n_] if f < 0 else leaves_below[forest.left[n_]] + leaves_below[forest.left[n_] + 1]
        )
    splits = [n_ for n_ in rows if forest.feature[n_] >= 0]
    assert len(splits) >= 3
    for n_ in splits:
        below = leaves_below[n_]
        drop = impurity(y[rows[n_]], 0) - sum(impurity(y[rows[leaf]], 0) for leaf in below)
        assert drop / (len(below) - 1) > alpha
    unpruned = cart.parameters(tree_step(codes, y, bins), rng, cp=0.0)
    assert (unpruned.feature >= 0).sum() > len(splits)
    root_only = cart.parameters(tree_step(codes, y, bins), rng, cp=1.0)
    assert (root_only.feature < 0).all() and root_only.leaf[0] == 0


def test_rparts_bound_stops_growth_only_where_pruning_would_cut():
    """rpart grows a node only while its risk and each ancestor's risk less alpha per
    level between them stay above alpha. Grown that way, the tree has exactly the splits
    of the whole tree (cp = 0) that the bound allows, fewer than the risk alone allows,
    and prunes to the same T(alpha), row for row, as the whole tree does."""
    rng = np.random.default_rng(11)
    n = 3000
    x = rng.standard_normal((n, 3))
    y = x[:, 0] ** 2 + np.where(x[:, 1] > 0, 1.0, 0.0) + 2.0 * rng.standard_normal(n)
    codes, bins = binned(x, [False] * 3)
    cp = 0.002
    alpha = cp * impurity(y, 0)
    bounded = cart.parameters(tree_step(codes, y, bins), rng, cp=cp)
    whole = cart.parameters(tree_step(codes, y, bins), rng, cp=0.0)
    rows = node_rows(whole, codes)
    risk = np.zeros(len(whole.feature))
    for node, members in rows.items():
        risk[node] = impurity(y[members], 0)
    ceiling = np.full(len(risk), np.inf)  # the bound's, and the risk alone's, verdicts
    alone = np.zeros(len(risk), dtype=bool)
    allowed, by_risk = set(), set()
    for node in sorted(rows):  # parents before children
        parent = next((p for p in rows if whole.feature[p] >= 0 and node in
                       (whole.left[p], whole.left[p] + 1)), None)  # fmt: skip
        if parent is not None:
            ceiling[node] = min(risk[parent], ceiling[parent]) - alpha
        alone[node] = risk[node] > alpha and (parent is None or alone[parent])
        if whole.feature[node] >= 0 and min(risk[node], ceiling[node]) > alpha:
            allowed.add(node)
        if whole.feature[node] >= 0 and alone[node]:
            by_risk.add(node)
    grown = int((bounded.left >= 0).sum())  # split when grown (pruning keeps `left`)
    assert grown == len({s for s in allowed if _ancestors_in(s, allowed, whole, rows)})
    assert grown < len(by_risk)
    pruned = dataclasses.replace(
        whole, feature=histtree._prune(whole.feature, whole.left, risk, alpha)
    )
    a = bounded.leaves_of(codes.astype(np.intp))[0]
    b = histtree.route(pruned.feature, pruned.goes_left, pruned.left, codes.astype(np.intp), 1)[0]
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(set(a)) == len(set(b))


def _ancestors_in(node, allowed, forest, rows) -> bool:
    """Whether every ancestor of `node` is in `allowed` (so that growth reaches it)."""
    for p in rows:
        if forest.feature[p] >= 0 and node in (forest.left[p], forest.left[p] + 1):
            return p in allowed and _ancestors_in(p, allowed, forest, rows)
    return True


# -- donors -------------------------------------------------------------------------------
def mar_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(-2, 2, n), rng.standard_normal(n), rng.integers(0, 6, n)])
    y = x[:, 0] ** 2 + x[:, 1] + (x[:, 2] == 3) + 0.5 * rng.standard_normal(n)
    missing = rng.random(n) < 1 / (1 + np.exp(-(-0.5 + x[:, 0])))
    unordered = [False, False, True]
    codes, bins = binned(x, unordered)
    return codes, y, missing, bins, unordered


@pytest.mark.parametrize("method", [cart, rf], ids=["cart", "rf"])
def test_imputations_are_observed_values_of_the_missing_rows_leaves(method):
    codes, y, missing, bins, unordered = mar_data(800, 3)
    obs = ~missing
    step = tree_step(codes[obs], y[obs], bins, unordered, blocks=2)
    forest = method.parameters(step, np.random.default_rng(5))
    imputed = method.impute(
        view(codes[obs], y[obs], codes[missing]), forest, np.random.default_rng(6)
    )
    leaves_obs = forest.leaves_of(codes[obs].astype(int))  # trees x observed rows
    leaves_mis = forest.leaves_of(codes[missing].astype(int))
    for i, value in enumerate(imputed):
        shares_a_leaf = (leaves_obs == leaves_mis[:, i][:, None]).any(axis=0)
        assert value in y[obs][shares_a_leaf]
    assert forest.n_trees == (10 if method is rf else 1)
    assert len(np.unique(imputed)) > 20  # many different donors


def test_a_leafs_donors_are_drawn_with_equal_chance():
    """A tree of one leaf (no predictors) over 3 blocks of 200 rows: every row is a donor
    with chance 1/600 (each block keeps a weighted sample of DONOR_CAP = 100)."""
    y = np.arange(600.0)
    step = tree_step(np.zeros((600, 0)), y, [], blocks=3)
    forest = cart.parameters(step, np.random.default_rng(0))
    assert len(forest.value) == 300 and set(forest.value) <= set(y)
    draws = cart.impute(
        view(np.zeros((600, 0)), y, np.zeros((60_000, 0))), forest, np.random.default_rng(1)
    )
    by_block = np.bincount((draws // 200).astype(int), minlength=3) / len(draws)
    # each block a third: binomial sd sqrt(1/3 * 2/3 / 60000) = 0.0019; 4 sd
    assert np.abs(by_block - 1 / 3).max() < 0.008


@pytest.mark.parametrize("method", [cart, rf], ids=["cart", "rf"])
def test_a_categorical_target_draws_levels_seen_in_its_leaves(method):
    rng = np.random.default_rng(2)
    n = 600
    x = rng.integers(0, 12, (n, 2)).astype(float)
    y = np.where(x[:, 0] < 4, 0.0, np.where(x[:, 0] < 8, 1.0, 2.0))
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 3, flip.sum())
    codes, bins = binned(x, [False, False])
    missing = rng.random(n) < 0.3
    obs = ~missing
    forest = method.parameters(tree_step(codes[obs], y[obs], bins, n_levels=3), rng)
    imputed = method.impute(view(codes[obs], y[obs], codes[missing]), forest, rng)
    assert set(imputed) <= {0.0, 1.0, 2.0}
    leaves = forest.leaves_of(codes[missing].astype(int))
    counts = forest.class_counts[leaves].sum(axis=0)
    assert (counts[np.arange(len(imputed)), imputed.astype(int)] > 0).all()
    assert (imputed == y[missing]).mean() > 0.8  # the tree found the three groups


def test_cart_grows_the_same_tree_on_any_grouping_of_rows_into_blocks():
    """Integer y: the summed histograms are exact, so 1, 3 or 7 blocks give one tree; and
    with leaves under DONOR_CAP rows per block, the same donors."""
    codes, y, missing, bins, unordered = mar_data(500, 9)
    y = np.round(3 * y)
    trees = [
        cart.parameters(tree_step(codes, y, bins, unordered, blocks=b), np.random.default_rng(0))
        for b in (1, 3, 7)
    ]
    for t in trees[1:]:
        np.testing.assert_array_equal(t.feature, trees[0].feature)
        np.testing.assert_array_equal(t.goes_left, trees[0].goes_left)
        np.testing.assert_array_equal(t.start, trees[0].start)
        for leaf in range(len(t.start) - 1):
            a, b = t.start[leaf], t.start[leaf + 1]
            assert sorted(t.value[a:b]) == sorted(trees[0].value[a:b])


def test_rf_is_reproducible_and_its_trees_differ():
    codes, y, missing, bins, unordered = mar_data(500, 1)
    first = rf.parameters(tree_step(codes, y, bins, unordered, blocks=2), np.random.default_rng(3))
    again = rf.parameters(tree_step(codes, y, bins, unordered, blocks=2), np.random.default_rng(3))
    np.testing.assert_array_equal(first.feature, again.feature)
    np.testing.assert_array_equal(first.value, again.value)
    roots = first.feature[: first.n_trees]
    other = rf.parameters(
        tree_step(codes, y, bins, unordered, blocks=2, seed=1), np.random.default_rng(3)
    )
    assert len(other.feature) != len(first.feature) or (other.feature != first.feature).any()
    assert len(set(roots.tolist())) > 1 or len(set(first.goes_left[: first.n_trees, 0])) > 1


@pytest.mark.parametrize("method", [cart, rf], ids=["cart", "rf"])
@pytest.mark.parametrize("k", [0, 3])
def test_a_fresh_scratch_at_every_sum_grows_the_same_forest(method, k):
    """The per-step engine hands every block function an empty scratch: each level then
    routes the block's rows down the whole tree so far instead of one level, to the
    same nodes, so the forest and its donors are those of the cached run."""
    codes, y, missing, bins, unordered = mar_data(600, 4)
    if k:
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3])).astype(float)
    cached = tree_step(codes, y, bins, unordered, n_levels=k, blocks=3)
    xx = np.column_stack([np.ones(len(y)), codes])
    parts = np.array_split(np.arange(len(y)), 3)

    def fresh_scratch(f):
        sums = [f(xx[p], y[p], BlockContext((0, 1, 1, 0, 3, b), {})) for b, p in enumerate(parts)]
        return functools.reduce(operator.add, sums)

    step = dataclasses.replace(cached, sum_over_blocks_with_context=fresh_scratch)
    a = method.parameters(cached, np.random.default_rng(2))
    b = method.parameters(step, np.random.default_rng(2))
    for field in ("feature", "goes_left", "left", "leaf", "start", "value", "class_counts"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_mtry_is_rangers_default():
    """floor(sqrt(p)), R mice 3.15's default (ranger), for numbers and categories alike."""
    assert [rf.mtry(p) for p in (1, 2, 3, 4, 5, 8, 9, 16)] == [1, 1, 1, 2, 2, 2, 3, 4]
