"""R mice's `quickpred` from sums: predictor selection by pairwise-complete correlations.

R's rule (mice 3.x, `quickpred.R`): x predicts y if max(|cor(y, x)|, |cor(r_y, x)|) > mincor,
both over the rows where the pair is observed (r_y: y's response indicator; R sets a
correlation it cannot compute to 0), and if the proportion of usable cases, among the rows
where y is missing those where x is observed, is at least minpuc. Then `exclude` never and
`include` always predict (include wins); no variable predicts itself; a complete variable
gets no predictors.

Everything comes from one pass of sums that add up across batches and partitions: for every
pair of encoded columns (a, b), over the rows where both are observed, the count, the mean
of a, its sum of squared deviations and the co-moment (`PairMoments`), as the products
M'M, X0'M, (X0^2)'M and X0'X0 of the observed indicators M and the values X0 (missing set
to 0), centred per batch and merged by Chan, Golub and LeVeque's pairwise update so that
large means (timestamps, codes) lose no precision.

Encoding (`owners`): numbers as they are; a binary or ordered variable as its codes (as R's
`data.matrix`); a nominal variable with three or more model categories as one 0/1 column
per category, its correlation the largest over those columns (as target and as predictor),
where R would correlate its arbitrary integer codes.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("sparkmice")

AUTO_ABOVE = 25  # more candidate predictors than this: quickpred by default (van Buuren: 15-25)
METHODS = ("pearson",)  # R's method "spearman" is not built
CONSTANT_BELOW = 1e-5  # relative SD under which a column is constant (rounding: ~1.5e-8)


@dataclass(frozen=True)
class Options:
    """quickpred's arguments, as R's (include/exclude: column names)."""

    mincor: float = 0.1
    minpuc: float = 0.0
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    method: str = "pearson"

    def __str__(self) -> str:
        return f"mincor={self.mincor:g}, minpuc={self.minpuc:g}"


OPTION_WORDS = (
    "true, false, null (automatic above "
    f"{AUTO_ABOVE} candidate predictors) or a mapping of mincor and minpuc (numbers in "
    "[0, 1]), include and exclude (lists of column names) and method ('pearson'; "
    "R's 'spearman' is not built)"
)


def _fraction(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and 0 <= float(value) <= 1  # float(): typeshed's Real lacks the comparisons
    )


def _names(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(n, str) for n in value)


def valid(value: object) -> bool:
    """Whether `value` is a quickpred option: None, a bool, or a mapping of its arguments."""
    if value is None or isinstance(value, bool):
        return True
    if not isinstance(value, dict) or not set(value) <= set(Options.__dataclass_fields__):
        return False
    checks = {"mincor": _fraction, "minpuc": _fraction, "include": _names, "exclude": _names}
    return all(value[k] in METHODS if k == "method" else checks[k](value[k]) for k in value)


def options(value: bool | dict | None) -> Options | None:
    """The Options of a valid config value: None when off (false) or automatic (null)."""
    if value is None or value is False:
        return None
    if value is True:
        return Options()
    given: dict[str, Any] = {
        k: tuple(v) if k in ("include", "exclude") else v for k, v in value.items()
    }
    return dataclasses.replace(Options(), **given)


def owners(categories: list[int]) -> np.ndarray:
    """The variable of each encoded column: variable j is `categories[j]` 0/1 columns
    (one per category) when that is >= 3, else one column."""
    return np.repeat(np.arange(len(categories)), [k if k >= 3 else 1 for k in categories])


def _group_sums(values: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """(k, columns): the sum of `values`' rows per code 0..k-1 (the one-hot product
    onehot(codes)' values, in O(rows) per column)."""
    out = np.zeros((k, values.shape[1]))
    for c in range(values.shape[1]):
        out[:, c] = np.bincount(codes, weights=values[:, c], minlength=k)
    return out


@dataclass
class PairMoments:
    """For each pair (a, b) of encoded columns, over the rows where both are observed: `n`,
    `mean[a, b]` (of a, less `shift[a]`), `m2[a, b]` (a's sum of squared deviations) and
    `comoment[a, b]`; `rows`: all rows seen. `shift[a]` is an observed value of a (0 if
    none): means kept relative to it lose no digits to a large mean (timestamps) when
    batches merge. n and comoment are symmetric; b's mean and m2 are the transposes."""

    rows: int
    shift: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    comoment: np.ndarray

    @classmethod
    def empty(cls, width: int) -> PairMoments:
        zero = np.zeros((width, width))
        return cls(0, np.zeros(width), zero, zero.copy(), zero.copy(), zero.copy())


