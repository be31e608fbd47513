"""mean: the observed mean for every missing cell (R mice's mice.impute.mean).

Unconditional mean imputation: shrinks variances and correlations; a biased baseline only.
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockView, Method, StepData


def parameters(step: StepData, rng: np.random.Generator) -> float:
    return float(step.moments.mean[-1])


def impute(view: BlockView, params: float, rng: np.random.Generator) -> np.ndarray:
    return np.full(view.n_mis, params)


METHOD = Method(
    "mean", kinds=("continuous",), parameters=parameters, impute=impute, uses_predictors=False
)
