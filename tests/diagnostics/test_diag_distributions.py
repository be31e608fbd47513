"""Observed-vs-imputed summaries: right on pandas, and Spark equal to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from diag_synthetic import LEVELS

from sparkmice.diagnostics.distributions import (
    bin_edges,
    density_curves,
    histograms,
    level_counts,
)
from sparkmice.diagnostics.report import read_imputed_pandas

CONTINUOUS = ["bmi", "chl"]
CATEGORICAL = ["hyp", "region"]


@pytest.fixture(scope="module")
def long(run_dir):
    return read_imputed_pandas(run_dir)


def _imputed_values(long, original, name, k):
    """Values of ``name`` in imputation k at the rows missing in the original (by _row_id)."""
    rows = long[long["_imputation"] == k].set_index("_row_id").sort_index()
    return rows.loc[original[name].isna().to_numpy(), name].to_numpy()


def test_histograms_count_observed_and_imputed_cells(long, original):
    table = histograms(long, original, CONTINUOUS, bins=16)
    edges = bin_edges(long, CONTINUOUS, 16)
    assert set(table["imputation"]) == {0, 1, 2, 3}
    for name in CONTINUOUS:
        rows = table[table["variable"] == name]
        observed = original[name].dropna().to_numpy(dtype=float)
        expected0, _ = np.histogram(observed, bins=edges[name])
        np.testing.assert_array_equal(rows.loc[rows["imputation"] == 0, "count"], expected0)
        for k in (1, 2, 3):
            imputed = _imputed_values(long, original, name, k).astype(float)
            expected, _ = np.histogram(imputed, bins=edges[name])
            np.testing.assert_array_equal(rows.loc[rows["imputation"] == k, "count"], expected)


def test_level_counts_follow_config_levels(long, original):
    table = level_counts(long, original, CATEGORICAL, LEVELS)
    region = table[(table["variable"] == "region") & (table["imputation"] == 2)]
    assert region["level"].tolist() == ["north", "south", "east"]
    expected = pd.Series(_imputed_values(long, original, "region", 2)).value_counts()
    assert region["count"].tolist() == [expected.get(v, 0) for v in LEVELS["region"]]
    hyp0 = table[(table["variable"] == "hyp") & (table["imputation"] == 0)]
    assert hyp0["level"].tolist() == ["0", "1"]
    assert hyp0["proportion"].sum() == pytest.approx(1.0)


def test_a_different_original_is_refused(long, original):
    other = pd.concat([original, original], ignore_index=True)
    with pytest.raises(ValueError, match="original data do not match imputation 1 of variable"):
        histograms(long, other, ["bmi"])


def test_density_curves_integrate_to_one(long, original):
    curves = density_curves(histograms(long, original, CONTINUOUS))
    for (_, _), curve in curves.groupby(["variable", "imputation"]):
        x, f = curve["x"].to_numpy(), curve["density"].to_numpy()
        assert np.sum((f[1:] + f[:-1]) / 2 * np.diff(x)) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.spark
def test_spark_equals_pandas(spark, run_dir, long, original):
    on_spark = spark.read.parquet(str(run_dir))
    original_spark = spark.createDataFrame(original)
    pd.testing.assert_frame_equal(
        histograms(on_spark, original_spark, CONTINUOUS, bins=7),
        histograms(long, original, CONTINUOUS, bins=7),
    )
    pd.testing.assert_frame_equal(
        level_counts(on_spark, original_spark, CATEGORICAL, LEVELS),
        level_counts(long, original, CATEGORICAL, LEVELS),
    )
