"""New rows imputed with a run's final models (sparkmice.newdata, `impute-new`): the API and
the command line in-process, the models kept by a Spark run, bad new data, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import make_mar
from sparkmice.engines import wire
from sparkmice.io.run import RunFolder, read_imputed
from sparkmice.kernels.contract import ObservedPool
from sparkmice.models import Donors, bounded_pool, chain_from_bytes
from sparkmice.names import IMPUTATION, ROW_ID
from sparkmice.plan import InputError

IMPUTED = ["bp", "chol", "bmi", "lact", "smoke", "diet"]


@pytest.fixture(scope="module")
def rows():
    data = make_mar(500, seed=3)
    return data.iloc[:400].reset_index(drop=True), data.iloc[400:].reset_index(drop=True)


@pytest.fixture(scope="module")
def run(rows, tmp_path_factory):
    old, _ = rows
    out = tmp_path_factory.mktemp("run") / "run"
    return sparkmice.mice(old, m=3, maxit=2, seed=5, output=str(out))


def test_new_rows_imputed_observed_kept(run, rows):
    _, new = rows
    long = run.impute_new(new).complete("long")
    assert sorted(long[IMPUTATION].unique()) == [1, 2, 3]
    assert long[IMPUTED].notna().all().all()
    for k in (1, 2, 3):
        done = long[long[IMPUTATION] == k].sort_values(ROW_ID).reset_index(drop=True)
        assert list(done[ROW_ID]) == list(range(len(new)))
        observed = new.notna()
        for c in new.columns:  # observed cells never change
            pd.testing.assert_series_equal(
                done.loc[observed[c], c], new.loc[observed[c], c], check_names=False
            )
    # pmm imputes observed values of the run's rows (its donors), never new rows' own
    old_bp = set(run.complete(1)["bp"]) | set(rows[0]["bp"].dropna())
    imputed_bp = long.loc[np.tile(new["bp"].isna().to_numpy(), 3), "bp"]
    assert set(imputed_bp) <= old_bp


def test_same_seed_same_imputations_other_seed_others(run, rows):
    _, new = rows
    a = run.impute_new(new).complete("long")
    b = sparkmice.impute_new(run.output, new).complete("long")
    c = run.impute_new(new, seed=99).complete("long")
    pd.testing.assert_frame_equal(a, b)  # same machine: bitwise
    assert not a[IMPUTED].equals(c[IMPUTED])


def test_models_are_the_last_draw_and_typed(run):
    folder = RunFolder(run.output)
    names = folder.model_chains()
    assert sorted(names) == [1, 2, 3]
    steps = chain_from_bytes(folder.read_chain_model(names[1]))  # np.load without pickle
    bp = run.plan.index["bp"]
    assert steps[bp].method == "pmm"
    assert 0 < len(steps[bp].donors.y) <= 1000
    assert steps[bp].donors.x.shape == (len(steps[bp].donors.y), len(steps[bp].cols))
    # the model's donors' predicted values are finite, and the chains drew differently
    other = chain_from_bytes(folder.read_chain_model(names[2]))
    assert np.isfinite(steps[bp].donors.x @ steps[bp].params.coef).all()
    assert not np.array_equal(steps[bp].params.beta, other[bp].params.beta)


def test_written_as_a_run_folder_and_rerun_replaces_models(run, rows, tmp_path):
    _, new = rows
    out = tmp_path / "new"
    run.impute_new(new, output=str(out))
    assert len(read_imputed(str(out))) == 3 * len(new)
    with pytest.raises(sparkmice.OutputExistsError):
        run.impute_new(new, output=str(out))


def test_a_written_result_still_imputes_new_rows(run, rows, tmp_path):
    """write() copies the chains' final models: the copy imputes new rows as the run does,
    and stays independent of the run's folder (its own model files)."""
    _, new = rows
    copy = run.write(str(tmp_path / "copy"))
    assert sorted(RunFolder(copy).model_chains()) == [1, 2, 3]
    pd.testing.assert_frame_equal(
        sparkmice.impute_new(copy, new).complete("long"), run.impute_new(new).complete("long")
    )
    names = set(RunFolder(copy).model_chains().values())
    assert not names & set(RunFolder(run.output).model_chains().values())


def test_rerun_chain_deletes_its_old_model(rows, tmp_path):
    old, _ = rows
    out = str(tmp_path / "run")
    sparkmice.mice(old, m=1, maxit=1, seed=1, output=out)
    first = RunFolder(out).model_chains()[1]
    sparkmice.mice(old, m=1, maxit=1, seed=1, output=out, chains=[1])
    second = RunFolder(out).model_chains()[1]
    assert first != second
    files = {p.name for p in (tmp_path / "run" / "_sparkmice" / "model").iterdir()}
    assert second in files and first not in files


