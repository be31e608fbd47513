"""The in-process engine: invariants of every imputation, determinism, and the statistics
of the reference workload (the same kernels and sampler the Spark engines run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.datasets import TRUE_COEFFICIENTS, make_mar

FORMULA = "y ~ age + bp + smoke + C(diet)"


def assert_invariants(original: pd.DataFrame, long: pd.DataFrame, m: int, pmm: list[str]):
    """Observed cells bitwise unchanged, the same row ids in every imputation, no missing
    cell left, categorical imputations existing levels, pmm imputations observed values."""
    assert sorted(long["_imputation"].unique()) == list(range(1, m + 1))
    for k in range(1, m + 1):
        done = long[long["_imputation"] == k].sort_values("_row_id").reset_index(drop=True)
        assert done["_row_id"].tolist() == list(range(len(original)))
        for c in original.columns:
            observed = original[c].notna().to_numpy()
            a, b = original[c].to_numpy()[observed], done[c].to_numpy()[observed]
            if a.dtype.kind == "f":
                assert np.array_equal(a.view(np.uint64), b.astype(float).view(np.uint64)), c
            else:
                assert (a == b).all(), c
            assert done[c].notna().all(), f"{c} still has missing cells in imputation {k}"
            if original[c].dtype == object or c in pmm:
                seen = set(original[c].dropna())
                assert set(done.loc[~observed, c]) <= seen, c


@pytest.fixture(scope="module")
def mar() -> pd.DataFrame:
    return make_mar(2000, seed=5)


def test_invariants_hold(mar):
    imp = sparkmice.mice(mar, m=3, maxit=3, seed=1, row_blocks=3)
    assert_invariants(mar, imp.complete("long"), 3, pmm=["bp", "chol", "bmi", "lact"])
    assert imp.method == {
        "age": "",
        "bp": "pmm",
        "chol": "pmm",
        "bmi": "pmm",
        "lact": "pmm",
        "crp": "",
        "smoke": "logreg",
        "female": "",
        "diet": "polyreg",
        "region": "",
        "y": "",
    }
    assert imp.visit_sequence == ["bp", "chol", "bmi", "lact", "smoke", "diet"]
    pm = imp.predictor_matrix
    assert pm.loc["bp"].sum() == 10 and pm.loc["bp", "bp"] == 0 and pm.loc["bp", "y"] == 1
    trace = imp.trace
    assert len(trace) == 3 * 3 * 6 and trace[["mean", "sd"]].notna().all().all()


def test_same_seed_same_result_different_seed_differs(mar):
    a = sparkmice.mice(mar, m=2, maxit=2, seed=7).complete("long")
    b = sparkmice.mice(mar, m=2, maxit=2, seed=7).complete("long")
    c = sparkmice.mice(mar, m=2, maxit=2, seed=8).complete("long")
    pd.testing.assert_frame_equal(a, b)
    assert not a["bp"].equals(c["bp"])


def test_chains_subset_equals_full_run(mar):
    """Chain k does not depend on which other chains run (fan-out by --chains)."""
    full = sparkmice.mice(mar, m=3, maxit=2, seed=3).complete("long")
    two = sparkmice.mice(mar, m=3, maxit=2, seed=3, chains=[2]).complete("long")
    pd.testing.assert_frame_equal(
        full[full._imputation == 2].reset_index(drop=True), two.reset_index(drop=True)
    )


def test_methods_norm_sample_mean(mar):
    imp = sparkmice.mice(
        mar, m=1, maxit=2, method={"bp": "norm", "chol": "sample", "bmi": "mean", "diet": "sample"}
    )
    done = imp.complete(1)
    miss = mar["bmi"].isna()
    assert np.allclose(done.loc[miss, "bmi"], mar["bmi"].mean())
    assert set(done.loc[mar["chol"].isna(), "chol"]) <= set(mar["chol"].dropna())
    assert not set(done.loc[mar["bp"].isna(), "bp"]) <= set(mar["bp"].dropna())  # norm draws


def test_written_output_reads_back(mar, tmp_path):
    out = tmp_path / "imp"
    imp = sparkmice.mice(mar, m=2, maxit=2, seed=1, output=str(out))
    back = sparkmice.read_imputed(str(out))
    pd.testing.assert_frame_equal(back, imp.complete("long"), check_dtype=False)
    assert (out / "_sparkmice" / "config.json").exists()
    assert (out / "_sparkmice" / "trace.csv").exists()
    import pyarrow.dataset as ds

    # the documented pyarrow call
    table = ds.dataset(
        str(out),
        format="parquet",
        partitioning="hive",
        ignore_prefixes=sparkmice.io.parquet.IGNORE_PREFIXES,
    ).to_table()
    assert table.num_rows == 2 * len(mar)


def test_reference_workload_pooled_estimates_cover_truth():
    """gen_mar data, 20,000 rows, m = 10: every pooled coefficient of the true outcome model
    lies within 3 pooled SEs of its true value. For a correct imputer each |z| exceeds 3
    with probability 0.27%, so over six terms the test fails by chance about 1.6% of the
    time (fixed seed: it either always passes or always fails). Complete-case analysis of
    the same data is biased on age by about 3 of its SEs (missingness depends on age and y),
    which we require to be at least 2 SEs: MICE must remove a bias this test can see."""
    data = make_mar(20_000, seed=11)
    imp = sparkmice.mice(data, m=10, maxit=5, seed=2024)
    pooled = sparkmice.pool(
        sparkmice.fit_imputations(imp.complete("long"), FORMULA, family="binomial")
    )
    pooled = pooled.set_index("term")
    z = (pooled["estimate"] - pd.Series(TRUE_COEFFICIENTS)) / pooled["std_error"]
    assert set(z.index) == set(TRUE_COEFFICIENTS)
    assert (z.abs() < 3).all(), z
    cca = sparkmice.fit_complete_cases(data, FORMULA, family="binomial")
    row = cca.set_index("term").loc["age"]
    bias_in_se = (row["estimate"] - TRUE_COEFFICIENTS["age"]) / row["std_error"]
    assert abs(bias_in_se) > 2, bias_in_se
    assert abs(z["age"]) < abs(bias_in_se)


def test_short_run_is_not_judged_and_says_how_long_to_run(caplog):
    """nhanes with R mice's default maxit = 5: too few iterations for R-hat to tell
    converged chains from unconverged ones, so no warning but the maxit that can tell."""
    from sparkmice.datasets import load_nhanes

    with caplog.at_level("INFO", logger="sparkmice"):
        imp = sparkmice.mice(load_nhanes(), m=3, maxit=5, seed=1)
    assert imp.complete("long")["chl"].notna().all()
    table = imp.rhat()
    assert set(table["variable"]) == {"bmi", "hyp", "chl"}
    assert table["converged"].isna().all()
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("Too few iterations to judge convergence" in r.message and "maxit >= 60"
               in r.message for r in caplog.records)  # fmt: skip


def test_unconverged_run_finishes_and_says_so(caplog):
    """x1 and x2 (r = 0.99) missing together where z is high, started from the observed
    (low) values: their chains drift for ~100 iterations; at maxit = 44 the run completes
    and warns (benchmarks/convergence.py, case slowpair)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=300)
    x1 = 0.5 * z + rng.normal(0, np.sqrt(0.75), 300)
    x2 = x1 + rng.normal(0, np.sqrt(0.025), 300)
    missing = rng.random(300) < 1 / (1 + np.exp(-(3 * z - 1)))
    data = pd.DataFrame({"z": z, "x1": np.where(missing, np.nan, x1),
                         "x2": np.where(missing, np.nan, x2)})  # fmt: skip
    with caplog.at_level("INFO", logger="sparkmice"):
        imp = sparkmice.mice(data, m=5, maxit=44, seed=1)
    assert imp.rhat()["converged"].eq(False).any()
    warnings = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("Not converged (R-hat > 1.1): x1") for w in warnings), warnings
