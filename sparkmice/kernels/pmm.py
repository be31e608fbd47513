"""pmm: predictive mean matching, type-1 (R mice's default for numbers, mice.impute.pmm).

With beta-hat and beta* drawn as in `norm`: yhat_obs = X_obs beta-hat, yhat_mis = X_mis beta*;
each missing row takes the observed y of one of the `donors` observed rows whose yhat_obs is
nearest to its yhat_mis, chosen at random (ties broken at random by shuffling the observed
rows before a stable sort). Imputations are always observed values.

At scale the search runs within a block of rows (its observed rows are the donor pool); a
block is a random subset of the data, so this draws donors from a random subset of the
observed rows (see docs/engine.md).
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView
from sparkmice.kernels.norm import NormDraw, parameters

KINDS = ("continuous",)
USES_PREDICTORS = True
AUGMENTS = False
__all__ = ["AUGMENTS", "KINDS", "USES_PREDICTORS", "impute", "match", "parameters"]

DONORS = 5


def match(
    yhat_obs: np.ndarray, yhat_mis: np.ndarray, rng: np.random.Generator, donors: int = DONORS
) -> np.ndarray:
    """Index into the observed rows of a donor for each missing row."""
    n_obs = len(yhat_obs)
    if n_obs == 0:
        raise ValueError("pmm needs at least one observed value in the block")
    d = min(donors, n_obs)
    shuffle = rng.permutation(n_obs)
    order = shuffle[np.argsort(yhat_obs[shuffle], kind="stable")]
    sorted_obs = yhat_obs[order]
    # the d nearest of a sorted list lie in a window of 2d around the insertion point
    pos = np.searchsorted(sorted_obs, yhat_mis)
    lo = np.clip(pos - d, 0, n_obs - d)
    window = lo[:, None] + np.arange(2 * d)[None, :]
    window = np.minimum(window, n_obs - 1)
    dist = np.abs(sorted_obs[window] - yhat_mis[:, None])
    dist[:, 1:][window[:, 1:] == window[:, :-1]] = np.inf  # clipped duplicates
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :d]
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, d, len(yhat_mis))]
    return order[window[np.arange(len(yhat_mis)), pick]]


def impute(
    view: BlockView, params: NormDraw, rng: np.random.Generator, donors: int = DONORS
) -> np.ndarray:
    """Observed values of the donors matched to each missing row of the block."""
    idx = match(view.linear_obs(params.coef), view.linear_mis(params.beta), rng, donors)
    return view.y_obs[idx]
