"""Diagnostics of an imputed run: convergence, plausibility, missingness and a report.

Pure numpy/pandas statistics; the Spark code only aggregates (group-by counts, min/max),
so nothing here collects the rows of a large table.
"""

from sparkmice.diagnostics.distributions import density_curves, histograms, level_counts
from sparkmice.diagnostics.missingness import (
    flux,
    fraction_missing,
    md_pattern,
    missing_patterns,
)
from sparkmice.diagnostics.plots import (
    density_plot,
    flux_plot,
    pattern_plot,
    proportion_plot,
    trace_plot,
)
from sparkmice.diagnostics.report import Report, build_report, read_run
from sparkmice.diagnostics.rhat import convergence, convergence_message, rhat, rhat_table

__all__ = [
    "Report",
    "build_report",
    "convergence",
    "convergence_message",
    "density_curves",
    "density_plot",
    "flux",
    "flux_plot",
    "fraction_missing",
    "histograms",
    "level_counts",
    "md_pattern",
    "missing_patterns",
    "pattern_plot",
    "proportion_plot",
    "read_run",
    "rhat",
    "rhat_table",
    "trace_plot",
]
