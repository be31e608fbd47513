"""Design matrices of the conditional models, built from a block's current codes.

Intercept first; a continuous or binary predictor is one column; a nominal or ordered
predictor with K levels is K-1 indicator columns (level 0 the reference), as R's treatment
contrasts (R uses polynomial contrasts for ordered factors: the same column space, so the
same fitted values and imputations). Rare levels collapsed by `collapse_below` share one
indicator; as a target they are one category, expanded back to a level after imputation.

A nominal predictor with more than `max_dummies` indicators keeps its most frequent
categories and pools the rest into one indicator (`Variable.predictor_groups`), in the
designs of the other variables only.

A binned design (for the trees, `Method.binned`) has one column per predictor holding its
bin code instead: a number's quantile bin (`Binning.cuts`, set when the chain starts), a
categorical's category (its own bins, however many levels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sparkmice.plan import Plan, Variable

LABELLED_CODES = 3  # an indicator of more levels is named by its first and their number


@dataclass(frozen=True)
class Binning:
    """How one predictor becomes bin codes: a number by `cuts` (bin i holds
    cuts[i-1] <= value < cuts[i]; None until the chain's edges are known), a categorical by
    its categories (`groups`: each level's category when rare levels share one)."""

    variable: int
    categorical: bool
    unordered: bool = False
    groups: tuple[int, ...] | None = None
    n_categories: int = 0
    cuts: tuple[float, ...] | None = None

    @classmethod
    def of(cls, v: Variable) -> Binning:
        if not v.categorical:
            return cls(v.index, False)
        return cls(v.index, True, v.kind == "nominal", v.groups, v.n_categories)

    @property
    def n_bins(self) -> int:
        if self.categorical:
            return self.n_categories
        if self.cuts is None:
            raise ValueError(f"variable {self.variable} has no bin edges yet")
        return len(self.cuts) + 1

    def codes(self, column: np.ndarray) -> np.ndarray:
        if self.categorical:
            if self.groups is None:
                return column
            return np.asarray(self.groups, dtype=float)[column.astype(int)]
        return np.searchsorted(np.asarray(self.cuts), column, side="right").astype(float)


@dataclass(frozen=True)
class Design:
    """Columns of the design for one target: (variable index, the level codes the indicator
    is 1 for; empty for the value itself), and the target's level -> category map."""

    target: int
    columns: tuple[tuple[int, tuple[int, ...]], ...]
    names: tuple[str, ...]
    groups: tuple[int, ...] | None = None
    counts: tuple[int, ...] | None = None
    bins: tuple[Binning, ...] | None = None  # a binned design: one per column

    @classmethod
    def for_target(cls, plan: Plan, target: str, binned: bool = False) -> Design:
        t = plan.variable(target)
        if binned:
            vs = [plan.variable(p) for p in plan.predictors[target]]
            return cls(
                plan.index[target],
                tuple((v.index, ()) for v in vs),
                tuple(v.name for v in vs),
                t.groups,
                t.counts,
                tuple(Binning.of(v) for v in vs),
            )
        cols: list[tuple[int, tuple[int, ...]]] = []
        names: list[str] = []
        for p in plan.predictors[target]:
            v = plan.variable(p)
            if v.kind in ("nominal", "ordered"):  # treatment dummies (same span as contr.poly)
                groups = v.predictor_groups or v.groups or tuple(range(v.n_levels))
                for category in range(1, max(groups) + 1):
                    codes = tuple(i for i, g in enumerate(groups) if g == category)
                    cols.append((v.index, codes))
                    names.append(f"{v.name}[{_indicator_label(plan, v, codes)}]")
            else:
                cols.append((v.index, ()))
                names.append(v.name)
        return cls(plan.index[target], tuple(cols), tuple(names), t.groups, t.counts)

    def numeric_predictors(self) -> list[int]:
        """Variables of a binned design whose bins are quantiles (they need cuts)."""
        return [b.variable for b in self.bins or () if not b.categorical]

    def with_cuts(self, cuts: dict[int, tuple[float, ...]]) -> Design:
        """The binned design with each number's cut points (by variable index)."""
        if self.bins is None:
            return self
        bins = tuple(
            b if b.categorical else dataclasses.replace(b, cuts=cuts[b.variable]) for b in self.bins
        )
        return dataclasses.replace(self, bins=bins)

    def build(
        self,
        values: np.ndarray,
        rows: np.ndarray,
        missing: np.ndarray | None = None,
        bin_codes: dict[int, tuple[tuple[float, ...], np.ndarray, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """len(rows) × (p + 2) matrix of `rows` in that order: intercept, the predictor
        columns, and last the target's categories. With the block's `missing` cells and a
        `bin_codes` dict kept with the block, a number's bin codes are searched once for
        its observed cells (they never change) and again only for its imputed ones when
        they changed (`_number_codes`)."""
        x = np.empty((len(rows), len(self.columns) + 2), order="F")
        x[:, 0] = 1.0
        gathered: dict[int, np.ndarray] = {}  # a nominal predictor gives several columns
        for i, (var, codes) in enumerate(self.columns, start=1):
            b = self.bins[i - 1] if self.bins is not None else None
            if b is None and not codes:  # a number: gathered straight into its column
                _gather(values[:, var], rows, x[:, i])
                continue
            column = gathered.get(var)
            if column is None:
                column = gathered[var] = values[:, var].take(rows)
            if b is not None and not b.categorical and bin_codes is not None:
                _gather(_number_codes(b, values, missing, bin_codes), rows, x[:, i])
            elif b is not None:
                x[:, i] = b.codes(column)
            elif len(codes) == 1:
                x[:, i] = column == codes[0]
            else:
                x[:, i] = np.isin(column, codes)
        if self.groups is None:
            _gather(values[:, self.target], rows, x[:, -1])
        else:
            x[:, -1] = self.categories(values[:, self.target].take(rows))
        return x

    def categories(self, y: np.ndarray) -> np.ndarray:
        """The target's codes as the models see them (collapsed levels share a category)."""
        if self.groups is None:
            return y
        return np.asarray(self.groups, dtype=float)[y.astype(int)]

    def levels_of(self, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Imputed categories back to level codes: a shared category becomes one of its
        levels with probability proportional to the level's observed rows."""
        if self.groups is None:
            return categories
        groups = np.asarray(self.groups)
        out = np.empty(len(categories))
        for category in np.unique(categories).astype(int):
            at = categories == category
            members = np.flatnonzero(groups == category)
            if len(members) == 1:
                out[at] = members[0]
                continue
            weights = np.asarray(self.counts, dtype=float)[members]
            out[at] = rng.choice(members, size=int(at.sum()), p=weights / weights.sum())
        return out


def _gather(column: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """out = column[rows], written in place: numpy's take buffers `out` unless told what to
    do with indices out of range, and `rows` never has any (a third faster)."""
    np.take(column, rows, out=out, mode="clip")


def _number_codes(
    b: Binning,
    values: np.ndarray,
    missing: np.ndarray | None,
    cache: dict[int, tuple[tuple[float, ...], np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Bin codes of a number in all the block's rows, kept in `cache` with the cuts and the
    imputed cells' values they were searched with: searched again only in the imputed
    cells (the only cells that change), and only when those changed (a variable's values
    change once a sweep, its codes are read at every other variable's step) or the cuts
    are new."""
    v = b.variable
    kept = cache.get(v)
    if kept is None or kept[0] != b.cuts or missing is None:
        codes = b.codes(values[:, v])
        imputed = values[:, v] if missing is None else values[missing[:, v], v]
        cache[v] = (b.cuts or (), codes, imputed)
        return codes
    cuts, codes, searched = kept
    imputed = missing[:, v]
    now = values[imputed, v]
    if not np.array_equal(now, searched):
        codes[imputed] = b.codes(now)
        cache[v] = (cuts, codes, now)
    return codes


def _indicator_label(plan: Plan, v: Variable, codes: tuple[int, ...]) -> str:
    """`a|b|c` for an indicator of up to LABELLED_CODES levels, `a|... (40 levels)` beyond."""
    if len(codes) <= LABELLED_CODES:
        return "|".join(plan.level_label(v, i) for i in codes)
    return f"{plan.level_label(v, codes[0])}|... ({len(codes)} levels)"
