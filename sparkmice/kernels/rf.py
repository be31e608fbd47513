"""rf: random forest imputation (R mice's mice.impute.rf; Doove, van Buuren & Dusseldorp
2014, appendix A.1).

1. Grow `ntree` (R mice's default 10) trees on bootstrap samples of the observed rows, each
   split choosing among `mtry` predictors drawn at random (ranger's default, which R mice
   3.15 uses unless told `rfPackage = "randomForest"`: floor(sqrt(p)), at least 1, for
   either kind of target; R's p counts a factor's dummy columns, ours each predictor once),
   grown out to nodes of at most 5 (number) or 1 (categorical) bootstrap rows, unpruned
   (ranger's min.node.size: a node of at most that many rows is not split).
2. Route each missing row to its leaf in every tree.
3. Impute one value drawn from the donors of all those leaves pooled (R mice's
   `sample(unlist(donors), 1)`): the observed rows routed to the leaves, in-bag or not;
   a categorical target a level drawn with the pooled class counts.

The bootstrap is Poisson(1) weights per row and tree, drawn from each block's own random
stream (`BlockContext`), so it needs no global row index and does not depend on the
layout; it has the multinomial bootstrap's weights in the limit. Predictors are binned as
for cart (`histtree`).
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method, StepData
from sparkmice.kernels.histtree import Forest, Growth, draw, grow

NTREE = 10  # R mice's mice.impute.rf default
NODESIZE = {False: 5, True: 1}  # ranger's min.node.size: regression, classification


def mtry(n_predictors: int) -> int:
    """ranger's default features tried per split (R mice's default rfPackage)."""
    return max(int(np.floor(np.sqrt(n_predictors))), 1)


def parameters(step: StepData, rng: np.random.Generator, ntree: int = NTREE) -> Forest:
    """Step 1: the forest and its leaves' donors, from sums over all blocks."""
    categorical = step.n_levels > 0
    growth = Growth(
        n_trees=max(1, ntree),
        bootstrap=True,
        mtry=mtry(len(step.bins)),
        min_leaf=1.0,
        min_split=NODESIZE[categorical] + 1.0,
        cp=0.0,
        n_classes=step.n_levels,
    )
    return grow(step, growth, rng)


def impute(view: BlockView, params: Forest, rng: np.random.Generator) -> np.ndarray:
    """Steps 2-3: a value from the pooled donors of each missing row's leaves."""
    return draw(params, view, rng)


METHOD = Method(
    "rf",
    kinds=("continuous", "binary", "nominal", "ordered"),
    parameters=parameters,
    impute=impute,
    binned=True,
    fit_options=("ntree",),
)
