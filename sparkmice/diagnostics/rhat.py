"""Convergence of the MICE chains: rank-normalised split R-hat from the trace.

The trace holds, per chain (= imputation), iteration and variable, the mean and SD of
the imputed values. Treating each statistic as an MCMC draw, the chains have mixed when
the between-chain spread is no larger than the within-chain spread (Gelman & Rubin 1992).

Reference: Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC.
*Bayesian Analysis* 16(2), 667-718. doi:10.1214/20-BA1221. R mice's ``convergence()``
uses the same statistic (through ``rstan::Rhat``); R-hat > 1.1 means "not converged".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

THRESHOLD = 1.1
MIN_CHAINS = 2
MIN_ITERATIONS = 4

__all__ = [
    "THRESHOLD",
    "basic_rhat",
    "convergence",
    "convergence_message",
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


def _trace_array(trace: pd.DataFrame, variable: str, statistic: str) -> np.ndarray:
    """The trace of one variable's ``statistic`` as an array chains x iterations."""
    rows = trace[trace["variable"] == variable]
    wide = rows.pivot(index="chain", columns="iteration", values=statistic)
    return wide.sort_index().sort_index(axis=1).to_numpy(dtype=float)


def _variables(trace: pd.DataFrame) -> list[str]:
    """Variables of the trace in order of first appearance (the visit sequence)."""
    return list(dict.fromkeys(trace["variable"]))


def rhat_table(trace: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Per variable: R-hat of the imputed values' mean and SD over all iterations.

    ``trace`` has columns chain, iteration, variable, mean, sd (``_sparkmice/trace.csv``).
    A variable has ``converged`` when both R-hats are at most ``threshold`` (1.1); it
    is NA when R-hat is undefined, and ``message`` says why or what to do.
    """
    rows = []
    for variable in _variables(trace):
        arrays = {stat: _trace_array(trace, variable, stat) for stat in ("mean", "sd")}
        values = {stat: rhat(a) for stat, a in arrays.items()}
        reasons = {stat: _undefined_reason(a) for stat, a in arrays.items()}
        worst = max(values.values(), key=lambda v: -np.inf if np.isnan(v) else v)
        converged: bool | pd.api.typing.NAType
        if reasons["mean"] is not None and reasons["sd"] is not None:
            converged, message = pd.NA, f"R-hat undefined: {reasons['mean']}"
        elif worst > threshold:
            stats = [s for s, v in values.items() if v > threshold]
            converged = False
            message = (
                f"not converged: R-hat of the {' and '.join(stats)} > {threshold:g}; "
                "run more iterations (maxit)"
            )
        else:
            undefined = [f"R-hat of the {s} undefined: {r}" for s, r in reasons.items() if r]
            converged, message = True, "; ".join(["converged"] + undefined)
        rows.append(
            {
                "variable": variable,
                "rhat_mean": values["mean"],
                "rhat_sd": values["sd"],
                "converged": converged,
                "message": message,
            }
        )
    table = pd.DataFrame(rows, columns=["variable", "rhat_mean", "rhat_sd", "converged", "message"])
    table["converged"] = table["converged"].astype("boolean")
    return table


def convergence_message(table: pd.DataFrame, threshold: float = THRESHOLD) -> str:
    """One sentence on the R-hat table of :func:`rhat_table`, for logs and reports."""
    failed = table.loc[table["converged"].eq(False).fillna(False), "variable"].tolist()
    unknown = table.loc[table["converged"].isna(), "variable"].tolist()
    parts = []
    if failed:
        parts.append(
            f"Not converged (R-hat > {threshold:g}): {', '.join(failed)}. The chains have "
            "not mixed yet; run more iterations (maxit) before pooling."
        )
    if unknown:
        parts.append(f"R-hat undefined for: {', '.join(unknown)} (see the table).")
    if not parts:
        return f"All {len(table)} imputed variables converged (R-hat ≤ {threshold:g})."
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
