"""Design matrices of the conditional models, built from a block's current codes.

Intercept first; a continuous or binary predictor is one column; a nominal or ordered
predictor with K levels is K-1 indicator columns (level 0 the reference), as R's treatment
contrasts (R uses polynomial contrasts for ordered factors: the same column space, so the
same fitted values and imputations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparkmice.plan import Plan


@dataclass(frozen=True)
class Design:
    """Columns of the design for one target: (variable index, level or -1 for the value)."""

    target: int
    columns: tuple[tuple[int, int], ...]
    names: tuple[str, ...]

    @classmethod
    def for_target(cls, plan: Plan, target: str) -> Design:
        cols: list[tuple[int, int]] = []
        names: list[str] = []
        for p in plan.predictors[target]:
            v = plan.variable(p)
            if v.kind in ("nominal", "ordered"):  # treatment dummies (same span as contr.poly)
                for level in range(1, v.n_levels):
                    cols.append((v.index, level))
                    names.append(f"{v.name}[{v.levels[level]}]")
            else:
                cols.append((v.index, -1))
                names.append(v.name)
        return cls(plan.index[target], tuple(cols), tuple(names))

    def build(self, values: np.ndarray) -> np.ndarray:
        """n × (1 + p) matrix: intercept, then the predictor columns."""
        x = np.empty((values.shape[0], 1 + len(self.columns)), order="F")
        x[:, 0] = 1.0
        for i, (var, level) in enumerate(self.columns, start=1):
            x[:, i] = values[:, var] if level < 0 else values[:, var] == level
        return x
