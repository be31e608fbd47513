"""End to end on R mice's nhanes: impute with sparkmice, fit `chl ~ age + bmi` on every
imputation, pool by Rubin's rules, and check the structure and sanity of the result.

In-process engine, m = 5, maxit = 10, seed 1 (as `mice(nhanes, m = 5, maxit = 10, seed = 1)`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.datasets import load_nhanes
from sparkmice.pooling.rubin import POOLED_COLUMNS

FORMULA = "chl ~ age + bmi"
M = 5


@pytest.fixture(scope="module")
def nhanes() -> pd.DataFrame:
    return load_nhanes()


@pytest.fixture(scope="module")
def imputed(nhanes: pd.DataFrame) -> sparkmice.MiceResult:
    return sparkmice.mice(nhanes, m=M, maxit=10, seed=1)


@pytest.fixture(scope="module")
def long(imputed: sparkmice.MiceResult) -> pd.DataFrame:
    return imputed.complete("long")


@pytest.fixture(scope="module")
def pooled(long: pd.DataFrame) -> pd.DataFrame:
    return sparkmice.pool(sparkmice.fit_imputations(long, FORMULA, family="gaussian"))


def test_imputations_are_complete_and_keep_observed_cells(
    nhanes: pd.DataFrame, imputed: sparkmice.MiceResult, long: pd.DataFrame
) -> None:
    assert imputed.m == M and imputed.engine == "inprocess"
    assert imputed.method == {"age": "", "bmi": "pmm", "hyp": "logreg", "chl": "pmm"}
    assert len(long) == M * len(nhanes)
    assert sorted(long["_imputation"].unique()) == list(range(1, M + 1))
    for k, one in long.groupby("_imputation"):
        one = one.sort_values("_row_id")
        assert one["_row_id"].tolist() == list(range(len(nhanes))), k
        values = one[list(nhanes.columns)].reset_index(drop=True)
        assert not values.isna().any().any(), k
        observed = nhanes.notna()
        pd.testing.assert_frame_equal(values[observed], nhanes[observed], check_dtype=False)
        for col in ("bmi", "chl"):  # pmm: every imputed value occurs among the observed
            assert set(values[col]) <= set(nhanes[col].dropna()), (k, col)
        assert set(values["hyp"]) <= {1.0, 2.0}, k


def test_fits_on_every_imputation(long: pd.DataFrame) -> None:
    fits = sparkmice.fit_imputations(long, FORMULA, family="gaussian")
    assert fits.m == M and fits.terms == ("Intercept", "age", "bmi")
    assert fits.dfcom == 22.0  # 25 rows - 3 coefficients, as R's df.residual
    # The imputations differ: the m estimates are not all equal.
    assert (np.ptp(fits.estimates, axis=0) > 0).all()


def test_pooled_structure_and_sanity(pooled: pd.DataFrame) -> None:
    assert list(pooled.columns) == list(POOLED_COLUMNS)
    assert pooled["term"].tolist() == ["Intercept", "age", "bmi"]
    assert (pooled["m"] == M).all()
    assert np.isfinite(pooled.drop(columns="term").to_numpy(float)).all()
    assert (pooled["b"] > 0).all()  # genuine between-imputation variance
    assert (pooled["df"] > 0).all() and (pooled["df"] <= pooled["dfcom"]).all()
    assert ((pooled["fmi"] >= 0) & (pooled["fmi"] <= 1)).all()
    assert ((pooled["lambda"] >= 0) & (pooled["lambda"] <= 1)).all()
    assert (pooled["t"] >= pooled["ubar"]).all()
    np.testing.assert_allclose(pooled["t"], pooled["ubar"] + (1 + 1 / M) * pooled["b"],
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(pooled["std_error"], np.sqrt(pooled["t"]), rtol=1e-12)
    assert ((pooled["conf_low"] < pooled["estimate"])
            & (pooled["estimate"] < pooled["conf_high"])).all()  # fmt: skip


def test_pooled_result_is_reproducible(nhanes: pd.DataFrame, pooled: pd.DataFrame) -> None:
    again = sparkmice.mice(nhanes, m=M, maxit=10, seed=1).complete("long")
    pd.testing.assert_frame_equal(
        sparkmice.pool(sparkmice.fit_imputations(again, FORMULA, family="gaussian")), pooled)


def test_pooled_estimates_near_r_mice(pooled: pd.DataFrame) -> None:
    """A loose check against R mice 3.15's pool() of the same model on its own m = 5
    imputations (tests/data/reference/pool_nhanes_lm_pooled.csv): different random draws,
    so only agreement within two of R's pooled standard errors is expected."""
    from pathlib import Path

    ref = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "reference"
                      / "pool_nhanes_lm_pooled.csv")  # fmt: skip
    ref["term"] = ref["term"].replace({"(Intercept)": "Intercept"})
    both = pooled.merge(ref, on="term", suffixes=("", "_r"))
    assert len(both) == 3
    assert (np.abs(both["estimate"] - both["estimate_r"]) < 2 * both["std.error"]).all()
    assert (np.sign(both.loc[both["term"] != "Intercept", "estimate"]) == 1).all()
