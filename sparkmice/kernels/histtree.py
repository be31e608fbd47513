"""Histogram trees grown from sums that add across blocks: the shared kernel of cart and rf.

Every predictor arrives as bin codes (`Method.binned`): a number's quantile bin (edges from
`BINS` weighted quantiles of its observed values, merged over blocks in block order, so
they depend on the data, never on the layout), a categorical's category. A forest of
`n_trees` trees grows level by level, all trees at once: at each level one sum over blocks
gives, per open node, its totals (weight, sum y, sum y^2; class counts for a categorical
target) and, per feature and bin, the weight and sum y (class counts); siblings get one
histogram summed and the other by subtraction from their parent's. A block keeps, for
the step, its bin codes (uint8 for up to 256 bins) and its rows still in nodes that may
split, with their nodes (`_Rows`); at each level only those rows move one node down and
only they are summed (np.bincount per feature), so a level costs its open rows, not the
block's, and the sums add the rows in row order as before. The best split of a node is
then found on the driver (or in every barrier task alike) from those sums:

* continuous target: rpart's anova gain, SS(parent) - SS(left) - SS(right);
* categorical target: rpart's gini gain, n(1 - sum p^2) over parent minus children;
* an ordered feature splits bins at a boundary; a nominal one splits its categories ordered
  by the node's mean y (anova) or rate of the node's majority class (gini): exact for
  anova and two classes (Breiman et al. 1984, 9.4), a heuristic for more classes, where
  rpart searches every subset. Categories absent from the node go with the larger child;
* a split needs `min_leaf` weight on each side and a node `min_split` weight to be split;
  ties go to the first feature and the lowest boundary, as rpart's; boundaries that split
  the node's rows alike (bins of no weight between) count as one, cut in their middle,
  as rpart and ranger cut halfway between neighbouring values (`_middle_of_ties`).

With `cp` > 0 (cart) the grown tree is pruned as rpart prunes: a node whose risk (SS, or
misclassified count) is at most alpha = cp * risk(root) is not split, nor one k levels
below an ancestor whose risk is at most (k + 1) * alpha (rpart's bound: such a split
never survives pruning), and the tree is cut back to Breiman's T(alpha), the smallest
subtree minimising risk + alpha * leaves.

Donors: every observed row is routed to its leaf (rf: in-bag and out-of-bag rows, as R
mice's ranger route does) and each leaf keeps its observed y values: all of them up to
`DONOR_CAP` per block, beyond that a uniform sample of `DONOR_CAP` weighted by the block's
count over the cap, so each observed row of the leaf is a donor with probability exactly
1 / (its leaf's rows) (exact for leaves of at most `DONOR_CAP` rows per block). A
categorical target keeps each leaf's class counts instead (exact: R mice's cart draws from
rpart's leaf class probabilities, the same distribution).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkmice.kernels.contract import BlockContext, BlockView, StepData

BINS = 64  # quantile bins per numeric predictor (fewer distinct values: one bin each)
POINTS = 4 * BINS  # quantile points a block contributes to the edges
DONOR_CAP = 100  # donors a leaf keeps per block (more: a weighted uniform sample)
MAX_DEPTH = 30  # rpart's maxdepth
BOOTSTRAP, DONORS = 0, 1  # purposes of a block's random streams (BlockContext.rng)
GAIN_TOLERANCE = 1e-10  # a gain below this share of the root's risk is no split (rounding)
_FITS = itertools.count()  # fit numbers of this process: keys of the scratch caches only


# -- bin edges -----------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantilePoints:
    """A block's summary of one numeric column: its distinct values with counts (`exact`)
    or POINTS evenly spaced order statistics, each standing for its share of the rows."""

    values: np.ndarray
    weights: np.ndarray
    exact: bool

    @classmethod
    def of(cls, column: np.ndarray) -> QuantilePoints:
        column = column[np.isfinite(column)]
        distinct, counts = np.unique(column, return_counts=True)
        if len(distinct) <= POINTS:
            return cls(distinct, counts.astype(float), True)
        ranks = ((np.arange(POINTS) + 0.5) * (len(column) / POINTS)).astype(np.intp)
        values = np.partition(column, ranks)[ranks]
        return cls(values, np.full(POINTS, len(column) / POINTS), False)

    def __add__(self, other: QuantilePoints) -> QuantilePoints:
        return QuantilePoints(
            np.concatenate([self.values, other.values]),
            np.concatenate([self.weights, other.weights]),
            self.exact and other.exact,
        )

    def cuts(self, bins: int = BINS) -> tuple[float, ...]:
        """Cut points: midway between distinct values when there are at most `bins` of
        them (each value its own bin, rpart's split points), else the weighted quantiles
        at 1/bins, 2/bins, ... (distinct ones)."""
        order = np.argsort(self.values, kind="stable")
        values, weights = self.values[order], self.weights[order]
        distinct = np.unique(values)
        if len(distinct) <= bins and self.exact:
            return tuple(((distinct[1:] + distinct[:-1]) / 2).tolist())
        cumulative = np.cumsum(weights)
        targets = cumulative[-1] * np.arange(1, bins) / bins
        at = np.minimum(np.searchsorted(cumulative, targets, side="left"), len(values) - 1)
        cuts = np.unique(values[at])
        return tuple(cuts[cuts > values[0]].tolist())


# -- the forest ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Growth:
    """How a forest grows: trees, bootstrap weights, features tried per split (None: all),
    least weight per leaf and per split, cp (0: no pruning), classes of y (0: continuous)."""

    n_trees: int = 1
    bootstrap: bool = False
    mtry: int | None = None
    min_leaf: float = 5.0
    min_split: float = 15.0
    cp: float = 0.0
    n_classes: int = 0


@dataclass(frozen=True)
class DonorPool:
    """Observed values with their leaf and weight (each stands for `weight` rows)."""

    leaf: np.ndarray
    value: np.ndarray
    weight: np.ndarray

    def __add__(self, other: DonorPool) -> DonorPool:
        return DonorPool(
            np.concatenate([self.leaf, other.leaf]),
            np.concatenate([self.value, other.value]),
            np.concatenate([self.weight, other.weight]),
        )


@dataclass(frozen=True)
class Forest:
    """Grown trees and their leaves' donors. Nodes are numbered over all trees (tree t's
    root is node t); `feature` is -1 at a leaf; a split node's children are `left` and
    `left + 1`, a row going left where `goes_left[node, bin]`. `leaf` numbers each node
    that is a leaf. Donors of leaf l: `value[start[l]:start[l+1]]` with cumulative weights
    `cumulative` (continuous y); or `class_counts[l]` (categorical y)."""

    feature: np.ndarray
    goes_left: np.ndarray
    left: np.ndarray
    leaf: np.ndarray
    n_trees: int
    start: np.ndarray
    value: np.ndarray
    cumulative: np.ndarray
    class_counts: np.ndarray

    def leaves_of(self, x: np.ndarray) -> np.ndarray:
        """n_trees x rows: the leaf each row of `x` (bin codes, no intercept) falls in."""
        nodes = route(self.feature, self.goes_left, self.left, x, self.n_trees)
        return self.leaf[nodes]


def route(
    feature: np.ndarray,
    goes_left: np.ndarray,
    left: np.ndarray,
    x: np.ndarray,
    n_trees: int,
    nodes: np.ndarray | None = None,
) -> np.ndarray:
    """n_trees x rows node of each row, moved down from `nodes` (default: the roots) until
    it reaches a node that is not split."""
    n = x.shape[0]
    if nodes is None:
        flat = np.repeat(np.arange(n_trees, dtype=np.intp), n)
    else:
        flat = nodes.reshape(-1).copy()
    items = np.flatnonzero(feature[flat] >= 0)
    flat[items] = _descend(feature, goes_left, left, x, items % max(n, 1), flat[items])
    return flat.reshape(n_trees, n)


def _descend(
    feature: np.ndarray,
    goes_left: np.ndarray,
    left: np.ndarray,
    x: np.ndarray,
    rows: np.ndarray,
    nodes: np.ndarray,
) -> np.ndarray:
    """The nodes that rows `rows` of `x` (bin codes) reach from `nodes`, moving down until a
    node that is not split; only the rows still at a split node are looked at, so a level
    costs the rows that move at it."""
    cells = _cells(x)
    nodes = nodes.copy()
    moving = np.flatnonzero(feature.take(nodes) >= 0)
    while len(moving):
        at = nodes.take(moving)
        at = _down(feature.take(at), goes_left, left, cells, rows.take(moving), at)
        nodes[moving] = at
        moving = moving.take(np.flatnonzero(feature.take(at) >= 0))
    return nodes


def _cells(x: np.ndarray) -> tuple[np.ndarray, int, int]:
    """x's cells as one flat array, and how far apart a row's and a column's cells are
    (flat `take`s are much faster than numpy's two-array indexing)."""
    if x.flags.f_contiguous:
        return x.ravel(order="F"), 1, x.shape[0]
    x = np.ascontiguousarray(x)
    return x.ravel(), x.shape[1], 1


def _down(
    f: np.ndarray,
    goes_left: np.ndarray,
    left: np.ndarray,
    cells: tuple[np.ndarray, int, int],
    rows: np.ndarray,
    nodes: np.ndarray,
) -> np.ndarray:
    """The child each row goes to from its node, split on feature `f` (`_cells` of the bin
    codes); a node that is not split (f = -1) gives a meaningless child."""
    flat, row_step, column_step = cells
    code = flat.take((rows if row_step == 1 else rows * row_step) + f * column_step)
    go_left = goes_left.ravel().take(nodes * goes_left.shape[1] + code)
    return left.take(nodes) + ~go_left


class _Tree:
    """The forest while it grows (driver side): per node its split, children, parent,
    risk, depth and `ceiling` (rpart's bound on what splitting below it can gain, see
    `grow`; +inf without one), in arrays that double when full."""

    def __init__(self, n_trees: int, width: int):
        self.n = 0
        self.feature = np.full(0, -1, dtype=np.intp)
        self.goes_left = np.zeros((0, width), dtype=bool)
        self.left = np.full(0, -1, dtype=np.intp)
        self.parent = np.full(0, -1, dtype=np.intp)
        self.risk = np.zeros(0)
        self.depth = np.zeros(0, dtype=np.intp)
        self.ceiling = np.zeros(0)
        self.add(np.full(n_trees, -1), 0)

    def add(self, parents: np.ndarray, depth: np.ndarray | int) -> np.ndarray:
        """New nodes with these parents (and depths); their numbers."""
        new = np.arange(self.n, self.n + len(parents))
        if new[-1:].size and new[-1] >= len(self.feature):
            size = max(2 * len(self.feature), new[-1] + 1)
            grown = size - len(self.feature)
            self.feature = np.r_[self.feature, np.full(grown, -1, dtype=np.intp)]
            self.goes_left = np.vstack(
                [self.goes_left, np.zeros((grown, self.goes_left.shape[1]), dtype=bool)]
            )
            self.left = np.r_[self.left, np.full(grown, -1, dtype=np.intp)]
            self.parent = np.r_[self.parent, np.full(grown, -1, dtype=np.intp)]
            self.risk = np.r_[self.risk, np.zeros(grown)]
            self.depth = np.r_[self.depth, np.zeros(grown, dtype=np.intp)]
            self.ceiling = np.r_[self.ceiling, np.full(grown, np.inf)]
        self.parent[new] = parents
        self.depth[new] = depth
        self.n += len(parents)
        return new

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.feature[: self.n], self.goes_left[: self.n], self.left[: self.n]


def grow(step: StepData, growth: Growth, rng: np.random.Generator) -> Forest:
    """Grow the forest from sums over all blocks, prune it (cp > 0), collect its donors.

    Each level is one sum over blocks: the totals of the nodes made by the last level's
    splits (`fresh`) and the histograms of those that may split (`direct`: of two such
    siblings only the smaller, the other's is its parent's minus it).

    With cp > 0 a node splits only while rpart's bound allows: its risk and, for each
    ancestor k levels up, that ancestor's risk less k * alpha, all above alpha (rpart's
    partition(): a child's "complexity" is its parent's min(risk, complexity) - alpha).
    A node it stops is a leaf of T(alpha) anyway: T(alpha) keeps a split below an
    ancestor only where the ancestor's branch, k + 1 splits or more, gains over alpha
    per split, so more than (k + 1) * alpha in all, which its risk bounds. The pruned
    tree is the same, with fewer nodes grown and summed."""
    if step.sum_over_blocks_with_context is None:
        raise ValueError("a tree method needs StepData.sum_over_blocks_with_context")
    sums = step.sum_over_blocks_with_context
    bins = np.asarray(step.bins, dtype=np.intp)
    unordered = np.asarray(step.unordered, dtype=bool)
    n_features = len(bins)
    width = int(bins.max(initial=1))
    total_bins = int(bins.sum())
    k = growth.n_classes
    stat = k if k else 2  # per bin: class weights, or weight and sum y
    centre = 0.0 if k else float(step.moments.mean[-1])  # sums of squares stay accurate
    token = next(_FITS)  # names this fit's rows in the blocks' scratch

    def rows_of(x: np.ndarray, y: np.ndarray, ctx: BlockContext) -> _Rows:
        return _Rows.of(x, y, ctx, growth, centre, width, token)

    tree = _Tree(growth.n_trees, width)
    fresh = np.arange(growth.n_trees)
    direct = fresh if n_features else fresh[:0]
    may_split = direct  # the nodes that will have histograms (direct or by subtraction)
    pairs = np.zeros(0, dtype=np.intp)  # parents whose two children both have histograms
    pair_hist = np.zeros((0, total_bins, stat))
    alpha = root_risk = -1.0
    levels = 0
    while len(fresh):
        level = _Level.of(levels, tree.n, fresh, direct, may_split)
        levels += 1
        flat = sums(_level_function(tree.arrays(), level, rows_of, bins, k))
        cut = len(fresh) * (3 + k)
        totals = flat[:cut].reshape(len(fresh), 3 + k)
        summed = flat[cut:].reshape(len(direct), total_bins, stat)
        # the larger sibling of a pair: its parent's histograms minus the summed one's
        in_pair = _slots(pairs, tree.n)[tree.parent[direct]]
        paired = in_pair >= 0
        siblings = 2 * tree.left[tree.parent[direct[paired]]] + 1 - direct[paired]
        with_hist = np.r_[direct, siblings]
        if paired.all():  # (copies of these arrays are a large part of a level's time)
            hist = np.concatenate([summed, pair_hist.take(in_pair, axis=0) - summed])
        else:
            hist = np.concatenate([summed, pair_hist[in_pair[paired]] - summed[paired]])
        risks = _risk(totals, k)
        if root_risk < 0:
            root_risk = float(risks.max(initial=0.0))
            alpha = growth.cp * root_risk
        tree.risk[fresh] = risks
        at = _slots(fresh, tree.n)[with_hist]
        can = totals[at, 0] >= growth.min_split
        if growth.cp > 0:
            can &= np.minimum(risks[at], tree.ceiling[with_hist]) > alpha
        if not can.any():
            break
        nodes, h = (with_hist, hist) if can.all() else (with_hist[can], hist[can])
        tried = _feature_subsets(len(nodes), n_features, growth.mtry, rng)
        best = best_splits(h, bins, unordered, growth.min_leaf, k, tried)
        worth = (best.feature >= 0) & (best.gain > GAIN_TOLERANCE * root_risk)
        split = nodes[worth]
        if not len(split):
            break
        depth = tree.depth[split] + 1
        children = tree.add(np.repeat(split, 2), np.repeat(depth, 2)).reshape(-1, 2)
        tree.feature[split] = best.feature[worth]
        tree.left[split] = children[:, 0]
        tree.goes_left[split] = best.goes_left[worth]
        weights = np.column_stack([best.left_weight[worth], best.right_weight[worth]])
        if growth.cp > 0:  # rpart's bound on the children (its leftson's "complexity")
            bound = np.minimum(tree.risk[split], tree.ceiling[split]) - alpha
            tree.ceiling[children] = bound[:, None]
        splittable = (weights >= growth.min_split) & (depth < MAX_DEPTH)[:, None]
        splittable &= tree.ceiling[children] > alpha
        # cart needs every leaf's risk for pruning; rf only the nodes that may split
        fresh = children.ravel() if growth.cp > 0 else children[splittable]
        both = splittable.all(axis=1)
        smaller = children[np.arange(len(split)), (weights[:, 1] < weights[:, 0]).astype(int)]
        one = splittable.any(axis=1) & ~both
        direct = np.sort(np.r_[smaller[both], children[one][splittable[one]]])
        pairs, pair_hist = split[both], h.take(np.flatnonzero(worth)[both], axis=0)
        may_split = children[splittable]
    feature, goes_left, left = (a.copy() for a in tree.arrays())
    if growth.cp > 0:
        feature = _prune(feature, left, tree.risk[: tree.n], alpha)
    leaf, n_leaves = _leaf_numbers(feature, tree.parent[: tree.n], tree.depth[: tree.n])
    return _with_donors(step, (feature, goes_left, left), leaf, n_leaves, growth, rows_of)


def _level_function(
    tree: tuple[np.ndarray, ...],
    level: _Level,
    rows_of: Callable[[np.ndarray, np.ndarray, BlockContext], _Rows],
    bins: np.ndarray,
    k: int,
) -> Callable[[np.ndarray, np.ndarray, BlockContext], np.ndarray]:
    """The block function of one level (`_Rows.sums`)."""

    def block(x: np.ndarray, y: np.ndarray, ctx: BlockContext) -> np.ndarray:
        return rows_of(x, y, ctx).sums(tree, level, bins, k)

    return block


def _slots(nodes: np.ndarray, n_nodes: int) -> np.ndarray:
    """node -> its position in `nodes`, -1 for the others."""
    slot = np.full(n_nodes, -1, dtype=np.intp)
    slot[nodes] = np.arange(len(nodes))
    return slot


@dataclass(frozen=True)
class _Level:
    """What the blocks sum at level `index`: the totals of the `fresh` nodes (each node's
    slot among them; `n_fresh` for the other nodes, a slot summed and dropped) and the
    histograms of the `direct` ones. By fresh slot (and the extra one): `direct` gives
    the direct slot (-1: none) and `may_split` whether the node's rows are still needed
    (every direct node, and every node that may split, is fresh)."""

    index: int
    fresh: np.ndarray
    n_fresh: int
    direct: np.ndarray
    n_direct: int
    may_split: np.ndarray

    @classmethod
    def of(
        cls, index: int, n_nodes: int, fresh: np.ndarray, direct: np.ndarray,
        may_split: np.ndarray,
    ) -> _Level:  # fmt: skip
        """The level's lookups, for a tree of `n_nodes` nodes."""
        slot = np.full(n_nodes, len(fresh), dtype=np.intp)
        slot[fresh] = np.arange(len(fresh))
        direct_slot = np.full(len(fresh) + 1, -1, dtype=np.intp)
        direct_slot[slot[direct]] = np.arange(len(direct))
        may = np.zeros(len(fresh) + 1, dtype=bool)
        may[slot[may_split]] = True
        return cls(index, slot, len(fresh), direct_slot, len(direct), may)


class _Rows:
    """A block's rows while the forest grows (kept in its scratch for the step): bin codes
    (rows x features, smallest unsigned type), y less the centre, bootstrap weights, and
    each item's node (items: tree * rows + row, flat). The items still in nodes that may
    split are `open` (in item order, so sums add in the order the rows come), with their
    rows and nodes; `levels`: the levels summed so far."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ctx: BlockContext, growth: Growth,
                 centre: float, width: int):  # fmt: skip
        n = len(y)
        self.codes = np.asfortranarray(x[:, 1:].astype(np.min_scalar_type(max(width - 1, 0))))
        self.cells = _cells(self.codes)
        self.y = y - centre
        self.weights: np.ndarray | None = None
        self.open = np.arange(growth.n_trees * n)
        if growth.bootstrap:  # Poisson(1) counts: the bootstrap without a global row index
            weights = ctx.rng(BOOTSTRAP).poisson(1.0, (growth.n_trees, n)).astype(float)
            self.weights = weights.ravel()
            self.open = np.flatnonzero(self.weights)  # out-of-bag items add nothing to sums
        self.node = np.repeat(np.arange(growth.n_trees, dtype=np.intp), n)
        self.single = growth.n_trees == 1  # an item is its row
        self.open_rows = self.open if self.single else self.open % n
        self.open_node = self.node[self.open]
        self.levels = 0

    @classmethod
    def of(
        cls, x: np.ndarray, y: np.ndarray, ctx: BlockContext, growth: Growth, centre: float,
        width: int, token: int,
    ) -> _Rows:  # fmt: skip
        """The block's rows of this fit, cached in its scratch (made on first use)."""
        key = ("histtree", token)
        rows = ctx.scratch.get(key)
        if rows is None:
            rows = ctx.scratch[key] = cls(x, y, ctx, growth, centre, width)
        return rows

    def _move(self, tree: tuple[np.ndarray, ...], level: _Level) -> np.ndarray:
        """The open items' nodes after the splits made since the last level: one step
        down for the items of a node that split, when the last level summed was the one
        before; else (a fresh scratch) down the whole tree so far."""
        feature, goes_left, left = tree
        node, rows = self.open_node, self.open_rows
        if self.levels != level.index:
            return _descend(feature, goes_left, left, self.codes, rows, node)
        if feature.max(initial=-1) < 0:  # nothing split yet
            return node
        f = feature.take(node)
        return np.where(f >= 0, _down(f, goes_left, left, self.cells, rows, node), node)

    def sums(self, tree: tuple[np.ndarray, ...], level: _Level, bins: np.ndarray,
             k: int) -> np.ndarray:  # fmt: skip
        """The level's sums, flattened into one array (so that blocks' results add): the
        fresh nodes' totals (weight, sum y, sum y^2, class weights), then the direct nodes'
        histograms, nodes x bins of every feature x stat (weight and sum y, or k class
        weights). The open items move down the last level's splits first."""
        node = self._move(tree, level)
        self.levels = level.index + 1
        self.node[self.open] = node
        stat = k if k else 2
        total_bins = int(bins.sum())
        n_fresh, n_direct = level.n_fresh, level.n_direct
        out = np.empty(n_fresh * (3 + k) + n_direct * total_bins * stat)
        totals = out[: n_fresh * (3 + k)].reshape(n_fresh, 3 + k)
        hist = out[totals.size :].reshape(n_direct, total_bins, stat)
        s = level.fresh.take(node)
        yy = self.y.take(self.open_rows)
        w = None if self.weights is None else self.weights.take(self.open)
        wy = yy if w is None else w * yy
        if k:
            index = s * k + yy.astype(np.intp)
            counts = np.bincount(index, w, minlength=(n_fresh + 1) * k)[: n_fresh * k]
            totals[:, 3:] = counts.reshape(n_fresh, k)
            totals[:, 0] = totals[:, 3:].sum(axis=1)
            totals[:, 1:3] = 0.0
        else:
            totals[:, 0] = np.bincount(s, w, minlength=n_fresh + 1)[:n_fresh]
            totals[:, 1] = np.bincount(s, wy, minlength=n_fresh + 1)[:n_fresh]
            totals[:, 2] = np.bincount(s, wy * yy, minlength=n_fresh + 1)[:n_fresh]
        d = level.direct.take(s)
        inside = np.flatnonzero(d >= 0)
        d, rows, wy = d.take(inside), self.open_rows.take(inside), wy.take(inside)
        w = None if w is None else w.take(inside)
        cls = yy.take(inside).astype(np.intp) if k else None
        keep = np.flatnonzero(level.may_split.take(s))
        self.open, self.open_node = self.open.take(keep), node.take(keep)
        self.open_rows = self.open if self.single else self.open_rows.take(keep)
        if not len(inside):
            hist[:] = 0.0
            return out
        base = {b: d * b for b in set(bins.tolist())}  # each node's first bin, by bins
        start = 0
        for f, b in enumerate(bins.tolist()):  # one feature at a time: small histograms
            index = base[b] + self.codes[:, f].take(rows)
            if cls is not None:
                sums = np.bincount(index * k + cls, w, minlength=n_direct * b * k)
                hist[:, start : start + b] = sums.reshape(n_direct, b, k)
            else:
                hist[:, start : start + b, 0] = np.bincount(
                    index, w, minlength=n_direct * b
                ).reshape(n_direct, b)
                hist[:, start : start + b, 1] = np.bincount(
                    index, wy, minlength=n_direct * b
                ).reshape(n_direct, b)
            start += b
        return out

    def nodes(self, tree: tuple[np.ndarray, ...], n_trees: int) -> np.ndarray:
        """n_trees x rows: every item's node in the finished tree."""
        feature, goes_left, left = tree
        return route(feature, goes_left, left, self.codes, n_trees, self.node)


def _risk(totals: np.ndarray, k: int) -> np.ndarray:
    """rpart's node risk: the sum of squares (anova) or misclassified weight (class)."""
    weight = totals[:, 0]
    if k:
        return weight - totals[:, 3:].max(axis=1, initial=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss = totals[:, 2] - np.where(weight > 0, totals[:, 1] ** 2 / weight, 0.0)
    return np.maximum(ss, 0.0)


def _feature_subsets(
    n_nodes: int, n_features: int, mtry: int | None, rng: np.random.Generator
) -> np.ndarray | None:
    """nodes x features: the `mtry` features each node may split on (rf); None: all."""
    if mtry is None or mtry >= n_features:
        return None
    order = np.argsort(rng.random((n_nodes, n_features)), axis=1)
    tried = np.zeros((n_nodes, n_features), dtype=bool)
    np.put_along_axis(tried, order[:, :mtry], True, axis=1)
    return tried


@dataclass(frozen=True)
class Splits:
    """The best split of each node: feature (-1: none), gain, the bins going left (nodes x
    bins), and the weight each side gets."""

    feature: np.ndarray
    gain: np.ndarray
    goes_left: np.ndarray
    left_weight: np.ndarray
    right_weight: np.ndarray


def best_splits(
    hist: np.ndarray,
    bins: np.ndarray,
    unordered: np.ndarray,
    min_leaf: float,
    k: int,
    tried: np.ndarray | None = None,
) -> Splits:
    """Each node's best split from its histograms: nodes x bins of all features one after
    another (feature f's `bins[f]` bins) x stat (weight and sum y, or k class weights),
    among the `tried` features (nodes x features; None: all)."""
    n_nodes = hist.shape[0]
    n_features = len(bins)
    start = np.r_[0, np.cumsum(bins)[:-1]].astype(np.intp)
    nodes = np.arange(n_nodes)
    majority = np.zeros(n_nodes, dtype=np.intp)  # each node's most frequent class
    if k and n_features:
        majority = hist[:, : bins[0]].sum(axis=1).argmax(axis=-1)
    score = np.full((n_features, n_nodes), -np.inf)
    boundary = np.zeros((n_features, n_nodes), dtype=np.intp)
    side_weights = np.zeros((n_features, 2, n_nodes))
    orders: dict[int, np.ndarray] = {}
    for f in range(n_features):
        rows = nodes if tried is None else np.flatnonzero(tried[:, f])  # nodes trying f
        if bins[f] < 2 or not len(rows):
            continue
        part = hist[:, start[f] : start[f] + bins[f]] if tried is None else (
            hist[rows, start[f] : start[f] + bins[f]]
        )  # fmt: skip
        weight = part.sum(axis=-1) if k else part[..., 0]
        if unordered[f]:
            # categories in order of the node's mean y, or of its majority class's rate
            # (empty ones last): Breiman's ordering; ordered features keep their bins'
            share = part[np.arange(len(rows)), :, majority[rows]] if k else part[..., 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                key = np.where(weight > 0, share / weight, np.inf)
            order = np.zeros((n_nodes, bins[f]), dtype=np.intp)
            order[rows] = np.argsort(key, axis=-1, kind="stable")
            orders[f] = order
            part = np.take_along_axis(part, order[rows][..., None], axis=1)
            weight = np.take_along_axis(weight, order[rows], axis=1)
        lw = np.cumsum(weight, axis=1)[:, :-1]
        rw = weight.sum(axis=1, keepdims=True) - lw
        with np.errstate(invalid="ignore", divide="ignore"):
            if k:
                left = np.cumsum(part, axis=1)[:, :-1]
                right = part.sum(axis=1, keepdims=True) - left
                s = (left**2).sum(-1) / lw + (right**2).sum(-1) / rw
            else:
                left_sum = np.cumsum(part[..., 1], axis=1)[:, :-1]
                right_sum = part[..., 1].sum(axis=1, keepdims=True) - left_sum
                s = left_sum**2 / lw + right_sum**2 / rw
        valid = (lw >= min_leaf) & (rw >= min_leaf) & np.isfinite(s)
        s = np.where(valid, s, -np.inf)
        b = s.argmax(axis=1)  # the lowest best boundary
        at = np.arange(len(rows))
        if not unordered[f]:
            b = _middle_of_ties(lw, b)
        score[f, rows], boundary[f, rows] = s[at, b], b
        side_weights[f][:, rows] = lw[at, b], rw[at, b]
    feature = score.argmax(axis=0)  # the lowest best feature
    best = score[feature, nodes]
    boundary_at = boundary[feature, nodes]
    lwi, rwi = side_weights[feature, 0, nodes], side_weights[feature, 1, nodes]
    node_stat = hist[:, : bins[0]].sum(axis=1) if n_features else np.zeros((n_nodes, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        if k:
            parent = (node_stat**2).sum(-1) / node_stat.sum(-1)
        else:
            parent = node_stat[:, 1] ** 2 / node_stat[:, 0]
    gain = best - parent
    found = np.isfinite(gain)
    width = int(bins.max(initial=1))
    goes_left = np.arange(width)[None, :] <= boundary_at[:, None]
    for f, order in orders.items():
        at = np.flatnonzero(feature == f)
        rank = np.argsort(order[at], axis=1)  # each category's place in the order
        side = rank <= boundary_at[at, None]
        counts = hist[at, start[f] : start[f] + bins[f]]
        present = (counts.sum(axis=-1) if k else counts[..., 0]) > 0
        side = np.where(present, side, (lwi[at] >= rwi[at])[:, None])  # absent: the larger
        goes_left[at] = False
        goes_left[at, : bins[f]] = side
    return Splits(
        np.where(found, feature, -1), np.where(found, gain, 0.0), goes_left & found[:, None],
        np.where(found, lwi, 0.0), np.where(found, rwi, 0.0),
    )  # fmt: skip


def _middle_of_ties(lw: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The middle of each row's run of boundaries that split its rows alike: `b` and the
    boundaries after it across bins of no weight (the node has no rows there; an empty
    bin adds exactly 0 to the cumulative weight `lw`). rpart and ranger cut halfway between
    the neighbouring values they see, so rows of those values that the node's sums do not
    count (missing rows, rf's out-of-bag rows) go to the nearer side, not all to the right."""
    run = (lw == lw[np.arange(len(b)), b][:, None]) & (np.arange(lw.shape[1]) >= b[:, None])
    return b + run.sum(axis=1) // 2


def _prune(feature: np.ndarray, left: np.ndarray, risk: np.ndarray, alpha: float) -> np.ndarray:
    """Breiman's T(alpha) (rpart's cp pruning): bottom-up, a split node becomes a leaf when
    its risk + alpha is at most its subtree's risk + alpha * leaves."""
    feature = feature.copy()
    cost = risk + alpha
    for n in range(len(feature) - 1, -1, -1):  # children are numbered after parents
        if feature[n] >= 0:
            a = left[n]
            subtree = cost[a] + cost[a + 1]
            if risk[n] + alpha <= subtree:
                feature[n] = -1
            else:
                cost[n] = subtree
    return feature


def _leaf_numbers(
    feature: np.ndarray, parent: np.ndarray, depth: np.ndarray
) -> tuple[np.ndarray, int]:
    """Each node's leaf in the (pruned) forest: its own number if it is a leaf there, its
    pruned ancestor's below one (rows cached deeper down still find their leaf), -1 at a
    split; and the number of leaves."""
    owner = np.where(feature < 0, np.arange(len(feature)), -1)  # the leaf a node is in
    for d in range(1, int(depth.max(initial=0)) + 1):  # parents before their children
        at = np.flatnonzero(depth == d)
        inherited = owner[parent[at]]
        owner[at] = np.where(inherited >= 0, inherited, owner[at])
    leaves = np.unique(owner[owner >= 0])
    leaf = np.where(owner >= 0, np.searchsorted(leaves, owner), -1)
    return leaf.astype(np.intp), len(leaves)


def _with_donors(step, tree, leaf, n_leaves, growth, rows_of) -> Forest:
    """The forest with each leaf's donors, from one more sum over blocks."""
    k = growth.n_classes
    feature, goes_left, left = tree

    def donors(x: np.ndarray, y: np.ndarray, ctx: BlockContext) -> Any:
        leaves = leaf[rows_of(x, y, ctx).nodes(tree, growth.n_trees)]
        if k:
            index = (leaves * k + np.broadcast_to(y.astype(np.intp), leaves.shape)).ravel()
            return np.bincount(index, minlength=n_leaves * k).astype(float)
        return _sampled_donors(leaves.ravel(), np.tile(y, growth.n_trees), ctx)

    pooled = step.sum_over_blocks_with_context(donors)
    empty = np.zeros(0)
    if k:
        counts = np.asarray(pooled).reshape(n_leaves, k)
        return Forest(feature, goes_left, left, leaf, growth.n_trees, empty, empty, empty, counts)
    order = np.argsort(pooled.leaf, kind="stable")
    start = np.searchsorted(pooled.leaf[order], np.arange(n_leaves + 1))
    return Forest(
        feature, goes_left, left, leaf, growth.n_trees, start, pooled.value[order],
        np.cumsum(pooled.weight[order]), np.zeros((0, 0)),
    )  # fmt: skip


def _sampled_donors(leaves: np.ndarray, y: np.ndarray, ctx: BlockContext) -> DonorPool:
    """Up to DONOR_CAP donors per leaf, a uniform sample of bigger ones (weighted)."""
    u = ctx.rng(DONORS).random(len(leaves))
    order = np.argsort(leaves + 0.5 * u)  # by leaf, then u (one float key: 8x lexsort's speed)
    ranked = leaves[order]
    first = np.r_[True, ranked[1:] != ranked[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(ranked)), 0))
    position = np.arange(len(ranked)) - group_start
    count = np.bincount(ranked, minlength=int(ranked.max(initial=-1)) + 1)[ranked]
    keep = position < DONOR_CAP
    weight = np.maximum(count / DONOR_CAP, 1.0)[keep]
    return DonorPool(ranked[keep], y[order][keep], weight)


def draw(forest: Forest, view: BlockView, rng: np.random.Generator) -> np.ndarray:
    """A donor's value (category) for each missing row: from the pooled leaves the row
    falls in, each donor with its weight (R mice's `sample(unlist(donors), 1)`)."""
    leaves = forest.leaves_of(view.x_mis[:, 1:].astype(np.intp))  # trees x rows
    n = leaves.shape[1]
    if forest.class_counts.size:
        counts = forest.class_counts[leaves].sum(axis=0)  # rows x classes
        cumulative = np.cumsum(counts, axis=1)
        u = rng.random(n) * cumulative[:, -1]
        return (cumulative <= u[:, None]).sum(axis=1).astype(float)
    base = np.r_[0.0, forest.cumulative][forest.start]  # cumulative weight before each leaf
    leaf_weight = base[leaves + 1] - base[leaves]
    by_tree = np.cumsum(leaf_weight, axis=0)
    u = rng.random(n) * by_tree[-1]
    tree = np.minimum((by_tree <= u).sum(axis=0), forest.n_trees - 1)
    chosen = leaves[tree, np.arange(n)]
    target = base[chosen] + rng.random(n) * leaf_weight[tree, np.arange(n)]
    idx = np.searchsorted(forest.cumulative, target, side="right")
    idx = np.clip(idx, forest.start[chosen], forest.start[chosen + 1] - 1)
    return forest.value[idx]