def test_bad_new_data_named(run, rows):
    _, new = rows
    with pytest.raises(InputError, match="'chol'"):
        run.impute_new(new.drop(columns=["chol"]))
    with pytest.raises(InputError, match="'extra'"):
        run.impute_new(new.assign(extra=1.0))
    with pytest.raises(InputError, match="'diet'.*not among the run's levels"):
        run.impute_new(new.assign(diet="unheard-of"))
    with pytest.raises(InputError, match="'region'.*type"):
        run.impute_new(new.assign(region=1.0))


def test_in_memory_run_has_no_models(rows):
    old, new = rows
    result = sparkmice.mice(old, m=1, maxit=1)
    with pytest.raises(ValueError, match="output=DIR"):
        result.impute_new(new)


def test_cli(run, rows, tmp_path, capsys):
    _, new = rows
    source = tmp_path / "new.parquet"
    new.to_parquet(source)
    out = tmp_path / "out"
    code = main(["impute-new", "--model", run.output, "--input", str(source), "--output", str(out)])
    assert code == 0
    via_cli = read_imputed(str(out)).drop(columns=[])
    via_api = run.impute_new(new).complete("long")
    pd.testing.assert_frame_equal(
        via_cli[via_api.columns].reset_index(drop=True), via_api, check_dtype=False
    )
    code = main(["impute-new", "--model", str(tmp_path / "nothing"), "--input", str(source),
                 "--output", str(tmp_path / "o2")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds no models" in err[0]


@pytest.mark.parametrize("engine", ["barrier", "perstep"])
def test_spark_run_keeps_models(spark, rows, tmp_path, engine):
    """A Spark run writes the models from the task that reports (barrier: an executor's rank
    0; per-step: the driver): they impute the same way as an in-process run's of the same
    seed and blocks."""
    old, new = rows
    df = spark.createDataFrame(old)
    spark_run = sparkmice.mice(  # two tasks per chain: the donors cross the exchange
        df, m=2, maxit=2, seed=5, output=str(tmp_path / "s"), row_blocks=2, engine=engine,
        rows_per_task=250,
    )  # fmt: skip
    assert spark_run.engine == engine
    local = sparkmice.mice(old, m=2, maxit=2, seed=5, output=str(tmp_path / "l"), row_blocks=2)
    a = spark_run.impute_new(new).complete("long")
    b = local.impute_new(new).complete("long")
    assert sorted(RunFolder(spark_run.output).model_chains()) == [1, 2]
    pd.testing.assert_frame_equal(a, b)


def test_donor_samples_merge_to_the_sample_of_all_rows_in_any_order():
    rng = np.random.default_rng(0)
    x, y, keys = rng.normal(size=(300, 2)), rng.normal(size=300), rng.random(300)
    parts = [Donors(x[a:b], y[a:b], keys[a:b]) for a, b in ((0, 90), (90, 200), (200, 300))]
    whole = Donors(x, y, keys).merge(Donors(x[:0], y[:0], keys[:0]), size=50)
    forward = parts[0].merge(parts[1], size=50).merge(parts[2], size=50)
    backward = parts[2].merge(parts[1], size=50).merge(parts[0], size=50)
    for merged in (forward, backward):
        np.testing.assert_array_equal(merged.y, whole.y)
        np.testing.assert_array_equal(merged.x, whole.x)
    np.testing.assert_array_equal(np.sort(whole.keys), np.sort(keys)[:50])


def test_donors_cross_the_barrier_exchange_bitwise():
    rng = np.random.default_rng(2)
    donors = Donors(np.asfortranarray(rng.normal(size=(7, 3))), rng.normal(size=7), rng.random(7))
    back = wire.decode(wire.encode(donors))
    assert type(back) is Donors
    for name in ("x", "y", "keys"):
        np.testing.assert_array_equal(getattr(back, name), getattr(donors, name))


def test_kept_pool_is_bounded_and_keeps_the_weight():
    pool = ObservedPool(np.arange(5000.0), np.full(5000, 3.0))
    kept = bounded_pool(pool, 1000, np.random.default_rng(1))
    assert len(kept.values) == 1000 and kept.weights.sum() == pytest.approx(15000.0)
    assert set(kept.values) <= set(pool.values)
    small = ObservedPool(np.arange(10.0), np.ones(10))
    assert bounded_pool(small, 1000, np.random.default_rng(1)) is small


def test_no_new_rows_give_an_empty_table(run, rows, tmp_path):
    _, new = rows
    result = run.impute_new(new.iloc[:0], output=str(tmp_path / "empty"))
    assert len(result.complete("long")) == 0
    assert RunFolder(str(tmp_path / "empty")).chains() == [1, 2, 3]


def test_run_with_tree_methods_is_refused_in_one_line(rows, tmp_path):
    """A tree's bins are cut on the run's data and not kept: impute-new names the columns."""
    old, new = rows
    run = sparkmice.mice(old, m=1, maxit=1, seed=5, output=str(tmp_path / "t"),
                         method={"bp": "cart", "chol": "rf"})  # fmt: skip
    with pytest.raises(InputError, match=r"tree methods \(cart, rf: \['bp', 'chol'\]\)"):
        run.impute_new(new)
