"""Fitting the analysis model on every imputation (pandas: statsmodels; Spark: IRLS),
or any model the user fits himself (`with_imputations`)."""

from sparkmice.analysis.baselines import fit_complete_cases, fit_mean_imputed
from sparkmice.analysis.fit import fit_imputations
from sparkmice.analysis.fits import AnalysisFits
from sparkmice.analysis.models import with_imputations

__all__ = ["AnalysisFits", "fit_complete_cases", "fit_imputations", "fit_mean_imputed",
           "with_imputations"]
