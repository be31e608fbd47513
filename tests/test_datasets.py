"""Tests of sparkmice.datasets: the reference MAR generator, its truth, the packaged data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkmice.datasets import (
    MAR_COLUMNS,
    TRUE_COEFFICIENTS,
    load_health_mar,
    load_nhanes,
    make_mar,
    write_frame,
)

DATA = Path(__file__).parent / "data"
# The shared reference generator, when this checkout sits beside it (not in CI).
SHARED_GEN_MAR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_mar.py"
COLUMNS = ["age", "bp", "chol", "bmi", "lact", "crp", "smoke", "female", "diet", "region", "y"]
# numpy's exp/log take different SIMD paths on different CPUs (AVX-512, AVX2, baseline) and
# may differ in the last bit, so frames generated on another machine agree to a few ulps,
# not bitwise: 1e-12 relative is ~4500 ulps, far below any change a code edit would cause.
CROSS_MACHINE_RTOL = 1e-12


def assert_same_frame_across_machines(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns, dtypes, missingness, levels and integers exactly; floats to 1e-12 rel."""
    assert list(got.columns) == list(expected.columns)
    assert list(got.dtypes) == list(expected.dtypes)
    pd.testing.assert_frame_equal(got.isna(), expected.isna(), check_exact=True)
    for col in got.columns:
        a, b = got[col], expected[col]
        if a.dtype.kind == "f":
            observed = a.notna().to_numpy()
            np.testing.assert_allclose(
                a.to_numpy()[observed], b.to_numpy()[observed], rtol=CROSS_MACHINE_RTOL, atol=0,
                err_msg=col,
            )
        else:
            pd.testing.assert_series_equal(a, b, check_exact=True)


def test_same_numbers_as_gen_mar_fixture() -> None:
    """Same draws in the same order: the CSV written by gen_mar.py 200 ... 1 is reproduced."""
    expected = pd.read_csv(DATA / "gen_mar_n200_seed1.csv")
    ours = make_mar(200, seed=1)
    # Round-trip through the same CSV writer so both sides parse the same way.
    buf = ours.to_csv(index=False, na_rep="NA")
    got = pd.read_csv(pd.io.common.StringIO(buf))
    assert_same_frame_across_machines(got, expected)


def test_same_numbers_as_shared_gen_mar() -> None:
    """Bitwise equal to the shared gen_mar.make for other sizes and seeds.

    Runs where the shared benchmark folder sits beside this checkout; elsewhere the fixture
    test above carries the comparison (no skip).
    """
    if not SHARED_GEN_MAR.exists():
        test_same_numbers_as_gen_mar_fixture()
        return
    spec = importlib.util.spec_from_file_location("gen_mar", SHARED_GEN_MAR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for n, seed in [(1, 3), (5000, 11)]:
        pd.testing.assert_frame_equal(make_mar(n, seed), module.make(n, seed), check_exact=True)


def test_schema_and_missingness() -> None:
    d = make_mar(20000, seed=5)
    assert list(d.columns) == COLUMNS
    assert d.shape == (20000, 11)
    missing = d.isna().mean()
    incomplete = {c for c, _ in MAR_COLUMNS}
    for col in COLUMNS:
        if col in incomplete:
            assert 0.25 < missing[col] < 0.45, (col, missing[col])
        else:
            assert missing[col] == 0, col
    assert set(d["diet"].dropna()) == {"omnivore", "vegetarian", "vegan"}
    assert set(d["region"]) == set("ABCDE")
    assert set(d["smoke"].dropna()) == {0.0, 1.0}
    assert set(d["y"]) == {0.0, 1.0}
    assert d["diet"].dtype == object and d["bp"].dtype == np.float64


def test_missingness_is_mar_not_mcar() -> None:
    """Missingness rises with age and with y (both observed)."""
    d = make_mar(20000, seed=6)
    for col, _ in MAR_COLUMNS:
        miss = d[col].isna()
        assert miss[d.y == 1].mean() > miss[d.y == 0].mean() + 0.05, col
        assert miss[d.age > 60].mean() > miss[d.age < 40].mean() + 0.1, col


def test_amputate_false_gives_the_complete_values() -> None:
    full = make_mar(3000, seed=9, amputate=False)
    amputed = make_mar(3000, seed=9)
    assert not full.isna().any().any()
    observed = amputed.notna()
    pd.testing.assert_frame_equal(amputed[observed], full[observed])


def test_seed_determines_the_frame() -> None:
    pd.testing.assert_frame_equal(make_mar(500, seed=4), make_mar(500, seed=4))
    assert not make_mar(500, seed=4)["age"].equals(make_mar(500, seed=5)["age"])


def test_true_coefficients_are_recovered_from_complete_data() -> None:
    """A logistic fit on 100k complete rows lands within 4 SE of every true coefficient."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    d = make_mar(100_000, seed=21, amputate=False)
    fit = smf.glm("y ~ age + bp + smoke + C(diet)", d, family=sm.families.Binomial()).fit()
    assert set(fit.params.index) == set(TRUE_COEFFICIENTS)
    z = (fit.params - pd.Series(TRUE_COEFFICIENTS)) / fit.bse
    assert (z.abs() < 4).all(), z.to_dict()


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_n_is_rejected_with_its_value(bad: object) -> None:
    with pytest.raises(ValueError, match=r"'n' must be a positive integer\. Got"):
        make_mar(bad)  # type: ignore[arg-type]


def test_bad_seed_is_rejected() -> None:
    with pytest.raises(ValueError, match="'seed' must be a non-negative integer"):
        make_mar(10, seed=-1)


def test_load_nhanes_matches_r_mice() -> None:
    d = load_nhanes()
    assert list(d.columns) == ["age", "bmi", "hyp", "chl"]
    assert d.shape == (25, 4)
    # R: colSums(is.na(nhanes)) -> age 0, bmi 9, hyp 8, chl 10
    assert d.isna().sum().to_dict() == {"age": 0, "bmi": 9, "hyp": 8, "chl": 10}
    assert (d.dtypes == np.float64).all()
    assert d.loc[1, "bmi"] == pytest.approx(22.7)


def test_packaged_health_mar_is_make_mar_20000_seed_2026() -> None:
    """The file was generated on another machine: equal up to the CPU's last bits."""
    assert_same_frame_across_machines(load_health_mar(), make_mar(20000, seed=2026))


def test_write_frame_round_trips(tmp_path: Path) -> None:
    d = make_mar(300, seed=2)
    pd.testing.assert_frame_equal(pd.read_parquet(write_frame(d, tmp_path / "a.parquet")), d)
    text = write_frame(d, tmp_path / "a.csv").read_text()
    assert ",NA," in text
    with pytest.raises(ValueError, match="unknown suffix"):
        write_frame(d, tmp_path / "a.txt")
