"""The one contract every imputation method follows (as R mice's mice.impute.<method>).

A method is a `Method`: two functions and what it declares about itself,
    parameters(step: StepData, rng, **fit_options) -> params  # fit and draw, once per step
    impute(view: BlockView, params, rng, **impute_options) -> values  # one block's cells
`parameters` sees only sums over all blocks (through `StepData`), so it runs unchanged on
the driver (per-step engine), in every barrier task (barrier engine) or in-process; `impute`
sees one block's rows. Each kernel module defines its `METHOD`; `kernels.METHODS` lists them.

A method that declares `binned` (the trees) sees each predictor as one column of bin codes
instead of values and dummies, and may sum block functions that also take a `BlockContext`
(the block's own random streams and a scratch cache, `StepData.sum_over_blocks_with_context`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparkmice.kernels.linalg import Moments

# the run options a method may take (see MiceConfig)
OPTIONS = ("separation", "donors", "minbucket", "cp", "ntree")


@dataclass(frozen=True)
class Method:
    """An imputation method: its functions and the capabilities the sampler acts on.

    kinds: variable kinds it imputes. uses_predictors: fits a model on the design (else the
    sampler passes the intercept only and skips the collinearity checks). augments: needs the
    predictors' means, SDs and ranges over all rows (R mice's augmentation rows).
    warm_start: `params.coef` is an estimate to start the next sweep's fit from (it comes
    back as `StepData.warm_start`). draws_levels: `impute` returns level codes (observed
    values), not model categories, so collapsed levels are not expanded again.
    binned: the design holds each predictor as one column of bin codes 0..bins-1 (a number:
    its quantile bin, edges from the observed values when the chain starts; a categorical:
    its category), `StepData.bins` says how many, and the sampler skips the collinearity
    checks (they are about linear models; a tree is not hurt by collinear predictors).
    fit_options, impute_options: the names in OPTIONS passed as keywords to `parameters`
    and to `impute` (options the run leaves unset are not passed: the kernel's default).
    """

    name: str
    kinds: tuple[str, ...]
    parameters: Callable[..., Any]
    impute: Callable[..., np.ndarray]
    uses_predictors: bool = True
    augments: bool = False
    warm_start: bool = False
    draws_levels: bool = False
    binned: bool = False
    fit_options: tuple[str, ...] = ()
    impute_options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.fit_options + self.impute_options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"method {self.name!r} declares unknown options {sorted(unknown)}")


@dataclass(frozen=True)
class ObservedPool:
    """A sample of observed values with weights (each value stands for `weight` rows)."""

    values: np.ndarray
    weights: np.ndarray

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        if len(self.values) == 0:
            raise ValueError("no observed values to sample from")
        p = self.weights / self.weights.sum()
        return self.values[rng.choice(len(self.values), size=size, p=p)]


class BlockContext:
    """What a block function of `StepData.sum_over_blocks_with_context` may use besides the
    rows. `rng(purpose)`: the block's own random stream for this step and purpose, fresh at
    every call (so the same numbers at each call of the step: e.g. bootstrap weights that
    stay fixed while a tree grows level by level); it depends on the block, never on the
    layout. `scratch`: a dict kept with the block for the step's later calls, for caching
    only (engines that rebuild blocks per call, the per-step engine, hand an empty one)."""

    def __init__(self, seed_key: tuple[int, ...], scratch: dict[Any, Any]):
        self.seed_key = seed_key
        self.scratch = scratch

    def rng(self, purpose: int) -> np.random.Generator:
        seed, *key = self.seed_key
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, purpose)))


@dataclass(frozen=True)
class StepData:
    """What a method may know about the data at one variable step, summed over all blocks.

    moments: Moments of [x, y] over the observed rows (x without the intercept column).
    x_all: Moments of x over all rows; x_min, x_max: column ranges (for augmentation).
    n_levels: number of categories of y (0 for continuous).
    sum_over_blocks: f -> sum over blocks of f(x_obs, y_obs) (x_obs with intercept).
    warm_start: the previous sweep's estimate for this variable, or None.
    pool: a sample of y's observed values.
    bins, unordered: for a `binned` method, the number of bins of each predictor column
      (after the intercept) and whether its bins have no order (a nominal predictor).
    sum_over_blocks_with_context: as `sum_over_blocks`, of f(x_obs, y_obs, BlockContext).
    """

    moments: Moments
    x_all: Moments
    x_min: np.ndarray
    x_max: np.ndarray
    n_levels: int
    sum_over_blocks: Callable[[Callable[[np.ndarray, np.ndarray], Any]], Any]
    warm_start: np.ndarray | None
    pool: ObservedPool
    bins: tuple[int, ...] = ()
    unordered: tuple[bool, ...] = ()
    sum_over_blocks_with_context: (
        Callable[[Callable[[np.ndarray, np.ndarray, BlockContext], Any]], Any] | None
    ) = None


@dataclass(frozen=True)
class BlockView:
    """One block's rows for the step: the design (with intercept) and y of its observed
    rows, and the design of its missing rows, each in row order. The sampler keeps the
    observed rows first in a block's design, so these are views, not copies. `pool` is the
    variable's sample of observed values over all blocks (for a block with no observed
    rows of its own)."""

    x_obs: np.ndarray
    y_obs: np.ndarray
    x_mis: np.ndarray
    pool: ObservedPool | None = None

    @classmethod
    def of(
        cls, x: np.ndarray, y: np.ndarray, missing: np.ndarray, pool: ObservedPool | None = None
    ) -> BlockView:
        """From all rows' design and y and the missing rows' mask (copies the subsets)."""
        return cls(x[~missing], y[~missing], x[missing], pool)

    @property
    def n_mis(self) -> int:
        return self.x_mis.shape[0]

    def linear_obs(self, beta: np.ndarray) -> np.ndarray:
        return self.x_obs @ beta

    def linear_mis(self, beta: np.ndarray) -> np.ndarray:
        return self.x_mis @ beta
