"""R's complete() actions and where (sparkmice/io/imputed.py, sparkmice/where.py): the
original data as imputation 0, "long" with include, "all", "broad", "repeated", and the
imputed-cell indicator, from the run alone. In-process runs on R mice's nhanes (25 rows),
held in memory and read back from their folder; Spark runs: tests/engine/test_pipeline_cli.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice import where
from sparkmice.cli import main
from sparkmice.datasets import load_nhanes
from sparkmice.io.imputed import NoWhereError, read_where
from sparkmice.io.run import RunFolder
from sparkmice.names import IMPUTATION, ROW_ID

M = 3
FILLED = ["bmi", "hyp", "chl"]  # nhanes: age is complete


@pytest.fixture
def nhanes() -> pd.DataFrame:
    return load_nhanes()


@pytest.fixture
def runs(nhanes, tmp_path):
    """The same run held in memory, and read back from its folder only."""
    out = str(tmp_path / "run")
    imp = sparkmice.mice(nhanes, m=M, maxit=2, seed=7, row_blocks=3, output=out)
    stored = sparkmice.MiceResult(imp.plan, imp.engine, out, imp.trace, imp.logged_events,
                                  imp.timings)  # fmt: skip
    return {"memory": imp, "folder": stored}


@pytest.mark.parametrize("held", ["memory", "folder"])
def test_imputation_zero_is_the_original_data(runs, nhanes, held):
    original = runs[held].complete(0)
    assert list(original[ROW_ID]) == list(range(len(nhanes)))
    pd.testing.assert_frame_equal(original.drop(columns=[ROW_ID]), nhanes)


@pytest.mark.parametrize("held", ["memory", "folder"])
def test_where_is_the_input_missingness_of_the_filled_columns(runs, nhanes, held):
    where = runs[held].where()
    assert list(where.columns) == [ROW_ID, *FILLED]
    np.testing.assert_array_equal(where[FILLED].to_numpy(), nhanes[FILLED].isna().to_numpy())
    assert where[FILLED].dtypes.eq(bool).all()


@pytest.mark.parametrize("held", ["memory", "folder"])
def test_long_with_include_stacks_the_original_first(runs, nhanes, held):
    imp = runs[held]
    long = imp.complete("long", include=True)
    assert list(long[IMPUTATION].unique()) == list(range(M + 1))
    pd.testing.assert_frame_equal(
        long[long[IMPUTATION] == 0].drop(columns=[IMPUTATION, ROW_ID]).reset_index(drop=True),
        nhanes,
    )
    rest = long[long[IMPUTATION] > 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, imp.complete("long"), check_dtype=False)
    assert list(imp.complete("long").columns) == [*nhanes.columns, ROW_ID, IMPUTATION]


@pytest.mark.parametrize("held", ["memory", "folder"])
def test_all_is_a_list_of_frames_with_the_original_at_index_zero(runs, held):
    imp = runs[held]
    frames = imp.complete("all", include=True)
    assert len(frames) == M + 1
    pd.testing.assert_frame_equal(frames[0], imp.complete(0))
    for k in range(1, M + 1):
        pd.testing.assert_frame_equal(frames[k], imp.complete(k))
    assert len(imp.complete("all")) == M
    pd.testing.assert_frame_equal(imp.complete("all")[0], imp.complete(1))


def test_broad_and_repeated_are_r_mices_column_orders(runs, nhanes):
    imp = runs["memory"]
    names = list(nhanes.columns)
    broad = imp.complete("broad")
    assert list(broad.columns) == [ROW_ID] + [f"{c}.{k}" for k in range(1, M + 1) for c in names]
    repeated = imp.complete("repeated", include=True)
    assert list(repeated.columns) == [ROW_ID] + [f"{c}.{k}" for c in names for k in range(M + 1)]
    for k in range(1, M + 1):
        done = imp.complete(k)
        for c in names:
            np.testing.assert_array_equal(broad[f"{c}.{k}"], done[c])
            np.testing.assert_array_equal(repeated[f"{c}.{k}"], done[c])
    np.testing.assert_array_equal(repeated["chl.0"], nhanes["chl"])
    assert len(broad) == len(nhanes)


@pytest.mark.parametrize("held", ["memory", "folder"])
def test_the_indicator_marks_exactly_the_imputed_cells(runs, nhanes, held):
    imp = runs[held]
    long = imp.complete("long", indicator=True)
    missing = pd.concat([nhanes.isna()] * M, ignore_index=True)
    for c in FILLED:
        np.testing.assert_array_equal(long[f"{c}_imputed"], missing[c])
    assert "age_imputed" not in long
    # observed vs imputed needs nothing but the run: the observed values are the input's
    observed = long.loc[~long["chl_imputed"], "chl"].to_numpy()
    np.testing.assert_array_equal(observed, np.tile(nhanes["chl"].dropna().to_numpy(), M))
    assert long.loc[long["chl_imputed"], "chl"].notna().all()
    one = imp.complete(2, indicator=True)
    np.testing.assert_array_equal(one["bmi_imputed"], nhanes["bmi"].isna())
    broad = imp.complete("broad", indicator=True)  # the indicator once, not per imputation
    assert [c for c in broad.columns if c.endswith("_imputed")] == [f"{c}_imputed" for c in FILLED]


def test_an_indicator_name_taken_by_the_data_is_refused(nhanes):
    imp = sparkmice.mice(nhanes.assign(bmi_imputed=1.0), m=1, maxit=1)
    with pytest.raises(ValueError, match=r"already have column\(s\) \['bmi_imputed'\], the names"):
        imp.complete(1, indicator=True)
    assert list(imp.where().columns) == [ROW_ID, *FILLED]  # where() still works


def test_bad_actions_get_one_clear_message(runs):
    imp = runs["memory"]
    with pytest.raises(ValueError, match=r"action must be an imputation in 1..3, 0 \(the orig"):
        imp.complete(4)
    with pytest.raises(ValueError, match=r"action must be .* got 'wide'"):
        imp.complete("wide")
    with pytest.raises(ValueError, match=r"include applies to the actions 'long', 'all'"):
        imp.complete(1, include=True)


def test_passive_columns_with_missing_cells_are_in_where(nhanes):
    d = nhanes.assign(chl2=nhanes["chl"] * 2)
    imp = sparkmice.mice(d, m=1, maxit=1, passive={"chl2": "chl * 2"})
    assert list(imp.where().columns) == [ROW_ID, *FILLED, "chl2"]
    pd.testing.assert_frame_equal(imp.complete(0).drop(columns=[ROW_ID]), d)


def test_chains_of_a_fan_out_record_the_same_cells_once(nhanes, tmp_path):
    out = str(tmp_path / "fan")
    for k in (2, 1):
        sparkmice.mice(nhanes, m=2, maxit=1, row_blocks=3, chains=[k], output=out)
    files = sorted(p.name for p in (tmp_path / "fan" / "_sparkmice" / "where").iterdir())
    assert files == ["block_0.parquet", "block_1.parquet", "block_2.parquet"]
    stored = sparkmice.MiceResult(
        sparkmice.mice(nhanes, m=2, maxit=1, row_blocks=3).plan, "inprocess", out,
        pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
    )  # fmt: skip
    pd.testing.assert_frame_equal(stored.complete(0).drop(columns=[ROW_ID]), nhanes)


def test_a_run_without_its_record_says_what_to_do(runs, tmp_path):
    folder = runs["folder"]
    RunFolder(folder.output).fs.delete_dir(f"{folder.output}/_sparkmice/where")
    with pytest.raises(NoWhereError, match=r"holds no record of which cells were imputed .*give"):
        folder.complete(0)
    # a record that does not add up to config.json's missing counts is refused too
    runs["memory"].write(str(tmp_path / "copy"))
    copy = RunFolder(str(tmp_path / "copy"))
    config = copy.read_config()
    config["variables"][1]["n_missing"] += 1
    copy.write_config(config)
    stored = sparkmice.MiceResult(folder.plan, "inprocess", copy.root, folder.trace,
                                  folder.logged_events, folder.timings)  # fmt: skip
    with pytest.raises(NoWhereError, match=r"does not match config.json for column\(s\) \['bmi'\]"):
        stored.where()


def test_write_copies_the_record(runs, nhanes, tmp_path):
    copy = runs["memory"].write(str(tmp_path / "copy"))
    stored = sparkmice.MiceResult(runs["memory"].plan, "inprocess", copy, pd.DataFrame(),
                                  pd.DataFrame(), pd.DataFrame())  # fmt: skip
    pd.testing.assert_frame_equal(stored.complete(0).drop(columns=[ROW_ID]), nhanes)


def test_the_command_writes_each_shape(runs, tmp_path, capsys):
    imp, out = runs["memory"], runs["memory"].output
    path = str(tmp_path / "long.parquet")
    argv = ["complete", "--imputed", out, "--output", path]
    assert main([*argv, "--action", "long", "--include", "--indicator"]) == 0
    want = imp.complete("long", include=True, indicator=True)
    pd.testing.assert_frame_equal(pd.read_parquet(path), want)
    broad = str(tmp_path / "broad.csv")
    assert main(["complete", "--imputed", out, "--output", broad, "--action", "broad"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(broad), imp.complete("broad"), check_dtype=False)
    folder = tmp_path / "all"
    argv = ["complete", "--imputed", out, "--output", str(folder), "--action", "all"]
    assert main([*argv, "--include"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        f"imputation_{k}.parquet" for k in range(M + 1)
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "imputation_0.parquet"), imp.complete(0))
    capsys.readouterr()
    assert main(["complete", "--imputed", out, "--output", path]) == 2  # exists already
    err = capsys.readouterr().err.strip().splitlines()
    message = f"--output {path} exists already; choose another path."
    assert err == [f"sparkmice complete: error: {message}"]
    with pytest.raises(SystemExit):
        main(["complete", "--imputed", out, "--output", str(tmp_path / "x"), "--action", "wide"])
    assert "--action must be an imputation number" in capsys.readouterr().err


def test_the_command_on_a_folder_without_a_run_is_one_line(tmp_path, capsys):
    argv = ["complete", "--imputed", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparkmice complete: error: ")
    assert "is not the output of a sparkmice run" in err[0]


def test_the_record_held_in_memory_equals_the_one_the_blocks_write(tmp_path):
    d = pd.DataFrame({
        "x": [1.0, np.nan, 3, 4, 5, 6, 7, 8, 9, 10],
        "s": ["a", None, "b", "a", None, "b", "a", "b", "c", "c"],
        "n": pd.array([1, 2, None, 4, 5, 6, 7, 8, None, 10], dtype="Int64"),
        "full": np.arange(10.0),
    })  # fmt: skip
    out = str(tmp_path / "run")
    imp = sparkmice.mice(d, m=1, maxit=1, row_blocks=3, output=out)
    written = read_where(RunFolder(out))
    assert written.column_names == [ROW_ID, "x", "s", "n"]
    assert where.table_of_input(imp.input_table, imp.plan).equals(written)
    np.testing.assert_array_equal(imp.where()[["x", "s", "n"]], d[["x", "s", "n"]].isna())
    assert written.column(ROW_ID).to_pylist() == [1, 2, 4, 8]  # rows with a missing cell


def test_a_pandas_inputs_own_index_labels_every_shape(nhanes):
    """A frame indexed by its own labels (shuffled, named) gets them back on every row of
    every shape, as R's complete() keeps row names; each label's observed cells are its
    input cells. An input with the default index 0, 1, ... keeps giving 0, 1, ..."""
    labels = pd.Index([f"p{i:02d}" for i in range(len(nhanes))], name="patient")
    labelled = nhanes.set_axis(labels).sample(frac=1.0, random_state=3)
    imp = sparkmice.mice(labelled, m=2, maxit=1, seed=7)
    one = imp.complete(1)
    assert one.index.equals(labelled.index) and one.index.name == "patient"
    seen = labelled["chl"].notna()
    assert one.loc[seen, "chl"].equals(labelled.loc[seen, "chl"])
    repeated = labelled.index.append(labelled.index)
    assert imp.complete("long").index.equals(repeated)
    assert imp.complete("long", include=True).index.equals(labelled.index.append(repeated))
    assert all(f.index.equals(labelled.index) for f in imp.complete("all", include=True))
    for shape in ("broad", "repeated"):
        assert imp.complete(shape).index.equals(labelled.index)
    assert imp.complete(1, indicator=True).index.equals(labelled.index)
    plain = sparkmice.mice(nhanes, m=1, maxit=1, seed=7).complete(1)
    assert plain.index.equals(pd.RangeIndex(len(nhanes)))
