"""`with_imputations` on Spark (applyInPandas grouped by `_imputation`) against the pandas
route on the same completed data, and `sparkmice pool --model cox|mixedlm` end to end.

Same machine, same rows in the same (`_row_id`) order, same library code on both sides: the
fits agree to rounding (rtol 1e-10 leaves room only for a different summation order)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.analysis.choice import analysis_for
from sparkmice.cli import main

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    """A run folder of 3 imputations of Cox data with a grouping column (in-process)."""
    rng = np.random.default_rng(61)
    n = 240
    x, z = rng.normal(size=n), rng.integers(0, 2, n).astype(float)
    t = rng.exponential(1.0 / np.exp(0.6 * x - 0.4 * z))
    c = rng.uniform(0.0, 3.0, n)
    g = np.repeat(np.arange(20), n // 20).astype(float)
    y = 1.0 + 0.5 * x + rng.normal(0.0, 0.7, 20)[g.astype(int)] + rng.normal(size=n)
    df = pd.DataFrame({"x": x, "z": z, "time": np.minimum(t, c),
                       "event": (t <= c).astype(float), "g": g, "y": y})  # fmt: skip
    df.loc[rng.random(n) < 0.3, "x"] = np.nan
    out = str(tmp_path_factory.mktemp("models") / "run")
    sparkmice.mice(df, m=3, maxit=2, seed=62, output=out)
    return out


def test_spark_route_equals_pandas_route(spark, run_dir) -> None:
    long = sparkmice.read_imputed(run_dir)
    fn = analysis_for("cox", long, "~ x + C(z)", duration="time", event="event")
    local = sparkmice.with_imputations(long, fn)
    remote = sparkmice.with_imputations(spark.createDataFrame(long).repartition(3), fn)
    assert remote.terms == local.terms and remote.imputations == (1, 2, 3)
    np.testing.assert_allclose(remote.estimates, local.estimates, rtol=1e-10)
    np.testing.assert_allclose(remote.covariances, local.covariances, rtol=1e-10)
    assert remote.dfcom == local.dfcom
    pd.testing.assert_frame_equal(sparkmice.pool(remote), sparkmice.pool(local), rtol=1e-9)


@pytest.mark.parametrize(
    "model, formula, columns, terms",
    [
        ("cox", "~ x + z", {"duration": "time", "event": "event"}, ["x", "z"]),
        ("mixedlm", "y ~ x", {"groups": "g"}, ["Intercept", "x"]),
    ],
)
def test_cli_pool_model(spark, run_dir, tmp_path, model, formula, columns, terms) -> None:
    out = tmp_path / "pooled.csv"
    options = [part for name, column in columns.items() for part in (f"--{name}", column)]
    code = main(["pool", "--imputed", run_dir, "--output", str(out), "--model", model,
                 "--formula", formula, *options])  # fmt: skip
    assert code == 0
    table = pd.read_csv(out)
    assert list(table["term"]) == terms and (table["m"] == 3).all()
    long = sparkmice.read_imputed(run_dir)
    expected = sparkmice.pool(
        sparkmice.with_imputations(long, analysis_for(model, long, formula, **columns))
    )
    np.testing.assert_allclose(table["estimate"], expected["estimate"], rtol=1e-8)
    np.testing.assert_allclose(table["std_error"], expected["std_error"], rtol=1e-8)
