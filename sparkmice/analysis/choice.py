"""The analysis models `sparkmice pool --model` names, as functions of one imputation for
`with_imputations`: a Cox proportional-hazards model (lifelines) and a linear mixed model
with random intercepts (statsmodels MixedLM). `--model glm` stays with `fit_imputations`.

The formula is checked (`sparkmice.analysis.formula`) and its design built by formulaic
from one ModelSpec fixed on the whole long table before any imputation is fitted, so every
imputation gets the same columns; lifelines and statsmodels receive numbers, never a
formula, so no formula text reaches their own (evaluating) parsers.

- cox: `--formula "~ x + C(z)"` (covariates only) with `--duration COL --event COL`; the
  design's intercept is dropped (a Cox model has none); ties by Efron's method, as R's
  `coxph`. Pooled: the log hazard ratios; dfcom = n - p (R mice's get.dfcom for coxph).
- mixedlm: `--formula "y ~ x + C(z)"` with `--groups COL`, a random intercept per group,
  fitted by REML (R's `lmer` default). Pooled: the fixed effects; dfcom = n - p.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import pandas as pd
from formulaic.model_spec import ModelSpecs

from sparkmice.analysis.design import design_arrays, formula_variables, model_spec
from sparkmice.analysis.formula import check_formula
from sparkmice.names import IMPUTATION, ROW_ID

MODELS = ("glm", "cox", "mixedlm")
_DURATION, _EVENT = "__duration", "__event"  # internal column names in the Cox frame


def check_model_options(
    model: str,
    formula: str,
    duration: str | None = None,
    event: str | None = None,
    groups: str | None = None,
) -> None:
    """Refuse a model's missing or misplaced options, naming the fix (before Spark starts)."""
    if model not in MODELS:
        raise ValueError(f"--model {model!r} unknown; use one of {', '.join(MODELS)}")
    check_formula(formula)
    given = {"--duration": duration, "--event": event, "--groups": groups}
    needed = {"glm": (), "cox": ("--duration", "--event"), "mixedlm": ("--groups",)}[model]
    missing = [name for name in needed if not given[name]]
    if missing:
        raise ValueError(f"--model {model} needs {' and '.join(missing)} COLUMN")
    stray = [name for name, value in given.items() if value and name not in needed]
    if stray:
        raise ValueError(f"{', '.join(stray)} applies to another --model, not {model}; drop it")
    if model == "cox":
        if formula.split("~")[0].strip():
            raise ValueError(
                f"--model cox takes the covariates only, as --formula '~ x + C(z)' (got "
                f"{formula!r}); the outcome is --duration {duration} and --event {event}"
            )
        if importlib.util.find_spec("lifelines") is None:
            raise ValueError(
                "--model cox needs the lifelines package: pip install lifelines "
                "(or pip install 'sparkmice[survival]')"
            )


@dataclass(frozen=True)
class _Analysis:
    """One imputation's fit from a fixed ModelSpec (picklable: it travels to Spark tasks)."""

    model: str
    spec: ModelSpecs
    variables: tuple[str, ...]
    duration: str | None
    event: str | None
    groups: str | None

    def __call__(self, frame: pd.DataFrame) -> Any:
        extra = [c for c in (self.event, self.groups) if c]
        rows = frame.dropna(subset=[*self.variables, *extra])  # R's na.omit
        y, x = design_arrays(self.spec, rows, "gaussian")
        terms = list(self.spec.rhs.column_names)
        if self.model == "cox":
            from lifelines import CoxPHFitter

            keep = [j for j, t in enumerate(terms) if t != "Intercept"]
            data = pd.DataFrame(x[:, keep], columns=[terms[j] for j in keep])
            data[_DURATION] = y
            data[_EVENT] = rows[self.event].to_numpy(dtype=float)
            return CoxPHFitter().fit(data, _DURATION, _EVENT)
        from statsmodels.regression.mixed_linear_model import MixedLM

        exog = pd.DataFrame(x, columns=terms)
        return MixedLM(y, exog, groups=rows[self.groups].to_numpy()).fit(reml=True)


def analysis_for(
    model: str,
    long_df: Any,
    formula: str,
    duration: str | None = None,
    event: str | None = None,
    groups: str | None = None,
) -> _Analysis:
    """The function of one imputation that fits `model` (cox or mixedlm) for
    `with_imputations`, with its ModelSpec fixed on the whole of `long_df` (pandas or Spark)."""
    check_model_options(model, formula, duration, event, groups)
    if model == "glm":
        raise ValueError("--model glm is fitted by fit_imputations, not with_imputations")
    # cox: the duration column as the response of the covariates-only formula (quoted: a
    # name with a space or a dot)
    full = "~".join([f"`{duration}` ", formula.split("~", 1)[1]]) if model == "cox" else formula
    variables = formula_variables(full, long_df.columns)
    others = [c for c in (event, groups) if c]
    available = [c for c in long_df.columns if c not in (IMPUTATION, ROW_ID)]
    unknown = [c for c in others if c not in available]
    if unknown:
        raise ValueError(f"column(s) {unknown} not in the data (columns: {available})")
    if isinstance(long_df, pd.DataFrame):
        spec = model_spec(full, long_df[variables])
    else:
        from sparkmice.analysis.spark import positional_variables, spark_model_spec

        data, names = positional_variables(long_df, variables)
        spec, _, _ = spark_model_spec(data, full, names)
    return _Analysis(model, spec, tuple(variables), duration, event, groups)
