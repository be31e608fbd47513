"""Pseudo-observations against separation (White, Daniel & Royston 2010; R mice's augment).

For p predictors and k outcome categories: 2·p·k rows, each predictor in turn at its mean
± 0.5·sd (clipped to its range), the others at their means, once per category, with total
weight p + 1. Built from the predictors' means, SDs, minima and maxima over all rows, so it
costs no pass over the data; the caller adds these rows' sums to the observed rows' sums.
"""

from __future__ import annotations

import numpy as np

from sparkmice.kernels.contract import StepData


def pseudo_rows(
    mean: np.ndarray, sd: np.ndarray, xmin: np.ndarray, xmax: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, w): pseudo-rows without intercept column, category codes 0..k-1, weights."""
    p = len(mean)
    if p == 0:
        return np.zeros((0, 0)), np.zeros(0), np.zeros(0)
    nr = 2 * p * k
    x = np.tile(mean, (nr, 1))
    shift = np.tile([0.5, -0.5], k)  # one +/- pair per category
    for j in range(p):
        rows = slice(2 * k * j, 2 * k * (j + 1))
        x[rows, j] = np.clip(mean[j] + shift * sd[j], xmin[j], xmax[j])
    y = np.tile(np.repeat(np.arange(k, dtype=float), 2), p)
    w = np.full(nr, (p + 1) / nr)
    return x, y, w


def augmentation(step: StepData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This step's pseudo-rows from its summaries, with the intercept column added."""
    x, y, w = pseudo_rows(
        step.x_all.mean, np.sqrt(step.x_all.variance()), step.x_min, step.x_max, step.n_levels
    )
    return np.column_stack([np.ones(len(y)), x]), y, w