def local_moments(codes: np.ndarray, categories: list[int]) -> PairMoments:
    """The moments of one batch: `codes` (rows, variables; NaN missing) encoded as `owners`
    says. The products M'M, X0'M, (X0^2)'M and X0'X0 of the observed indicators M (one
    column per variable) and the values X0: BLAS products for the single columns, each
    shifted by its first observed value (exact for a constant column); counts per category
    (bincount) for the 0/1 columns of a nominal variable, so that hundreds of categories
    cost O(rows) per pair of variables rather than a product per category pair."""
    rows = codes.shape[0]
    owner = owners(categories)
    width = len(owner)
    if not rows or not width:
        return PairMoments.empty(width)
    observed = ~np.isnan(codes)
    w = observed.astype(np.float64)
    start = np.searchsorted(owner, np.arange(len(categories)))  # a variable's first column
    single = np.array([j for j, k in enumerate(categories) if k < 3], dtype=np.int64)
    nominal = [j for j, k in enumerate(categories) if k >= 3]
    at = start[single]  # the single columns among the encoded ones
    first = np.argmax(observed[:, single], axis=0)
    shift = np.zeros(width)
    shift[at] = np.where(observed[:, single].any(axis=0), codes[first, single], 0.0)
    x0 = np.where(observed[:, single], codes[:, single] - shift[at], 0.0)
    sums, squares, cross = (
        np.zeros((width, len(categories))),
        np.zeros((width, len(categories))),
        np.zeros((width, width)),
    )
    sums[at], squares[at] = x0.T @ w, (x0 * x0).T @ w
    cross[np.ix_(at, at)] = x0.T @ x0
    level = {j: np.where(observed[:, j], codes[:, j], 0).astype(np.int64) for j in nominal}
    for i in nominal:
        cols = slice(start[i], start[i] + categories[i])
        seen = observed[:, i]
        sums[cols] = squares[cols] = _group_sums(w[seen], level[i][seen], categories[i])
        cross[cols, at] = _group_sums(x0[seen], level[i][seen], categories[i])
        cross[at, cols] = cross[cols, at].T
        for j in (j for j in nominal if j >= i):
            k, both = categories[j], seen & observed[:, j]
            pairs = np.bincount(level[i][both] * k + level[j][both], minlength=categories[i] * k)
            cross[cols, start[j] : start[j] + k] = pairs.reshape(categories[i], k)
            cross[start[j] : start[j] + k, cols] = pairs.reshape(categories[i], k).T
    n = (w.T @ w)[np.ix_(owner, owner)]
    sums, squares = sums[:, owner], squares[:, owner]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, sums / n, 0.0)
    m2 = np.maximum(squares - sums * mean, 0.0)
    comoment = cross - sums * mean.T
    return PairMoments(rows, shift, n, mean, m2, comoment)


def merge_moments(a: PairMoments, b: PairMoments) -> PairMoments:
    """The moments of the union of two row sets (Chan, Golub & LeVeque's update, pairwise),
    relative to a's shift where a has seen the column, else b's."""
    shift = np.where(np.diag(a.n) > 0, a.shift, b.shift)
    mean_a = a.mean + (a.shift - shift)[:, None]  # differences of observed values: exact
    mean_b = b.mean + (b.shift - shift)[:, None]  # when they are within a factor of 2
    n = a.n + b.n
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, b.n / n, 0.0)
        weight = np.where(n > 0, a.n * b.n / n, 0.0)
    delta = mean_b - mean_a  # where a or b has no rows, weight is 0 and mean is the other's
    return PairMoments(
        a.rows + b.rows,
        shift,
        n,
        np.where(a.n > 0, mean_a + delta * share, mean_b),
        a.m2 + b.m2 + delta * delta * weight,
        a.comoment + b.comoment + delta * delta.T * weight,
    )


