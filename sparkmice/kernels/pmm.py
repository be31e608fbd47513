"""pmm: predictive mean matching, type-1 (R mice's default for numbers, mice.impute.pmm).

With beta-hat and beta* drawn as in `norm`: yhat_obs = X_obs beta-hat, yhat_mis = X_mis beta*;
each missing row takes the observed y of one of the `donors` observed rows whose yhat_obs is
nearest to its yhat_mis, chosen at random (ties broken at random by shuffling the observed
rows before a stable sort). Imputations are always observed values.

At scale the search runs within a block of rows (its observed rows are the donor pool); a
block is a random subset of the data, so this draws donors from a random subset of the
observed rows (README, "Where sparkmice differs from R mice"). A block with no observed
rows of its own draws from the variable's pool of observed values instead.
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method
from sparkmice.kernels.norm import NormDraw, parameters

__all__ = ["METHOD", "impute", "match", "parameters"]

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
    order = shuffle[_stable_argsort(yhat_obs[shuffle])]
    sorted_obs = yhat_obs[order]
    # the d nearest of a sorted list are d consecutive values: start d to the left of the
    # insertion point and slide the window right while its right neighbour is nearer
    # than its leftmost value (d vectorised steps, no per-row sort)
    pos = np.empty(len(yhat_mis), dtype=np.intp)
    by_value = np.argsort(yhat_mis)  # sorted queries search several times faster
    pos[by_value] = np.searchsorted(sorted_obs, yhat_mis[by_value])
    lo = np.clip(pos - d, 0, n_obs - d)
    for _ in range(d):
        right = np.minimum(lo + d, n_obs - 1)
        slide = (lo + d < n_obs) & (sorted_obs[right] - yhat_mis < yhat_mis - sorted_obs[lo])
        lo = lo + slide
    return order[lo + rng.integers(0, d, len(yhat_mis))]


def _stable_argsort(v: np.ndarray) -> np.ndarray:
    """np.argsort(v, kind="stable"), faster: the default sort is several times quicker and
    gives the same order when no two values tie; with ties, the stable sort decides."""
    order = np.argsort(v)
    ranked = v[order]
    if np.any(ranked[1:] == ranked[:-1]):
        return np.argsort(v, kind="stable")
    return order


def impute(
    view: BlockView, params: NormDraw, rng: np.random.Generator, donors: int = DONORS
) -> np.ndarray:
    """Observed values of the donors matched to each missing row of the block (without
    observed rows in the block: draws from `view.pool`)."""
    if len(view.y_obs) == 0 and view.pool is not None:
        return view.pool.draw(view.n_mis, rng)
    idx = match(view.linear_obs(params.coef), view.linear_mis(params.beta), rng, donors)
    return view.y_obs[idx]


METHOD = Method(
    "pmm",
    kinds=("continuous",),
    parameters=parameters,
    impute=impute,
    impute_options=("donors",),
)
