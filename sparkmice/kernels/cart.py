"""cart: classification and regression trees (R mice's mice.impute.cart; Doove, van Buuren
& Dusseldorp 2014).

1. Grow one tree on the observed rows (`histtree`: rpart's anova gain for a number, gini for
   a categorical target), with R mice's rpart.control: `minbucket` = 5 rows per leaf, a node
   split only with 3 * minbucket rows (rpart's minsplit when only minbucket is given), and
   cost-complexity pruning at `cp` = 1e-4.
2. Route each missing row to its leaf.
3. Impute a random donor's observed value from that leaf; a categorical target a level drawn
   with the leaf's class proportions (rpart's predicted probabilities, as R mice does).

The tree sees each predictor in quantile bins (64, or one per distinct value when fewer):
splits between bins, not between every pair of values as rpart's. Donors are the leaf's
observed rows over all blocks (`histtree`: exact up to 100 donors per leaf and block, a
weighted uniform sample beyond), not only the rows of the missing row's block.
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method, StepData
from sparkmice.kernels.histtree import Forest, Growth, draw, grow

MINBUCKET = 5  # R mice's mice.impute.cart default
CP = 1e-4  # R mice's mice.impute.cart default


def parameters(
    step: StepData, rng: np.random.Generator, minbucket: int = MINBUCKET, cp: float = CP
) -> Forest:
    """Step 1: the pruned tree and its leaves' donors, from sums over all blocks."""
    minbucket = max(1, minbucket)
    growth = Growth(min_leaf=minbucket, min_split=3 * minbucket, cp=cp, n_classes=step.n_levels)
    return grow(step, growth, rng)


def impute(view: BlockView, params: Forest, rng: np.random.Generator) -> np.ndarray:
    """Steps 2-3: a donor's value (or category) from each missing row's leaf."""
    return draw(params, view, rng)


METHOD = Method(
    "cart",
    kinds=("continuous", "binary", "nominal", "ordered"),
    parameters=parameters,
    impute=impute,
    binned=True,
    fit_options=("minbucket", "cp"),
)
