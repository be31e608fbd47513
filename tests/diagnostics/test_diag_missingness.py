"""md.pattern, flux and fraction missing: R mice's numbers, and Spark equal to pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkmice.diagnostics.missingness import (
    flux,
    fraction_missing,
    md_pattern,
    missing_patterns,
)

NHANES = Path(__file__).parents[2] / "sparkmice" / "data" / "nhanes.csv"


def load_nhanes() -> pd.DataFrame:
    """R mice's nhanes (25 rows; age complete, bmi, hyp, chl incomplete)."""
    return pd.read_csv(NHANES, na_values=["NA", ""])


# R 4.x, mice 3.15.0: md.pattern(nhanes, plot = FALSE) and print(flux(nhanes), digits = 15)
R_MD_PATTERN = [
    [13, 1, 1, 1, 1, 0],
    [3, 1, 1, 1, 0, 1],
    [1, 1, 1, 0, 1, 1],
    [1, 1, 0, 0, 1, 2],
    [7, 1, 0, 0, 0, 3],
    [25, 0, 8, 9, 10, 27],
]
R_FLUX = pd.DataFrame(
    {
        "pobs": [1.00, 0.64, 0.68, 0.60],
        "influx": [0.0, 0.164383561643836, 0.123287671232877, 0.219178082191781],
        "outflux": [1.0, 0.111111111111111, 0.148148148148148, 0.111111111111111],
        "ainb": [0.0, 0.444444444444444, 0.375, 0.533333333333333],
        "aout": [0.36, 0.0625, 0.0784313725490196, 0.0666666666666667],
        "fico": [0.48, 0.1875, 0.235294117647059, 0.133333333333333],
    },
    index=["age", "bmi", "hyp", "chl"],
)


def test_md_pattern_equals_r_mice_on_nhanes():
    table = md_pattern(load_nhanes())
    assert list(table.columns) == ["count", "age", "hyp", "bmi", "chl", "n_missing"]
    assert table.index.tolist() == [1, 2, 3, 4, 5, "total"]
    np.testing.assert_array_equal(table.to_numpy(dtype=np.int64), R_MD_PATTERN)


def test_flux_equals_r_mice_on_nhanes():
    result = flux(load_nhanes()).loc[R_FLUX.index]
    pd.testing.assert_frame_equal(result, R_FLUX, rtol=0, atol=1e-14)


def _messy(n: int = 300, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n).astype(float),
            "c": rng.choice(["x", "y", "z"], n).astype(object),
            "d": rng.normal(size=n),
            "e": np.ones(n),
        }
    )
    for name, p in zip("abcd", (0.1, 0.3, 0.2, 0.5), strict=True):
        frame.loc[rng.random(n) < p, name] = None
    return frame


def test_flux_equals_md_pairs_written_out():
    frame = _messy()
    r = (~frame.isna()).to_numpy(dtype=float)
    rr, rm, mr, mm = r.T @ r, r.T @ (1 - r), (1 - r).T @ r, (1 - r).T @ (1 - r)
    p = r.shape[1]
    with np.errstate(invalid="ignore"):
        expected = pd.DataFrame(
            {
                "pobs": r.mean(axis=0),
                "influx": mr.sum(1) / (mr + rr).sum(1),
                "outflux": rm.sum(1) / (rm + mm).sum(1),
                "ainb": np.nansum(mr / (mr + mm), 1) / (p - 1),
                "aout": np.nansum(rm / (rm + rr), 1) / (p - 1),
                "fico": [(r[:, j] * (r.min(1) == 0)).sum() / r[:, j].sum() for j in range(p)],
            },
            index=list(frame.columns),
        )
    pd.testing.assert_frame_equal(flux(frame), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fraction_missing(frame), frame.isna().mean())


def test_unknown_column_is_named():
    with pytest.raises(ValueError, match=r"Columns \['zz'\] are not in the data"):
        missing_patterns(_messy(), ["a", "zz"])


@pytest.mark.spark
@pytest.mark.parametrize("name", ["nhanes", "messy", "synthetic"])
def test_spark_equals_pandas(spark, original, name):
    frame = {"nhanes": load_nhanes(), "messy": _messy(), "synthetic": original}[name]
    on_spark = spark.createDataFrame(frame)
    pd.testing.assert_frame_equal(md_pattern(on_spark), md_pattern(frame))
    pd.testing.assert_frame_equal(flux(on_spark), flux(frame))
    pd.testing.assert_series_equal(fraction_missing(on_spark), fraction_missing(frame))


@pytest.mark.spark
def test_spark_counts_nan_as_missing(spark):
    frame = spark.sql("SELECT * FROM VALUES (double('NaN'), 1), (2.0, NULL), (3.0, 3) AS t(x, y)")
    patterns = missing_patterns(frame)
    assert patterns.n_missing.tolist() == [1, 1]
    assert patterns.counts.tolist() == [1, 1, 1]
