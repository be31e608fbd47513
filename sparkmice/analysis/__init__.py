"""Fitting the analysis model on every imputation (pandas: statsmodels; Spark: IRLS),
or any model the user fits himself (`with_imputations`).

Public names are imported on first use (`sparkmice.lazy`): Spark's Python workers import
`sparkmice.analysis.spark` to fit, and should not pay for statsmodels or scipy.stats."""

from sparkmice.lazy import lazy_exports

_HOMES = {
    "AnalysisFits": "sparkmice.analysis.fits",
    "fit_complete_cases": "sparkmice.analysis.baselines",
    "fit_imputations": "sparkmice.analysis.fit",
    "fit_mean_imputed": "sparkmice.analysis.baselines",
    "with_imputations": "sparkmice.analysis.models",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(globals(), _HOMES)
