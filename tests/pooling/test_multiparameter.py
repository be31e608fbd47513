"""D1, D2, D3 multiparameter tests (R mice's D1/D2/D3; mitml's formulas for D1/D2)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from test_rubin import load_case

from sparkmice.pooling import D1, D2, D3
from sparkmice.pooling.tests import d2_statistic, d3_statistic

REF = Path(__file__).resolve().parents[1] / "data" / "reference"


def nhanes2_fits():
    terms, est, cov, dfcom = load_case("nhanes2_lm")
    full = SimpleNamespace(terms=tuple(terms), estimates=est, covariances=cov, dfcom=dfcom)
    keep = [terms.index(t) for t in ("(Intercept)", "age40-59", "age60-99")]
    null = SimpleNamespace(
        terms=tuple(terms[i] for i in keep),
        estimates=est[:, keep],
        covariances=cov[:, keep][:, :, keep],
        dfcom=dfcom + 2,
    )
    return full, null


def test_d1_matches_r_mice() -> None:
    """Tolerance 1e-10 relative, as for pool(): exact arithmetic on the same inputs."""
    ref = pd.read_csv(REF / "pool_nhanes2_lm_d1.csv").iloc[0]
    full, null = nhanes2_fits()
    res = D1(full, null)
    assert res.df1 == ref["df1"]
    assert res.dropped == tuple(ref["dropped"].split(","))
    got = [res.statistic, res.df2, res.p_value, res.riv]
    want = [ref["statistic"], ref["df2"], ref["p.value"], ref["riv"]]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    frame = res.to_frame()
    assert frame.loc[0, "dropped"] == "bmi,hypyes"


def test_d1_without_dfcom_uses_large_sample_df2() -> None:
    """dfcom = inf: df2 = 4 + (t - 4)(1 + (1 - 2/t)/r)^2, t = k(m - 1) (Li et al. 1991)."""
    full, null = nhanes2_fits()
    res = D1(full, null, dfcom=np.inf)
    t, r = 2 * 9, res.riv
    assert res.df2 == pytest.approx(4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2, rel=1e-13)
    assert res.df2 > D1(full, null).df2  # the small-sample df2 is smaller


def test_d1_of_one_term_is_the_squared_pooled_t() -> None:
    """k = 1: r = riv, so (1 + r) ubar = t and D1 = qbar^2 / t."""
    full, null = nhanes2_fits()
    terms = list(full.terms)
    i = terms.index("bmi")
    smaller = SimpleNamespace(
        terms=tuple(t for t in terms if t != "bmi"),
        estimates=np.delete(full.estimates, i, axis=1),
        covariances=full.covariances,
        dfcom=full.dfcom,
    )
    res = D1(full, smaller)
    q, u = full.estimates[:, i], full.covariances[:, i, i]
    m = len(q)
    t_total = u.mean() + (1 + 1 / m) * q.var(ddof=1)
    assert res.statistic == pytest.approx(q.mean() ** 2 / t_total, rel=1e-12)


def test_d2_formula_on_hand_values() -> None:
    d = np.array([4.0, 9.0, 16.0])  # sqrt: 2, 3, 4 -> var 1
    f, k, df2, r = d2_statistic(d, 2)
    assert r == pytest.approx(4 / 3)
    assert f == pytest.approx((29 / 3 / 2 - 2 * r) / (1 + r))
    assert df2 == pytest.approx(2 ** (-1.0) * 2 * (1 + 3 / 4) ** 2)
    assert k == 2


def test_d2_on_reference_fits_is_consistent_with_wald_statistics() -> None:
    full, null = nhanes2_fits()
    res = D2(full, null)
    assert res.df1 == 2 and res.df2 > 0 and 0 <= res.p_value <= 1
    assert res.dropped == ("bmi", "hypyes")


def test_d3_formula_on_hand_values() -> None:
    """Meng & Rubin: dM = 6, dL = 4, m = 3, k = 2 -> r = 4/4 * 2 = 2, D3 = 4/(2 * 3)."""
    f, k, df2, r = d3_statistic(
        dev1_fitted=np.array([10.0, 10.0, 10.0]),
        dev0_fitted=np.array([16.0, 16.0, 16.0]),
        dev1_pooled=np.array([11.0, 11.0, 11.0]),
        dev0_pooled=np.array([15.0, 15.0, 15.0]),
        k=2,
    )
    assert r == pytest.approx(2.0)
    assert f == pytest.approx(4 / 6)
    assert df2 == pytest.approx(4 * (1 + 1 / 2) * (1 + 1 / 2) ** 2 / 2)  # t = 4 branch


def test_non_nested_models_are_refused() -> None:
    full, null = nhanes2_fits()
    other = SimpleNamespace(
        terms=("(Intercept)", "chl"), estimates=full.estimates[:, :2],
        covariances=full.covariances[:, :2, :2], dfcom=22.0,
    )  # fmt: skip
    for test in (D1, D2):
        with pytest.raises(ValueError, match=r"not nested: terms \['chl'\].*subset"):
            test(full, other)
        with pytest.raises(ValueError, match="not nested: both models have the same terms"):
            test(full, full)
        with pytest.raises(ValueError, match="not nested"):
            test(null, full)  # arguments swapped
    with pytest.raises(ValueError, match="not nested"):
        D3(full, other)


def test_models_on_different_m_are_refused() -> None:
    full, null = nhanes2_fits()
    fewer = SimpleNamespace(**{**vars(null), "estimates": null.estimates[:5]})
    with pytest.raises(ValueError, match="different numbers of imputations"):
        D1(full, fewer)


def test_identical_imputations_give_the_chi_square_p_value() -> None:
    """With no variance between the imputations D2's df2 is infinite, and F(k, inf) is
    chi-square(k) / k: the p-value is the chi-square's of k·D2, as R's pf(f, k, Inf)
    (scipy's F survival function gives nan there, which D2 and D3 returned)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    q = rng.normal(size=2)
    u = np.eye(2) * 0.4
    full = SimpleNamespace(terms=("a", "b"), estimates=np.tile(q, (10, 1)),
                           covariances=np.tile(u, (10, 1, 1)), dfcom=np.inf)  # fmt: skip
    res = D2(full, None)
    wald = q @ np.linalg.solve(u, q)
    assert np.isinf(res.df2) and res.statistic == pytest.approx(wald / 2, rel=1e-12)
    assert res.p_value == pytest.approx(stats.chi2.sf(wald, 2), rel=1e-12)
