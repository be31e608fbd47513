"""The analysis with the column names and levels real tables have: R's dotted names
(`Solar.R`), columns named like formulaic's functions (`log`), the arguments of `center`,
a categorical's unused categories and a duration with a space, on the pandas and Spark
routes. Each fit is checked against the same data with plain names (same library code,
same rows: the estimates agree to rounding)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.analysis.choice import analysis_for

RTOL = 1e-8  # the same fit on renamed columns: only the summation order may differ


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    """Three imputations' long table: plain names, and a category no row holds."""
    rng = np.random.default_rng(71)
    n, m = 300, 3
    frames = []
    for k in range(1, m + 1):
        a, b, x = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
        g = pd.Categorical(rng.choice(["u", "v", "w"], n), categories=["u", "v", "w", "never"])
        y = 1 + 0.5 * a - 0.3 * b + 0.2 * x + (g == "v") + rng.normal(size=n)
        t = rng.exponential(np.exp(-0.5 * a))
        frames.append(pd.DataFrame({"_imputation": k, "_row_id": np.arange(n), "y": y, "a": a,
                                    "b": b, "x": x, "g": g, "t": t, "died": 1.0}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


ODD = {"a": "Solar.R", "b": "log", "t": "follow up"}


def fitted(data, formula: str, spark=None):
    if spark is not None:
        data = spark.createDataFrame(data.astype({"g": str}))
    return sparkmice.fit_imputations(data, formula, "gaussian")


@pytest.mark.parametrize("route", ["pandas", "spark"])
def test_dotted_and_function_named_columns_fit_as_plain_ones(long, route, request):
    """`Solar.R` (bare and in backticks) and a column `log` are columns, and `center(x)`'s
    argument too; before, formulaic's variable list read `Solar` and dropped `log` and x."""
    spark = request.getfixturevalue("spark") if route == "spark" else None
    plain = fitted(long, "y ~ a + b + center(x) + C(g)", spark)
    odd = long.rename(columns=ODD)
    for formula in ("y ~ Solar.R + log + center(x) + C(g)",
                    "y ~ `Solar.R` + `log` + center(x) + C(g)"):  # fmt: skip
        got = fitted(odd, formula, spark)
        np.testing.assert_allclose(got.estimates, plain.estimates, rtol=RTOL)
        np.testing.assert_allclose(got.covariances, plain.covariances, rtol=RTOL)


def test_an_unused_category_is_left_out_as_r_drops_unused_levels(long, spark):
    """A category no row holds ("never", kept by mice as R keeps factor levels) gives no
    term: the pandas route fits (before, its all-zero column was refused as rank-deficient)
    and agrees with the Spark route, which sees only the levels present."""
    fits = fitted(long, "y ~ a + C(g)")
    assert fits.terms == ("Intercept", "a", "C(g)[T.v]", "C(g)[T.w]")
    on_spark = fitted(long, "y ~ a + C(g)", spark)
    assert on_spark.terms == fits.terms
    np.testing.assert_allclose(on_spark.estimates, fits.estimates, rtol=RTOL)


def test_with_imputations_on_spark_with_a_dotted_column(long, spark):
    """pyspark's group-by function cannot refer to `Solar.R`: the tasks get the columns by
    position and name them back (before: UNRESOLVED_COLUMN `Solar`.`R`)."""

    def ols(frame: pd.DataFrame):
        import statsmodels.api as sm

        return sm.OLS(frame["y"], sm.add_constant(frame[["Solar.R"]])).fit()

    odd = long.rename(columns=ODD).astype({"g": str})
    on_pandas = sparkmice.with_imputations(odd, ols)
    on_spark = sparkmice.with_imputations(spark.createDataFrame(odd), ols)
    assert on_spark.terms == ("const", "Solar.R")
    np.testing.assert_allclose(on_spark.estimates, on_pandas.estimates, rtol=RTOL)


def test_a_cox_duration_with_a_space_is_quoted(long):
    """The duration becomes the response of the covariates' formula, quoted (before:
    "cannot parse formula 'follow up~ ...'", a formula the user never wrote)."""
    plain = sparkmice.with_imputations(
        long, analysis_for("cox", long, "~ a", duration="t", event="died")
    )
    odd = long.rename(columns=ODD)
    fn = analysis_for("cox", odd, "~ `Solar.R`", duration="follow up", event="died")
    assert fn.variables == ("Solar.R", "follow up")
    got = sparkmice.with_imputations(odd, fn)
    np.testing.assert_allclose(got.estimates, plain.estimates, rtol=RTOL)


def test_baselines_on_spark_with_a_dotted_column_equal_pandas(spark):
    """Complete cases and mean imputation of an incomplete `Solar.R` on Spark give the
    pandas route's fits (before: UNRESOLVED_COLUMN `Solar`.`R`). The Spark table is made
    from pandas, so its missing cells are NaN: the mean is taken over the observed ones (a
    NaN mean filled nothing, and the mean-imputed fit was the complete-case one)."""
    rng = np.random.default_rng(72)
    n = 400
    d = pd.DataFrame({"Solar.R": rng.normal(size=n), "log": rng.normal(size=n)})
    d["y"] = d["Solar.R"] - d["log"] + rng.normal(size=n)
    d.loc[rng.random(n) < 0.3, "Solar.R"] = np.nan
    for baseline in (sparkmice.fit_complete_cases, sparkmice.fit_mean_imputed):
        want = baseline(d, "y ~ Solar.R + log")
        got = baseline(spark.createDataFrame(d), "y ~ Solar.R + log")
        np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=RTOL)
        np.testing.assert_allclose(got["std_error"], want["std_error"], rtol=RTOL)
