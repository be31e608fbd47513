"""cart and rf end to end: pooled estimates on R mice's nhanes near R mice's, and a
non-linear MAR case where pmm with main effects only is biased and cart is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.datasets import load_nhanes, make_nonlinear


def pooled(data: pd.DataFrame, formula: str, **options) -> pd.DataFrame:
    imp = sparkmice.mice(data, **options)
    return sparkmice.pool(sparkmice.fit_imputations(imp.complete("long"), formula))


@pytest.mark.parametrize("method", ["cart", "rf"])
def test_nhanes_pooled_estimates_near_r_mice(method):
    """`chl ~ age + bmi` pooled over m = 10 imputations with bmi, hyp and chl on the trees,
    against R mice 3.15's pool() (pmm, m = 5; tests/data/reference): different imputation
    models and random draws on 25 rows, so only agreement within two of R's pooled
    standard errors is expected (as for pmm in test_nhanes_end_to_end)."""
    nhanes = load_nhanes()
    methods = dict.fromkeys(["bmi", "hyp", "chl"], method)
    imp = sparkmice.mice(nhanes, m=10, maxit=5, seed=1, method=methods)
    long = imp.complete("long")
    for col in ("bmi", "chl"):  # donors: every imputed value is an observed one
        assert set(long[col]) <= set(nhanes[col].dropna())
    result = sparkmice.pool(sparkmice.fit_imputations(long, "chl ~ age + bmi"))
    ref = pd.read_csv(
        Path(__file__).resolve().parents[1] / "data" / "reference" / "pool_nhanes_lm_pooled.csv"
    )
    ref["term"] = ref["term"].replace({"(Intercept)": "Intercept"})
    both = result.merge(ref, on="term", suffixes=("", "_r"))
    assert len(both) == 3
    assert (np.abs(both["estimate"] - both["estimate_r"]) < 2 * both["std.error"]).all()
    assert (result["b"] > 0).all()  # the imputations differ


def test_cart_recovers_a_quadratic_term_that_pmm_with_main_effects_loses():
    """The coefficient of x^2 (truth 1) in `y ~ x + I(x**2) + z`, mean over 3 data sets of
    1000 rows, m = 5. pmm's model has x and z only: about 0.5. cart finds the curve; its
    leaves are a few tenths of x wide, which attenuates the term by about 0.04
    (benchmarks/results/trees_*.md). The mean of 3 has a Monte-Carlo SE of about 0.015
    (the estimates' sd over data sets, 0.025, over sqrt(3)), so cart must be within
    0.04 + 4 * 0.015 = 0.1 of the truth and pmm more than 0.3 below it."""
    quadratic = {"pmm": [], "cart": []}
    for rep in range(3):
        data = make_nonlinear(1000, rep)
        for method in quadratic:
            result = pooled(
                data, "y ~ x + I(x**2) + z", m=5, maxit=5, seed=rep, method={"y": method}
            )
            quadratic[method].append(result.set_index("term").loc["I(x ** 2)", "estimate"])
    assert abs(np.mean(quadratic["cart"]) - 1) < 0.1
    assert 1 - np.mean(quadratic["pmm"]) > 0.3
