"""Diagnostics of an imputed run: convergence, plausibility, missingness and a report.

Pure numpy/pandas statistics; the Spark code only aggregates (group-by counts, min/max),
so nothing here collects the rows of a large table. R-hat is imported at once (every run
ends with it), the rest on first use (`sparkmice.lazy`).
"""

from sparkmice.diagnostics.rhat import convergence as convergence
from sparkmice.diagnostics.rhat import convergence_message as convergence_message
from sparkmice.diagnostics.rhat import rhat as rhat
from sparkmice.diagnostics.rhat import rhat_table as rhat_table
from sparkmice.lazy import lazy_exports

_HOMES = {
    "Report": "sparkmice.diagnostics.report",
    "build_report": "sparkmice.diagnostics.report",
    "density_curves": "sparkmice.diagnostics.distributions",
    "density_plot": "sparkmice.diagnostics.plots",
    "flux": "sparkmice.diagnostics.missingness",
    "flux_plot": "sparkmice.diagnostics.plots",
    "fraction_missing": "sparkmice.diagnostics.missingness",
    "histograms": "sparkmice.diagnostics.distributions",
    "level_counts": "sparkmice.diagnostics.distributions",
    "md_pattern": "sparkmice.diagnostics.missingness",
    "missing_patterns": "sparkmice.diagnostics.missingness",
    "pattern_plot": "sparkmice.diagnostics.plots",
    "proportion_plot": "sparkmice.diagnostics.plots",
    "read_run": "sparkmice.diagnostics.report",
    "trace_plot": "sparkmice.diagnostics.plots",
}
__all__ = sorted([*_HOMES, "convergence", "convergence_message", "rhat", "rhat_table"])
__getattr__, __dir__ = lazy_exports(globals(), _HOMES)