@dataclass(frozen=True)
class Association:
    """Per variable pair (target row, predictor column): `strength` = max(|cor(y, x)|,
    |cor(r_y, x)|) (0 where undefined), `pairs` = rows where both are observed; `rows`."""

    strength: np.ndarray
    pairs: np.ndarray
    rows: int


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """|num| / sqrt(den), 0 where den is 0 (R: an undefined correlation counts as 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(num) / np.sqrt(den)
    return np.where(den > 0, np.minimum(r, 1.0), 0.0)


def _spread(m: PairMoments) -> np.ndarray:
    """m2, 0 where a column's SD on the pair's rows is below CONSTANT_BELOW times its scale
    there (its distance from its shift plus its overall SD): rounding leaves a column that
    is constant on those rows (but not elsewhere) an SD of about sqrt(machine epsilon)
    times that scale, and a correlation of noise where R's is undefined (0)."""
    n = np.diag(m.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(np.where(n > 0, np.diag(m.m2) / n, 0.0))
    scale = np.abs(m.mean) + sd[:, None]
    return np.where(m.m2 > (CONSTANT_BELOW * scale) ** 2 * m.n, m.m2, 0.0)


def association(m: PairMoments, owner: np.ndarray) -> Association:
    """R's two correlations from the moments, the largest over each variable's columns."""
    m2 = _spread(m)
    cor = _ratio(m.comoment, m2 * m2.T)
    lead = np.unique(owner, return_index=True)[1]
    n_b = np.diag(m.n)[None, :]  # rows where predictor column b is observed
    n_yb = m.n[lead, :]  # ... and target y too
    mean_b = np.diag(m.mean)[None, :]
    cov = n_yb * (m.mean.T[lead, :] - mean_b)  # sum over b's rows of (r_y - mean)(x_b - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_r = np.where(n_b > 0, n_yb * (1 - n_yb / n_b), 0.0)
    response = _ratio(cov, var_r * np.diag(m2)[None, :])
    by_variable = np.maximum.reduceat(np.maximum.reduceat(cor, lead, axis=0), lead, axis=1)
    strength = np.maximum(by_variable, np.maximum.reduceat(response, lead, axis=1))
    return Association(strength, m.n[np.ix_(lead, lead)], m.rows)


def rule(assoc: Association, names: list[str], opts: Options) -> np.ndarray:
    """R's predictor matrix (0/1; rows targets, columns predictors) over `names`."""
    keep = assoc.strength > opts.mincor
    if opts.minpuc:
        observed = np.diag(assoc.pairs)
        missing_target = (assoc.rows - observed)[:, None]  # mr + mm of md.pairs
        usable = observed[None, :] - assoc.pairs  # mr: y missing, x observed
        with np.errstate(divide="ignore", invalid="ignore"):
            keep &= ~(usable / missing_target < opts.minpuc)  # NaN (y complete): no change
    index = {n: i for i, n in enumerate(names)}
    keep[:, [index[n] for n in opts.exclude if n in index]] = False
    keep[:, [index[n] for n in opts.include if n in index]] = True
    np.fill_diagonal(keep, False)
    keep[np.diag(assoc.pairs) == assoc.rows, :] = False
    return keep.astype(np.int64)


def _event(variable: str, event: str, detail: str) -> dict[str, Any]:
    return {"chain": 0, "iteration": 0, "variable": variable, "event": event, "detail": detail}


def choose(
    setting: bool | dict | None,
    data: list[str],
    derived: list[str],
    targets: list[str],
    associate: Callable[[], Association] | None,
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """The predictors R's rule chooses for `targets` (those without a `predictors` entry)
    under the run option `setting` (`MiceConfig.quickpred`; None: only when there are more
    than AUTO_ABOVE candidates), and the plan's events saying so. `data`: the variables in
    the data, in order; `derived`: passive columns not in it, always kept (the plan drops
    one derived from its target); `associate`: one pass over the data, made only if needed."""
    targets = [t for t in targets if t in data]
    opts, events = options(setting), []
    if setting is None and targets and len(data) - 1 > AUTO_ABOVE:
        opts = Options()
        detail = (
            f"{len(data) - 1} candidate predictors, more than {AUTO_ABOVE}: predictors chosen "
            f"by R's quickpred rule ({opts}); name the analysis model's variables in "
            f"quickpred: {{include: [...]}} so that they predict one another (by correlation "
            f"alone the rule can leave them out and bias the pooled estimates toward zero; "
            f"`sparkmice check-congeniality` checks), or set quickpred: false to use them all"
        )
        log.info(f"quickpred: {detail}")
        events.append(_event("", "quickpred chosen", detail))
    if opts is None or not targets:
        return {}, events
    if associate is None:
        raise ValueError("quickpred needs the data: resolve the plan with `correlate`")
    matrix = rule(associate(), data, opts)
    chosen = {}
    for target in targets:
        chosen[target] = [p for p, k in zip(data, matrix[data.index(target)], strict=True) if k]
        detail = (
            f"quickpred ({opts}): {len(chosen[target])} of {len(data) - 1}: "
            f"{', '.join(chosen[target]) or 'none (intercept-only model)'}"
        )
        events.append(_event(target, "predictors selected", detail))
        chosen[target] += derived
    return chosen, events
