"""cart and rf through the engines: the invariants of every imputation, the same result
for the same seed and blocks in-process, and on local Spark's barrier engine (a chain on two
tasks, sums over TCP) the in-process result exactly; a passive derived predictor binned
from the rows whose inputs are observed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_inprocess import assert_invariants

import sparkmice
from sparkmice.datasets import make_mar

NUMERIC = ["bp", "chol", "bmi", "lact"]
TREES = {"bp": "cart", "chol": "rf", "bmi": "cart", "lact": "rf", "smoke": "cart", "diet": "rf"}


@pytest.fixture(scope="module")
def mar() -> pd.DataFrame:
    return make_mar(900, seed=2)


@pytest.fixture(scope="module")
def reference(mar) -> pd.DataFrame:
    return sparkmice.mice(mar, m=2, maxit=2, seed=4, row_blocks=3, method=TREES).complete("long")


def test_trees_keep_every_invariant_and_draw_observed_values(mar, reference):
    assert_invariants(mar, reference, 2, pmm=NUMERIC)
    for k in (1, 2):
        done = reference[reference["_imputation"] == k]
        assert set(done["smoke"]) <= {0.0, 1.0}
        assert set(done["diet"]) <= set(mar["diet"].dropna())


def test_same_seed_and_blocks_give_the_same_imputations(mar, reference):
    again = sparkmice.mice(mar, m=2, maxit=2, seed=4, row_blocks=3, method=TREES).complete("long")
    pd.testing.assert_frame_equal(again, reference)
    other = sparkmice.mice(mar, m=2, maxit=2, seed=5, row_blocks=3, method=TREES).complete("long")
    assert not other[NUMERIC].equals(reference[NUMERIC])


def test_one_block_or_five_both_give_valid_imputations(mar):
    for blocks in (1, 5):
        long = sparkmice.mice(mar, m=1, maxit=2, seed=4, row_blocks=blocks, method=TREES)
        assert_invariants(mar, long.complete("long"), 1, pmm=NUMERIC)


def test_a_derived_predictor_is_binned_from_rows_with_observed_inputs(mar):
    imp = sparkmice.mice(
        mar, m=1, maxit=2, seed=1, method={"chol": "cart"}, passive={"bp2": "bp * bp"}
    )
    assert "bp2" in imp.predictor_matrix.columns
    assert_invariants(mar, imp.complete("long"), 1, pmm=["chol"])


def test_cart_options_change_the_trees(mar):
    base = dict(m=1, maxit=1, seed=3, method={"bp": "cart"})
    a = sparkmice.mice(mar, **base).complete(1)["bp"]
    b = sparkmice.mice(mar, minbucket=40, **base).complete(1)["bp"]
    assert not a.equals(b)


def test_barrier_engine_gives_the_in_process_trees(spark, mar, tmp_path):
    path = tmp_path / "mar.parquet"
    mar.to_parquet(path, index=False)
    out = tmp_path / "imputed"
    options = dict(m=1, maxit=1, seed=4, row_blocks=3, method=TREES)
    imp = sparkmice.mice(
        spark.read.parquet(str(path)), engine="barrier", concurrency=1, output=str(out),
        **options,
    )  # fmt: skip
    assert imp.engine == "barrier"
    long = sparkmice.read_imputed(str(out))
    in_process = sparkmice.mice(mar, **options).complete("long")
    pd.testing.assert_frame_equal(long, in_process, check_dtype=False)
    assert np.isfinite(long[NUMERIC].to_numpy()).all()
