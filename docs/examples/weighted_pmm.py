"""weighted_pmm: predictive mean matching that prefers the nearest donors (a worked example
of adding a method; see docs/architecture.md).

Type-1 pmm (`sparkmice.kernels.pmm`) takes one of the `donors` nearest observed rows with
equal chance. Here the chance falls with the distance |yhat_obs - yhat_mis|, as in R mice's
midastouch (Gaike & Schafer's weights, exponent kappa = 3), among the `donors` nearest
only, and without midastouch's leave-one-out means and bootstrap: a sketch, not midastouch.

To make it a method of the package: save this file as sparkmice/kernels/weighted_pmm.py and
add `"weighted_pmm": weighted_pmm.METHOD` to `METHODS` in sparkmice/kernels/__init__.py.
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method
from sparkmice.kernels.norm import NormDraw, parameters
from sparkmice.kernels.pmm import DONORS

KAPPA = 3.0


def impute(
    view: BlockView, params: NormDraw, rng: np.random.Generator, donors: int = DONORS
) -> np.ndarray:
    """For each missing row, the observed y of a donor among its `donors` nearest, drawn
    with probability proportional to (1 / distance)^KAPPA (ties to the nearest: equal)."""
    if len(view.y_obs) == 0 and view.pool is not None:
        return view.pool.draw(view.n_mis, rng)
    yhat_obs = view.linear_obs(params.coef)
    yhat_mis = view.linear_mis(params.beta)
    d = min(donors, len(yhat_obs))
    distance = np.abs(yhat_mis[:, None] - yhat_obs[None, :])  # a block's rows: small
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :d]
    near = np.take_along_axis(distance, nearest, axis=1)
    weight = (near.min(axis=1, keepdims=True) + 1e-12) / (near + 1e-12)
    weight = weight**KAPPA
    cumulative = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    pick = (cumulative < rng.random((len(yhat_mis), 1))).sum(axis=1)
    return view.y_obs[nearest[np.arange(len(yhat_mis)), np.minimum(pick, d - 1)]]


METHOD = Method(
    "weighted_pmm",
    kinds=("continuous",),
    parameters=parameters,
    impute=impute,
    impute_options=("donors",),
)
