"""Distributed IRLS on Spark against statsmodels on the same completed data, and the job.

Tolerance 1e-8 relative: both routes converge the deviance to ~1e-11 relative, which puts
the estimates within ~1e-10 (Newton converges quadratically) and the covariances, taken at
the estimate in both routes, within the same; 1e-8 still fails on any real difference
(a wrong dispersion, weights from another iterate: ~1e-6).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from sparkmice.analysis import fit_complete_cases, fit_imputations, fit_mean_imputed
from sparkmice.pooling import D3, pool
from sparkmice.pooling.job import add_arguments, pool_directory, run

pytestmark = pytest.mark.spark
RTOL = 1e-8


def simulated_long(m: int = 3, n: int = 200, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(1, m + 1):
        x = rng.normal(size=n)
        g = rng.choice(["a", "b", "c"], n)
        c = rng.poisson(3, n).astype(float)
        eta = 0.3 + 0.8 * x + 0.5 * (g == "b")
        parts.append(pd.DataFrame({
            "_imputation": k, "_row_id": np.arange(n, dtype="int64"), "x": x, "g": g, "c": c,
            "yb": rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float),
            "yp": rng.poisson(np.exp(eta)).astype(float),
            "yg": 10 + eta + rng.normal(size=n),
        }))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def long_pair(spark):
    pdf = simulated_long()
    return pdf, spark.createDataFrame(pdf).repartition(3)


@pytest.mark.parametrize(
    ("family", "formula"),
    [
        ("binomial", "yb ~ x + C(g) + np.log(c + 1) + x:c"),
        ("poisson", "yp ~ x * g + I(x**2)"),
        ("gaussian", "yg ~ x + g + c"),
    ],
)
def test_spark_irls_equals_statsmodels(long_pair, family: str, formula: str) -> None:
    pdf, sdf = long_pair
    a = fit_imputations(pdf, formula, family)
    b = fit_imputations(sdf, formula, family)
    assert a.terms == b.terms and a.imputations == b.imputations
    np.testing.assert_allclose(b.estimates, a.estimates, rtol=RTOL)
    np.testing.assert_allclose(b.covariances, a.covariances, rtol=RTOL)
    np.testing.assert_allclose(b.deviance, a.deviance, rtol=RTOL)
    np.testing.assert_array_equal(b.nobs, a.nobs)
    assert a.dfcom == b.dfcom == 200 - len(a.terms)
    if family == "gaussian":
        np.testing.assert_allclose(b.r_squared, a.r_squared, rtol=RTOL)
    pd.testing.assert_frame_equal(pool(a), pool(b), rtol=RTOL)


def test_d3_on_spark_equals_pandas(long_pair) -> None:
    pdf, sdf = long_pair
    """Gaussian keeps it quick; the offset-and-intercept refit is the same code for all."""
    full, null = "yg ~ x + g", "yg ~ x"
    a = D3(fit_imputations(pdf, full), fit_imputations(pdf, null))
    b = D3(fit_imputations(sdf, full), fit_imputations(sdf, null))
    # D3 takes differences of nearly equal deviances, which cost about a digit: rtol 1e-7.
    np.testing.assert_allclose([b.statistic, b.df2, b.riv], [a.statistic, a.df2, a.riv], rtol=1e-7)


def test_baselines_on_spark_equal_pandas(spark) -> None:
    pdf = simulated_long(m=1).drop(columns=["_imputation", "_row_id"])
    rng = np.random.default_rng(3)
    pdf.loc[rng.random(len(pdf)) < 0.2, "x"] = np.nan
    pdf.loc[rng.random(len(pdf)) < 0.2, "g"] = None
    pdf.loc[rng.random(len(pdf)) < 0.1, "yg"] = np.nan
    sdf = spark.createDataFrame(pdf.astype({"g": object}).replace({np.nan: None}))
    for baseline in (fit_complete_cases, fit_mean_imputed):
        a = baseline(pdf, "yg ~ x + g", "gaussian")
        b = baseline(sdf, "yg ~ x + g", "gaussian")
        pd.testing.assert_frame_equal(a, b, rtol=RTOL)


def test_spark_errors_before_any_job(spark, long_pair) -> None:
    _, sdf = long_pair
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['z'\]"):
        fit_imputations(sdf, "yg ~ x + z")
    with pytest.raises(ValueError, match="no '_imputation' column"):
        fit_imputations(sdf.drop("_imputation"), "yg ~ x")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_pool_job_end_to_end(spark, long_pair, tmp_path, capsys) -> None:
    pdf, sdf = long_pair
    imputed = str(tmp_path / "imputed")
    sdf.write.partitionBy("_imputation").parquet(imputed)
    original = str(tmp_path / "original.parquet")
    pdf[pdf["_imputation"] == 1].drop(columns=["_imputation"]).to_parquet(original)
    out = tmp_path / "pooled.csv"
    code = run(parse("--imputed", imputed, "--formula", "yg ~ x + C(g)", "--output", str(out),
                     "--compare", "cca,mean", "--original", original))  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "found 3 imputations" in err
    table = pd.read_csv(out)
    assert table["method"].tolist() == ["mice"] * 4 + ["cca"] * 4 + ["mean"] * 4
    expected = pool(fit_imputations(pdf, "yg ~ x + C(g)"))
    np.testing.assert_allclose(table["estimate"][:4], expected["estimate"], rtol=RTOL)
    parquet_out = tmp_path / "pooled.parquet"
    assert run(parse("--imputed", imputed, "--formula", "yb ~ x", "--family", "binomial",
                     "--output", str(parquet_out))) == 0  # fmt: skip
    assert len(pd.read_parquet(parquet_out)) == 2


def test_pool_job_bad_input(spark, long_pair, tmp_path, capsys) -> None:
    pdf, sdf = long_pair
    flat = str(tmp_path / "flat")
    sdf.drop("_imputation").write.parquet(flat)
    with pytest.raises(ValueError, match="no '_imputation' column.*_imputation=k"):
        pool_directory(spark, flat, "yb ~ x")
    one = str(tmp_path / "one")
    sdf.where("_imputation = 1").write.partitionBy("_imputation").parquet(one)
    with pytest.raises(ValueError, match=r"holds 1 imputation\(s\); pooling needs m >= 2"):
        pool_directory(spark, one, "yb ~ x")
    with pytest.raises(ValueError, match="family 'logit' is not supported"):
        pool_directory(spark, one, "yb ~ x", family="logit")
    with pytest.raises(ValueError, match="--compare needs --original"):
        pool_directory(spark, one, "yb ~ x", compare=["cca"])
    with pytest.raises(ValueError, match=r"--compare \['knn'\] unknown"):
        pool_directory(spark, one, "yb ~ x", compare=["knn"], original="x.csv")
    assert run(parse("--imputed", one, "--formula", "yb ~ x", "--output", "p.txt")) == 2
    assert "end the name in one of ('.csv', '.parquet')" in capsys.readouterr().err


def test_both_spark_routes_equal_statsmodels(long_pair, monkeypatch) -> None:
    """Small imputations with `_row_id` are fitted one per task; without `_row_id`, or above
    LOCAL_FIT_CELLS, by one Spark job per IRLS iteration. Both give statsmodels' fit."""
    from sparkmice.analysis import spark as spark_fit

    pdf, sdf = long_pair
    formula = "yb ~ x + C(g)"
    expected = fit_imputations(pdf, formula, "binomial")
    routes = {"in tasks": 0, "distributed": 0}
    for name in routes:
        real = getattr(spark_fit, "_fit_in_tasks" if name == "in tasks" else "_fit_distributed")

        def counted(*args, name=name, real=real):
            routes[name] += 1
            return real(*args)

        monkeypatch.setattr(spark_fit, real.__name__, counted)
    local = fit_imputations(sdf, formula, "binomial")
    monkeypatch.setattr(spark_fit, "LOCAL_FIT_CELLS", 0)
    distributed = fit_imputations(sdf, formula, "binomial")
    assert routes == {"in tasks": 1, "distributed": 1}
    for got in (local, distributed):
        np.testing.assert_allclose(got.estimates, expected.estimates, rtol=RTOL)
        np.testing.assert_allclose(got.covariances, expected.covariances, rtol=RTOL)
        np.testing.assert_array_equal(got.nobs, expected.nobs)


def test_rank_deficient_design_on_spark(spark) -> None:
    """Refused on the driver with the design's message, not as a task's traceback."""
    pdf = simulated_long(m=2, n=50)
    pdf["x2"] = 2 * pdf["x"]
    with pytest.raises(ValueError, match="imputation 1 is rank-deficient.*remove redundant"):
        fit_imputations(spark.createDataFrame(pdf), "yg ~ x + x2")
