"""sample: a random draw from the observed values (R mice's mice.impute.sample; a baseline)."""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method, ObservedPool, StepData


def parameters(step: StepData, rng: np.random.Generator) -> ObservedPool:
    return step.pool


def impute(view: BlockView, params: ObservedPool, rng: np.random.Generator) -> np.ndarray:
    return params.draw(view.n_mis, rng)


METHOD = Method(
    "sample",
    kinds=("continuous", "binary", "nominal", "ordered"),
    parameters=parameters,
    impute=impute,
    uses_predictors=False,
    draws_levels=True,
)
