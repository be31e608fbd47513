"""Matplotlib figures of the diagnostics, drawn like R mice's lattice plots.

Every function takes the small summary tables of :mod:`rhat`, :mod:`distributions` and
:mod:`missingness` (never the data) and returns a :class:`matplotlib.figure.Figure`
built without pyplot, so no GUI backend or global state is involved. Colours follow
R mice's ``mdc()``: blue for observed, red for imputed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sparkmice.privacy import count_text

OBSERVED = "#006CC2"
IMPUTED = "#B61A51"

__all__ = ["density_plot", "flux_plot", "pattern_plot", "proportion_plot", "trace_plot"]


def _grid(panels: int, columns: int, width: float, height: float) -> tuple[Figure, list]:
    """A figure with ``panels`` axes in rows of ``columns``; unused axes hidden."""
    columns = max(1, min(columns, panels))
    rows = max(1, math.ceil(panels / columns))
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return figure, axes[:panels]


def _empty(message: str) -> Figure:
    """A small figure that only says ``message``."""
    figure = Figure(figsize=(6, 1.2))
    figure.text(0.5, 0.5, message, ha="center", va="center")
    return figure


def trace_plot(trace: pd.DataFrame, variables: list[str] | None = None) -> Figure:
    """R mice's ``plot(imp)``: mean and SD of the imputed values against iteration.

    One row of two panels (mean, SD) per variable, one line per chain (imputation).
    """
    variables = variables or list(dict.fromkeys(trace["variable"]))
    if not variables:
        return _empty("No trace: no variable was imputed.")
    figure, axes = _grid(2 * len(variables), 2, 4.2, 2.0)
    chains = sorted(trace["chain"].unique())
    colours = [f"C{i % 10}" for i in range(len(chains))]
    for row, name in enumerate(variables):
        rows = trace[trace["variable"] == name]
        for col, stat in enumerate(("mean", "sd")):
            ax = axes[2 * row + col]
            for chain, colour in zip(chains, colours, strict=True):
                line = rows[rows["chain"] == chain].sort_values("iteration")
                ax.plot(line["iteration"], line[stat], color=colour, lw=1.2, label=str(chain))
            ax.set_title(f"{stat} {name}", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=8)
            if row == len(variables) - 1:
                ax.set_xlabel("Iteration", fontsize=8)
    if len(chains) <= 10:
        axes[1].legend(
            title="chain",
            fontsize=7,
            title_fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
        )
    return figure


def density_plot(curves: pd.DataFrame, variables: list[str] | None = None) -> Figure:
    """R mice's ``densityplot(imp)``: observed density (blue, thick) against the
    density of the imputed values of each imputation (red, thin); one panel per variable.

    ``curves`` is :func:`sparkmice.diagnostics.distributions.density_curves` output.
    """
    variables = variables or list(dict.fromkeys(curves["variable"]))
    if not variables:
        return _empty("No continuous variable was imputed.")
    figure, axes = _grid(len(variables), 3, 3.4, 2.6)
    for ax, name in zip(axes, variables, strict=True):
        rows = curves[curves["variable"] == name]
        for k, curve in rows.groupby("imputation"):
            observed = k == 0
            ax.plot(
                curve["x"],
                curve["density"],
                color=OBSERVED if observed else IMPUTED,
                lw=2.0 if observed else 0.9,
                zorder=3 if observed else 2,
                label="observed" if observed else None,
            )
        ax.set_title(name, fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    axes[0].plot([], [], color=IMPUTED, lw=0.9, label="imputed (one line per imputation)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return figure


def proportion_plot(
    levels: pd.DataFrame, variables: list[str] | None = None, min_count: int = 1
) -> Figure:
    """Level proportions of categorical variables: observed (blue bars) against the
    imputed values of each imputation (red points, side by side in imputation order), in
    the spirit of R mice's ``stripplot``.

    ``levels`` is :func:`sparkmice.diagnostics.distributions.level_counts` output. Cells
    of fewer than ``min_count`` values are not drawn; a small observed bar reads "<n".
    """
    small = (levels["count"] > 0) & (levels["count"] < min_count)
    levels = levels.assign(proportion=levels["proportion"].where(~small), small=small)
    variables = variables or list(dict.fromkeys(levels["variable"]))
    if not variables:
        return _empty("No categorical variable was imputed.")
    figure, axes = _grid(len(variables), 3, 3.4, 2.6)
    for ax, name in zip(axes, variables, strict=True):
        rows = levels[levels["variable"] == name]
        observed = rows[rows["imputation"] == 0]
        x = np.arange(len(observed))
        ax.bar(x, observed["proportion"], color=OBSERVED, alpha=0.35, label="observed")
        for i in np.flatnonzero(observed["small"].to_numpy()).tolist():
            ax.text(x[i], 0, f"<{min_count}", ha="center", va="bottom", fontsize=7)
        imputed = [g for k, g in rows.groupby("imputation") if k != 0]
        for i, group in enumerate(imputed):
            shift = (i - (len(imputed) - 1) / 2) * 0.6 / max(len(imputed), 1)
            ax.plot(
                x + shift,
                group["proportion"],
                "o",
                color=IMPUTED,
                ms=4,
                alpha=0.85,
                label="imputed" if i == 0 else None,
            )
        ax.set_xticks(
            x, [str(v) for v in observed["level"]], fontsize=8, rotation=45 if len(x) > 6 else 0
        )
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("proportion", fontsize=8)
        ax.tick_params(labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return figure


def pattern_plot(pattern: pd.DataFrame, max_patterns: int = 40, min_count: int = 1) -> Figure:
    """R mice's ``md.pattern`` plot: a row per pattern (blue observed, red missing),
    its count on the left, its number of missing variables on the right and the missing
    count per column below. ``pattern`` is :func:`md_pattern` output; only the
    ``max_patterns`` most frequent patterns are drawn; counts below ``min_count`` read "<n".
    """
    body = pattern.iloc[:-1]
    total = pattern.iloc[-1]
    if body.empty:
        return _empty("No rows: nothing to draw.")
    columns = [c for c in pattern.columns if c not in ("count", "n_missing")]
    shown = body.nlargest(max_patterns, "count", keep="first").sort_index()
    rows, cols = len(shown), len(columns)
    figure = Figure(
        figsize=(min(1.2 + 0.55 * cols, 16), min(1.4 + 0.28 * rows, 14)), layout="constrained"
    )
    ax = figure.subplots()
    cells = shown[columns].to_numpy(dtype=float)
    colours = np.where(cells[..., None] == 1, _rgb(OBSERVED), _rgb(IMPUTED))
    ax.imshow(colours, aspect="auto", interpolation="nearest", alpha=0.75)
    ax.set_xticks(range(cols), columns, rotation=90 if cols > 8 else 0, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(rows), [count_text(c, min_count) for c in shown["count"]], fontsize=8)
    ax.set_ylabel("rows with the pattern", fontsize=8)
    right = ax.secondary_yaxis("right")
    right.set_ticks(range(rows), [str(v) for v in shown["n_missing"]], fontsize=8)
    right.set_ylabel("missing variables", fontsize=8)
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    missing = ", ".join(f"{c} {count_text(total[c], min_count)}" for c in columns)
    note = f" ({rows} of {len(body)} patterns shown)" if rows < len(body) else ""
    ax.set_xlabel(
        f"missing per column: {missing}; total {count_text(total['n_missing'], min_count)}{note}",
        fontsize=8,
        wrap=True,
    )
    return figure


def _rgb(colour: str) -> np.ndarray:
    """An '#RRGGBB' colour as floats in [0, 1]."""
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def flux_plot(flux: pd.DataFrame) -> Figure:
    """R mice's ``fluxplot``: outflux against influx per column, with the line
    influx + outflux = 1 dashed. Columns near the top left connect best to observed data.
    """
    figure = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [1, 0], ls="--", color="grey", lw=0.8)
    ax.scatter(flux["influx"], flux["outflux"], s=12, color=OBSERVED)
    for name, row in flux.iterrows():
        ax.annotate(
            str(name),
            (row["influx"], row["outflux"]),
            fontsize=8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set(
        xlim=(-0.02, 1.02), ylim=(-0.02, 1.05), xlabel="Influx", ylabel="Outflux", aspect="equal"
    )
    return figure
