"""Convergence of the MICE chains: rank-normalised split R-hat from the trace.

The trace holds, per chain (= imputation), iteration and variable, the mean and SD of
the imputed values. Treating each statistic as an MCMC draw, the chains have mixed when
the between-chain spread is no larger than the within-chain spread (Gelman & Rubin 1992).

The verdict (:func:`rhat_table`) judges the second half of the iterations (the first half
is warm-up, as in Gelman et al.'s BDA and Stan) and says "not converged" only where R-hat
over that window exceeds 1.1. R-hat of chains this short is noisy: with m = 5 chains and
5 iterations per chain, converged chains (independent draws) exceed 1.1 three times in four,
so a window must be long enough that converged chains exceed the threshold with
probability at most ``FALSE_ALARM`` (1%) per variable, the mean and SD traces together
(:func:`min_iterations`: 22 iterations per chain, maxit >= 44, for m = 5). Shorter runs get
"too few iterations to judge" and the maxit that can. ``benchmarks/convergence.py``
measures the rates on real runs (``benchmarks/results/convergence_*.md``).

Reference: Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC.
*Bayesian Analysis* 16(2), 667-718. doi:10.1214/20-BA1221. R mice's ``convergence()``
uses the same statistic (through ``rstan::Rhat``); R-hat > 1.1 means "not converged".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import fdtri, ndtri

THRESHOLD = 1.1
FALSE_ALARM = 0.01
MIN_CHAINS = 2
MIN_ITERATIONS = 4
#: R-hats behind one variable's verdict: bulk and tail, of the mean and of the SD trace.
STATISTICS_PER_VARIABLE = 4

__all__ = [
    "FALSE_ALARM",
    "THRESHOLD",
    "basic_rhat",
    "convergence",
    "convergence_message",
    "critical_rhat",
    "min_iterations",
    "rank_normalize",
    "rhat",
    "rhat_table",
    "split_chains",
]


def split_chains(draws: np.ndarray) -> np.ndarray:
    """Split each of M chains of N draws into halves: (M, N) -> (2M, N // 2).

    For odd N the middle draw is dropped, as in the paper and ``rstan``.
    """
    draws = np.asarray(draws, dtype=float)
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]], axis=0)


def rank_normalize(draws: np.ndarray) -> np.ndarray:
    """Rank-normalise all draws jointly: z = Φ⁻¹((r - 3/8) / (S + 1/4)).

    r is the rank of a draw among all S draws (ties get their average rank); the
    offsets are Blom's (Vehtari et al. 2021, eq. 14).
    """
    draws = np.asarray(draws, dtype=float)
    ranks = _average_ranks(draws.ravel()).reshape(draws.shape)
    return ndtri((ranks - 0.375) / (draws.size + 0.25))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (scipy's rankdata 'average', without
    importing scipy.stats at the end of every run)."""
    order = np.argsort(x, kind="stable")
    ranked = x[order]
    first = np.r_[True, ranked[1:] != ranked[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(first) - 1]
    return ranks


def basic_rhat(draws: np.ndarray) -> float:
    """Gelman-Rubin R-hat of an (M chains, N draws) array, no splitting or ranking.

    W = mean of the within-chain variances, B = N · var(chain means) (both with
    denominator - 1), var⁺ = (N - 1)/N · W + B/N, R-hat = sqrt(var⁺ / W).
    Returns inf when every chain is constant but the chains differ.
    """
    draws = np.asarray(draws, dtype=float)
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean()
    between = n * draws.mean(axis=1).var(ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt(((n - 1) / n * within + between / n) / within))


def _undefined_reason(draws: np.ndarray) -> str | None:
    """Why R-hat is undefined for ``draws`` (chains x iterations), or None."""
    if draws.ndim != 2:
        return f"needs a 2-D array (chains x iterations), got {draws.ndim}-D"
    chains, iterations = draws.shape
    if chains < MIN_CHAINS:
        return f"needs at least {MIN_CHAINS} chains (m), got {chains}"
    if iterations < MIN_ITERATIONS:
        return f"needs at least {MIN_ITERATIONS} iterations (maxit), got {iterations}"
    if not np.all(np.isfinite(draws)):
        return "the trace has missing or non-finite values"
    if np.all(draws == draws.flat[0]):
        return "the trace is constant (nothing varies between iterations or chains)"
    return None


def rhat(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat of an array of chains x iterations.

    R-hat = max(R_bulk, R_tail) with R_bulk = basic_rhat(z(split(θ))) and
    R_tail = basic_rhat(z(split(|θ - median(θ)|))), z = :func:`rank_normalize`
    (Vehtari et al. 2021, section 4.2; the median is over all draws, as in ``rstan``).
    NaN when undefined: fewer than 2 chains or 4 iterations, non-finite or constant
    values. +inf when the chains are stuck at different constant values.
    """
    draws = np.asarray(draws, dtype=float)
    if _undefined_reason(draws) is not None:
        return float("nan")
    bulk = basic_rhat(rank_normalize(split_chains(draws)))
    folded = np.abs(draws - np.median(draws))
    tail = basic_rhat(rank_normalize(split_chains(folded)))
    return max(bulk, tail)


def critical_rhat(chains: int, iterations: int, false_alarm: float = FALSE_ALARM) -> float:
    """The R-hat that converged chains exceed with probability about ``false_alarm``.

    For ``chains`` chains of ``iterations`` independent draws, split into 2·chains chains
    of n = iterations // 2 whose rank-normalised draws are close to normal,
    n·var(chain means)/W is F-distributed with (2·chains - 1, 2·chains·(n - 1)) degrees of
    freedom, and R-hat² = (n - 1)/n + F/n (:func:`basic_rhat`). The quantile is taken at
    1 - false_alarm / 4 (Bonferroni over the four R-hats of a variable's verdict). Checked
    against simulated chains in ``tests/diagnostics/test_diag_rhat.py``.
    """
    n = iterations // 2
    split = 2 * chains
    tail = 1 - false_alarm / STATISTICS_PER_VARIABLE
    f = float(fdtri(split - 1, split * (n - 1), tail))
    return math.sqrt((n - 1) / n + f / n)


def min_iterations(
    chains: int, threshold: float = THRESHOLD, false_alarm: float = FALSE_ALARM
) -> int:
    """The fewest iterations per chain at which R-hat > ``threshold`` is a false alarm
    with probability at most ``false_alarm``: 22 for 5 chains, 14 for 10, 10 for 20."""
    if not threshold > 1:
        raise ValueError(f"The R-hat threshold must be above 1. Got {threshold!r} instead.")
    if not 0 < false_alarm < 1:
        raise ValueError(f"The false-alarm probability must be in (0, 1). Got {false_alarm!r}.")
    iterations = MIN_ITERATIONS
    while critical_rhat(chains, iterations, false_alarm) > threshold:
        iterations += 2  # n = iterations // 2 grows by one
    return iterations


def _trace_array(trace: pd.DataFrame, variable: str, statistic: str) -> np.ndarray:
    """The trace of one variable's ``statistic`` as an array chains x iterations."""
    rows = trace[trace["variable"] == variable]
    wide = rows.pivot(index="chain", columns="iteration", values=statistic)
    return wide.sort_index().sort_index(axis=1).to_numpy(dtype=float)


def _variables(trace: pd.DataFrame) -> list[str]:
    """Variables of the trace in order of first appearance (the visit sequence)."""
    return list(dict.fromkeys(trace["variable"]))


def _verdict(
    values: dict[str, float], window: int, needed: int, threshold: float
) -> tuple[bool | pd.api.typing.NAType, str]:
    """Converged, not converged or NA (too few iterations), with the reason."""
    above = [s for s, v in values.items() if v > threshold]
    if window >= needed and above:
        shown = " and ".join(f"{s} {values[s]:.2f}" for s in above)
        return False, f"not converged: R-hat of the {shown} > {threshold:g}"
    if window >= needed:
        return True, "converged"
    return pd.NA, (
        f"too few iterations to judge: {window} per chain in the second half, "
        f"{needed} needed (maxit >= {2 * needed})"
    )


def rhat_table(
    trace: pd.DataFrame, threshold: float = THRESHOLD, false_alarm: float = FALSE_ALARM
) -> pd.DataFrame:
    """Per variable: R-hat of the imputed values' mean and SD over the second half of the
    iterations, and the verdict.

    ``trace`` has columns chain, iteration, variable, mean, sd (``_sparkmice/trace.csv``).
    Of T iterations the last T // 2 are judged (``iterations``). A variable has
    ``converged`` when both R-hats are at most ``threshold``, False when one is above
    it, and NA when the window is shorter than :func:`min_iterations` (``min_maxit`` is
    the maxit that can be judged) or R-hat is undefined; ``message`` says why.
    """
    columns = ["variable", "rhat_mean", "rhat_sd", "converged", "iterations", "min_maxit",
               "message"]  # fmt: skip
    rows = []
    for variable in _variables(trace):
        arrays = {stat: _trace_array(trace, variable, stat) for stat in ("mean", "sd")}
        chains, total = arrays["mean"].shape
        window = total // 2
        arrays = {stat: a[:, total - window :] for stat, a in arrays.items()}
        values = {stat: rhat(a) for stat, a in arrays.items()}
        reasons = {stat: _undefined_reason(a) for stat, a in arrays.items()}
        needed = min_iterations(max(chains, MIN_CHAINS), threshold, false_alarm)
        converged: bool | pd.api.typing.NAType
        if chains < MIN_CHAINS or (reasons["mean"] and reasons["sd"] and window >= needed):
            converged, message = pd.NA, f"R-hat undefined: {reasons['mean']}"
        else:
            defined = {s: v for s, v in values.items() if reasons[s] is None}
            converged, message = _verdict(defined, window, needed, threshold)
            undefined = [f"R-hat of the {s} undefined: {r}" for s, r in reasons.items() if r]
            if converged is True and undefined:
                message = "; ".join([message, *undefined])
        rows.append(
            {
                "variable": variable,
                "rhat_mean": values["mean"],
                "rhat_sd": values["sd"],
                "converged": converged,
                "iterations": f"{total - window + 1}-{total}" if window else "",
                "min_maxit": 2 * needed,
                "message": message,
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    table["converged"] = table["converged"].astype("boolean")
    table["min_maxit"] = table["min_maxit"].astype("int64")
    return table


def convergence_message(table: pd.DataFrame, threshold: float = THRESHOLD) -> str:
    """What the R-hat table of :func:`rhat_table` says and what to do, for logs and reports."""
    unknown = table["converged"].isna()
    short = unknown & table["message"].str.startswith("too few iterations")
    failed = table["converged"].eq(False).fillna(False)
    parts = []
    if failed.any():
        window = table.loc[failed, "iterations"].iloc[0]
        maxit = int(window.split("-")[1]) if window else 0
        parts.append(
            f"Not converged (R-hat > {threshold:g}): {', '.join(table.loc[failed, 'variable'])}"
            f". Over iterations {window} their chains still differ more than converged "
            f"chains would: continue the run to maxit = {2 * maxit} (--resume --maxit "
            f"{2 * maxit}) and look at the trace plot (sparkmice report) before pooling."
        )
    if short.any():
        needed = int(table.loc[short, "min_maxit"].max())
        names = ", ".join(table.loc[short, "variable"])
        parts.append(
            f"Too few iterations to judge convergence of {names}: R-hat over the second "
            f"half of the iterations needs maxit >= {needed} here (fewer with more "
            f"imputations m): shorter converged chains exceed {threshold:g} too often. To "
            f"check, continue the run: --resume --maxit {needed}."
        )
    if (unknown & ~short).any():
        undefined = ", ".join(table.loc[unknown & ~short, "variable"])
        parts.append(f"R-hat undefined for: {undefined} (see the table).")
    if not parts:
        window = table["iterations"].iloc[0] if len(table) else ""
        return (
            f"All {len(table)} imputed variables converged (R-hat ≤ {threshold:g} over "
            f"iterations {window})."
        )
    return " ".join(parts)


def convergence(trace: pd.DataFrame, parameter: str = "mean") -> pd.DataFrame:
    """R mice's ``convergence()``: per variable and iteration t, ``ac`` and ``psrf``.

    psrf(t) = :func:`rhat` of iterations 1..t (NaN while t < 4); ac(t) = running mean
    over s = 2..t of the correlation across chains between the values at s - 1 and s
    (an undefined correlation counts as 0; NaN at t = 1). ``parameter`` is "mean" or
    "sd" as in R.
    """
    if parameter not in ("mean", "sd"):
        raise ValueError(f"The 'parameter' argument must be 'mean' or 'sd'. Got {parameter!r}.")
    frames = []
    for variable in _variables(trace):
        draws = _trace_array(trace, variable, parameter)
        iterations = np.sort(trace.loc[trace["variable"] == variable, "iteration"].unique())
        lag1 = [_correlation(draws[:, t - 1], draws[:, t]) for t in range(1, draws.shape[1])]
        ac = np.concatenate(
            [[np.nan], np.cumsum(np.nan_to_num(lag1)) / np.arange(1, len(lag1) + 1)]
        )
        psrf = [rhat(draws[:, : t + 1]) for t in range(draws.shape[1])]
        frames.append(
            pd.DataFrame({"variable": variable, "iteration": iterations, "ac": ac, "psrf": psrf})
        )
    return pd.concat(frames, ignore_index=True)


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of x and y; NaN when either is constant or non-finite."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")
