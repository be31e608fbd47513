"""Rubin's rules against R mice 3.15 (tests/data/reference, copied from ../shared/reference).

Tolerance 1e-10 relative: the reference numbers carry 15 significant digits and the pooling
arithmetic loses at most a few ulps, so 1e-10 fails on any formula difference (a wrong
denominator or a missing lambda floor moves df by >1e-4) yet not on rounding.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sparkmice.pooling import POOLED_COLUMNS, barnard_rubin_df, pool, pool_estimates, pool_scalar

REF = Path(__file__).resolve().parents[1] / "data" / "reference"
CASES = ["nhanes_lm", "nhanes2_lm", "airquality_logit"]
RTOL = 1e-10


def load_case(case: str):
    """Terms, estimates (m, p), covariances (m, p, p), dfcom of one reference case."""
    per = pd.read_csv(REF / f"pool_{case}_per_imputation.csv")
    vcov = pd.read_csv(REF / f"pool_{case}_vcov.csv")
    terms = list(dict.fromkeys(per["term"]))
    est = per.pivot(index="imputation", columns="term", values="estimate")[terms].to_numpy()
    m, p = est.shape
    cov = np.zeros((m, p, p))
    for r in vcov.itertuples():
        cov[r.imputation - 1, terms.index(r.row), terms.index(r.col)] = r.value
    return terms, est, cov, float(per["dfcom"].iloc[0])


@pytest.mark.parametrize("case", CASES)
def test_pool_matches_r_mice(case: str) -> None:
    terms, est, cov, dfcom = load_case(case)
    ref = pd.read_csv(REF / f"pool_{case}_pooled.csv").rename(columns=lambda c: c.replace(".", "_"))
    fits = SimpleNamespace(terms=tuple(terms), estimates=est, covariances=cov, dfcom=dfcom)
    out = pool(fits)
    assert list(out.columns) == list(POOLED_COLUMNS)
    assert out["term"].tolist() == ref["term"].tolist()
    for col in POOLED_COLUMNS[1:]:
        np.testing.assert_allclose(out[col], ref[col], rtol=RTOL, atol=0, err_msg=col)


@pytest.mark.parametrize("case", CASES)
def test_variances_give_the_same_table_as_covariances(case: str) -> None:
    terms, est, cov, dfcom = load_case(case)
    var = np.diagonal(cov, axis1=1, axis2=2)
    a = pool_estimates(est, cov, dfcom, terms)
    b = pool_estimates(est, var, dfcom, terms)
    pd.testing.assert_frame_equal(a, b)


def test_variances_in_per_imputation_file_agree_with_vcov() -> None:
    """Guards the loader: the diagonal of the vcov file is the per-imputation variance."""
    per = pd.read_csv(REF / "pool_nhanes_lm_per_imputation.csv")
    terms, _, cov, _ = load_case("nhanes_lm")
    var = per.pivot(index="imputation", columns="term", values="variance")[terms].to_numpy()
    np.testing.assert_allclose(np.diagonal(cov, axis1=1, axis2=2), var, rtol=1e-14)


def test_pool_scalar_documented_example() -> None:
    """mice's ?pool.scalar example; R prints 7 significant digits, hence rtol 5e-7."""
    r = pool_scalar([-1.5457, -1.428], [0.9723**2, 1.041**2], n=25, k=2)
    assert r.m == 2
    got = [r.qbar, r.ubar, r.b, r.t, r.df, r.r, r.fmi]
    want = [-1.48685, 1.014524, 0.006926645, 1.024914, 20.97025, 0.01024122, 0.09272831]
    np.testing.assert_allclose(got, want, rtol=5e-7)


def test_df_tends_to_adjusted_dfcom_as_lambda_vanishes() -> None:
    """lambda -> 0 (b -> 0): df -> dfcom (dfcom + 1)/(dfcom + 3), Barnard & Rubin's limit.

    At b = 0 R's floor lambda = 1e-4 applies, so df is within 1e-4 relative of the limit;
    without the floor df_old would be infinite and the limit exact.
    """
    dfcom = 22.0
    limit = dfcom * (dfcom + 1) / (dfcom + 3)
    df0 = barnard_rubin_df(5, np.array([0.0]), np.array([1.0]), dfcom)[0]
    assert np.isfinite(df0)
    assert df0 == pytest.approx(limit, rel=2e-4)
    assert df0 < limit
    small = barnard_rubin_df(5, np.array([1e-3]), np.array([1.0]), dfcom)[0]
    assert small < df0  # df grows toward the limit as lambda shrinks


def test_df_in_one_line_equals_two_step_formula() -> None:
    m, dfcom = 7, 40.0
    b, t = np.array([0.3, 2.0]), np.array([1.0, 3.0])
    lam = (1 + 1 / m) * b / t
    tmp = (1 - lam) * (1 + dfcom) * dfcom
    one_line = (m - 1) * tmp / ((dfcom + 3) * (m - 1) + lam**2 * tmp)
    np.testing.assert_allclose(barnard_rubin_df(m, b, t, dfcom), one_line, rtol=1e-13)


def test_infinite_dfcom_gives_rubin_1987_df() -> None:
    terms, est, cov, _ = load_case("nhanes_lm")
    out = pool_estimates(est, cov, np.inf, terms)
    m = est.shape[0]
    np.testing.assert_allclose(out["df"], (m - 1) / out["lambda"] ** 2, rtol=1e-13)
    finite = pool_estimates(est, cov, 22, terms)
    assert np.all(finite["df"] < out["df"])


def test_one_term_vectors_are_accepted() -> None:
    q, u = np.array([1.0, 1.2, 0.9]), np.array([0.1, 0.12, 0.11])
    out = pool_estimates(q, u, np.inf, ["x"])
    s = pool_scalar(q, u)
    assert out.loc[0, "estimate"] == pytest.approx(s.qbar, rel=1e-15)
    assert out.loc[0, "df"] == pytest.approx(s.df, rel=1e-13)


def test_one_imputation_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at least 2 imputations; got m = 1.*m >= 2"):
        pool_estimates(np.ones((1, 2)), np.ones((1, 2)), 10)
    with pytest.raises(ValueError, match="at least 2 imputations"):
        pool_scalar([1.0], [0.5])


def test_bad_shapes_and_dfcom_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(m, p\) = \(3, 2\).*got \(3, 4\)"):
        pool_estimates(np.ones((3, 2)), np.ones((3, 4)), 10)
    with pytest.raises(ValueError, match="dfcom must be positive"):
        pool_estimates(np.ones((3, 2)), np.ones((3, 2)), 0)
