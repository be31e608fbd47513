"""The StepData the kernel tests hand to a method: moments and ranges from the rows, and
sums over `blocks` contiguous blocks of the observed rows (x without the intercept), with
or without each block's context (its own random stream, as the sampler's)."""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import BlockContext, ObservedPool, StepData
from sparkmice.kernels.linalg import Moments


def step_data(
    x_obs: np.ndarray,
    y_obs: np.ndarray,
    x_all: np.ndarray | None = None,
    n_levels: int = 0,
    blocks: int = 1,
    warm_start: np.ndarray | None = None,
    pool: ObservedPool | None = None,
    seed: int = 0,
    scratches: list[dict] | None = None,
) -> StepData:
    """`scratches`: the blocks' scratch dicts, kept across calls as the barrier engine keeps
    them (by default each call gets empty ones, as the per-step engine's)."""
    x_all = x_obs if x_all is None else x_all
    xx = np.column_stack([np.ones(len(y_obs)), x_obs])
    parts = np.array_split(np.arange(len(y_obs)), blocks)

    def sum_over_blocks(f):
        total = f(xx[parts[0]], y_obs[parts[0]])
        for part in parts[1:]:
            total = total + f(xx[part], y_obs[part])
        return total

    def sum_over_blocks_with_context(f):
        total = None
        for b, part in enumerate(parts):
            scratch = {} if scratches is None else scratches[b]
            value = f(xx[part], y_obs[part], BlockContext((seed, 1, 1, 0, 3, b), scratch))
            total = value if total is None else total + value
        return total

    return StepData(
        moments=Moments.of(np.column_stack([x_obs, y_obs])),
        x_all=Moments.of(x_all),
        x_min=x_all.min(0),
        x_max=x_all.max(0),
        n_levels=n_levels,
        sum_over_blocks=sum_over_blocks,
        warm_start=warm_start,
        pool=pool if pool is not None else ObservedPool(y_obs, np.ones(len(y_obs))),
        sum_over_blocks_with_context=sum_over_blocks_with_context,
    )
