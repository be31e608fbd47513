"""Fitting on a pandas long table (statsmodels route), baselines and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkmice.analysis import fit_complete_cases, fit_imputations, fit_mean_imputed
from sparkmice.pooling import D1, D2, D3, pool, pool_r_squared

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


def hot_deck_long(df: pd.DataFrame, m: int, seed: int = 1) -> pd.DataFrame:
    """m completed copies, each missing cell a random observed value of its column.

    A cheap, engine-free fill: enough to exercise fitting and pooling with genuine
    between-imputation variance. The end-to-end test with sparkmice's own imputations is
    tests/analysis/test_nhanes_end_to_end.py.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(1, m + 1):
        filled = df.copy()
        for c in df.columns:
            miss = filled[c].isna()
            filled.loc[miss, c] = rng.choice(df[c].dropna().to_numpy(), miss.sum())
        parts.append(filled.assign(_imputation=k, _row_id=np.arange(len(df), dtype="int64")))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def nhanes_long() -> pd.DataFrame:
    return hot_deck_long(pd.read_csv(REF / "nhanes.csv"), m=5)


def test_gaussian_fit_is_ordinary_least_squares(nhanes_long: pd.DataFrame) -> None:
    """Against the closed form (X'X)^-1 X'y and s^2 (X'X)^-1 of lm; rtol 1e-9 (conditioning)."""
    fits = fit_imputations(nhanes_long, "chl ~ age + bmi")
    one = nhanes_long[nhanes_long["_imputation"] == 3]
    x = np.column_stack([np.ones(len(one)), one["age"], one["bmi"]])
    y = one["chl"].to_numpy()
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    rss = np.sum((y - x @ beta) ** 2)
    np.testing.assert_allclose(fits.estimates[2], beta, rtol=1e-9)
    np.testing.assert_allclose(fits.covariances[2], rss / 22 * np.linalg.inv(x.T @ x), rtol=1e-9)
    tss = np.sum((y - y.mean()) ** 2)
    assert fits.r_squared[2] == pytest.approx(1 - rss / tss, rel=1e-12)
    assert fits.adj_r_squared[2] == pytest.approx(1 - (rss / 22) / (tss / 24), rel=1e-12)
    assert pool_r_squared(fits).shape == (1, 4)


def test_formula_features_and_term_names() -> None:
    long = hot_deck_long(pd.read_csv(REF / "nhanes2.csv"), m=3)
    fits = fit_imputations(long, "chl ~ C(age) + hyp + bmi:chl + I(bmi**2) + np.log(bmi)")
    assert fits.terms == (
        "Intercept", "C(age)[T.40-59]", "C(age)[T.60-99]", "hyp[T.yes]", "I(bmi ** 2)",
        "np.log(bmi)", "bmi:chl",
    )  # fmt: skip
    fits2 = fit_imputations(long, "I(hyp == 'yes') ~ age * bmi", family="binomial")
    assert "age[T.40-59]:bmi" in fits2.terms


def test_dfcom_can_be_given(nhanes_long: pd.DataFrame) -> None:
    fits = fit_imputations(nhanes_long, "chl ~ age", dfcom=np.inf)
    out = pool(fits)
    np.testing.assert_allclose(out["df"], 4 / out["lambda"] ** 2, rtol=1e-12)


def test_multiparameter_tests_on_fits(nhanes_long: pd.DataFrame) -> None:
    full = fit_imputations(nhanes_long, "chl ~ age + bmi + hyp")
    null = fit_imputations(nhanes_long, "chl ~ age")
    for res in (D1(full, null), D2(full, null), D3(full, null)):
        assert res.df1 == 2 and res.dropped == ("bmi", "hyp")
        assert res.df2 > 0 and 0 <= res.p_value <= 1


def test_d3_restricted_loglik_at_own_fit_equals_fitted_loglik(nhanes_long) -> None:
    """With m = 1 qbar is the fit itself: -2 logL at qbar = as fitted (intercept refit is 0)."""
    fits = fit_imputations(nhanes_long[nhanes_long["_imputation"] == 1], "chl ~ age + bmi")
    np.testing.assert_allclose(fits.minus2_loglik_at(fits.estimates[0]), fits.minus2_loglik,
                               rtol=1e-10)  # fmt: skip


def test_baselines_have_method_column() -> None:
    original = pd.read_csv(REF / "nhanes.csv")
    cca = fit_complete_cases(original, "chl ~ age + bmi")
    n_complete = len(original.dropna(subset=["chl", "age", "bmi"]))
    assert cca["method"].eq("cca").all() and cca["dfcom"].iloc[0] == n_complete - 3
    mean = fit_mean_imputed(original, "chl ~ age + bmi")
    n_outcome = int(original["chl"].notna().sum())  # rows with a missing outcome are dropped
    assert mean["method"].eq("mean").all() and mean["dfcom"].iloc[0] == n_outcome - 3
    complete = original.dropna(subset=["chl", "age", "bmi"])
    lm = fit_imputations(complete.assign(_imputation=1), "chl ~ age + bmi")
    np.testing.assert_allclose(cca["estimate"], lm.estimates[0], rtol=1e-12)
    logit = fit_complete_cases(pd.read_csv(REF / "nhanes2.csv"), "I(hyp == 'yes') ~ bmi",
                               family="binomial")  # fmt: skip
    assert np.isinf(logit["df"]).all()  # normal reference, as summary.glm


def test_unknown_column_is_named(nhanes_long: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['bmx'\].*columns \['age'"):
        fit_imputations(nhanes_long, "chl ~ age + bmx")


def test_unsupported_family_is_named(nhanes_long: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="family 'gamma' is not supported; use one of gaussian"):
        fit_imputations(nhanes_long, "chl ~ age", family="gamma")


def test_table_without_imputation_column_is_refused() -> None:
    with pytest.raises(ValueError, match="no '_imputation' column.*fit_complete_cases"):
        fit_imputations(pd.read_csv(REF / "nhanes.csv"), "chl ~ age")


def test_binomial_outcome_outside_zero_one_is_refused(nhanes_long: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"binomial outcome 'chl' has value .* I\(y > 60\)"):
        fit_imputations(nhanes_long, "chl ~ age", family="binomial")


def test_rank_deficient_design_is_refused(nhanes_long: pd.DataFrame) -> None:
    long = nhanes_long.assign(age2=nhanes_long["age"] * 2)
    with pytest.raises(ValueError, match="rank-deficient.*remove redundant terms"):
        fit_imputations(long, "chl ~ age + age2")
