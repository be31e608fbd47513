"""Config `ignore` (R's: rows imputed but not fitted on) and `where` (cells imputed beyond
the missing ones, R's where matrix), in-process and through a run folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.datasets import make_mar
from sparkmice.names import IMPUTATION
from sparkmice.plan import InputError

IMPUTED = ["bp", "chol", "bmi", "lact", "smoke", "diet"]


@pytest.fixture(scope="module")
def data():
    df = make_mar(400, seed=3)
    df["test"] = np.arange(len(df)) >= 300  # the last 100 rows: a test set
    df["bp_where"] = df["bp"].notna() & (np.arange(len(df)) % 10 == 0)
    return df


def _perturb_complete_test_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The ignored rows that are complete, with other observed values: no model, pool or
    donor may see them (they are in no design either: nothing of them is imputed)."""
    complete = (df["test"] & df[IMPUTED].notna().all(axis=1)).to_numpy()
    other = df.copy()
    other.loc[complete, ["bp", "chol", "bmi", "lact"]] *= 1.7
    return other, complete


def _imputations(df: pd.DataFrame, **options) -> pd.DataFrame:
    return sparkmice.mice(df, m=2, maxit=2, seed=4, **options).complete("long")


def test_ignored_rows_are_not_fitted_on(data):
    other, complete = _perturb_complete_test_rows(data)
    assert complete.sum() >= 5
    keep = np.tile(~complete, 2)
    a = _imputations(data, ignore="test")
    b = _imputations(other, ignore="test")
    pd.testing.assert_frame_equal(a[keep].reset_index(drop=True), b[keep].reset_index(drop=True))
    # without ignore the same change reaches other rows' imputations (the test can fail)
    c = _imputations(data)
    d = _imputations(other)
    assert not c[keep].reset_index(drop=True).equals(d[keep].reset_index(drop=True))


def test_ignored_rows_are_imputed_and_carried(data):
    long = _imputations(data, ignore="test")
    assert long[IMPUTED].notna().all().all()
    assert list(long["test"]) == list(data["test"]) * 2  # the mask column carried through
    assert "test" not in sparkmice.mice(data, m=1, maxit=1, ignore="test").predictor_matrix


def test_where_imputes_marked_cells_only(data):
    long = _imputations(data, where={"bp": "bp_where"})
    marked = data["bp_where"].to_numpy()
    for k in (1, 2):
        done = long[long[IMPUTATION] == k].reset_index(drop=True)
        kept = data["bp"].notna().to_numpy() & ~marked
        assert (done.loc[kept, "bp"] == data.loc[kept, "bp"]).all()  # observed stay
        assert done["bp"].notna().all()
        # marked observed cells hold imputations: pmm draws another row's value
        assert (done.loc[marked, "bp"] != data.loc[marked, "bp"]).mean() > 0.9
        assert list(done["bp_where"]) == list(data["bp_where"])  # the output marks them
        for c in ("chol", "bmi", "lact"):  # other variables' observed cells untouched
            obs = data[c].notna()
            assert (done.loc[obs, c] == data.loc[obs, c]).all()


def test_where_on_a_complete_variable_visits_it(data):
    df = data.assign(crp_where=np.arange(len(data)) % 7 == 0)
    result = sparkmice.mice(df, m=1, maxit=1, seed=2, where={"crp": "crp_where"})
    assert result.method["crp"] == "pmm" and "crp" in result.visit_sequence
    done = result.complete(1)
    marked = df["crp_where"].to_numpy()
    assert (done.loc[~marked, "crp"] == df.loc[~marked, "crp"]).all()
    assert (done.loc[marked, "crp"] != df.loc[marked, "crp"]).mean() > 0.9


def test_same_seed_same_imputations(data):
    a = _imputations(data, ignore="test", where={"bp": "bp_where"})
    b = _imputations(data, ignore="test", where={"bp": "bp_where"})
    pd.testing.assert_frame_equal(a, b)


def test_masks_must_be_boolean_columns(data):
    with pytest.raises(InputError, match="column 'flag' \\(ignore\\) has type int64"):
        sparkmice.mice(data.assign(flag=1), m=1, maxit=1, ignore="flag")
    with pytest.raises(InputError, match="column 'w' \\(where for 'bp'\\) has type double"):
        sparkmice.mice(data.assign(w=0.0), m=1, maxit=1, where={"bp": "w"})
    with pytest.raises(sparkmice.ConfigError, match="where names column 'nope'"):
        sparkmice.mice(data, m=1, maxit=1, where={"bp": "nope"})


def test_resume_with_where_is_one_clear_line(data, tmp_path):
    out = str(tmp_path / "r")
    sparkmice.mice(data, m=1, maxit=1, output=out, where={"bp": "bp_where"})
    with pytest.raises(sparkmice.ConfigError, match="resume is not built for a run with `where`"):
        sparkmice.mice(data, m=1, maxit=2, output=out, resume=True, where={"bp": "bp_where"})


def test_new_rows_of_a_run_with_where(data, tmp_path):
    df = data.drop(columns=["test"]).assign(diet_where=np.arange(len(data)) % 9 == 0)
    old, new = df.iloc[:300], df.iloc[300:].reset_index(drop=True)
    run = sparkmice.mice(old, m=1, maxit=2, seed=1, output=str(tmp_path / "r"),
                         where={"bp": "bp_where", "diet": "diet_where"})  # fmt: skip
    done = run.impute_new(new).complete(1)
    marked = new["bp_where"].to_numpy()
    assert done[["bp", "diet"]].notna().all().all()
    assert (done.loc[marked, "bp"] != new.loc[marked, "bp"]).mean() > 0.9
    kept = new["diet"].notna().to_numpy() & ~new["diet_where"].to_numpy()
    assert (done.loc[kept, "diet"] == new.loc[kept, "diet"]).all()


@pytest.mark.parametrize("ignore", ["test", "test or age > 70"])
def test_spark_equals_in_process(spark, data, ignore):
    """The masks travel with the rows into Spark's tasks (a predicate is evaluated on each
    block's rows there): the same imputations as in-process for the same seed and blocks."""
    options = dict(m=2, maxit=2, seed=4, row_blocks=2, ignore=ignore, where={"bp": "bp_where"})
    options["rows_per_task"] = 250  # two tasks per chain (the exchange), not one
    local = sparkmice.mice(data, **options).complete("long")
    on_spark = sparkmice.mice(spark.createDataFrame(data), **options).complete("long").toPandas()
    on_spark = on_spark.sort_values([IMPUTATION, "_row_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(on_spark[local.columns], local, check_dtype=False)


def test_where_cells_are_in_the_record_of_imputed_cells(data, tmp_path):
    """R's where (imp.where()) marks `where`'s cells as imputed, in memory and from the run
    folder (whose count check adds the observed cells `where` marked); the original data
    cannot be rebuilt (those observed values were replaced), so complete(0) says so."""
    from sparkmice.io.imputed import of_folder, read_where
    from sparkmice.io.run import RunFolder

    out = str(tmp_path / "r")
    result = sparkmice.mice(data, m=1, maxit=1, seed=2, output=out, row_blocks=2,
                            where={"bp": "bp_where"})  # fmt: skip
    expected = (data["bp"].isna() | data["bp_where"]).to_numpy()
    assert data["bp_where"].sum() > 0 and (data["bp_where"] & data["bp"].notna()).any()
    run = RunFolder(out)
    assert read_where(run).num_rows > 0  # the count check passed
    for completed in (result._completed(), of_folder(run)):
        marks = completed.where()
        assert (marks["bp"].to_numpy() == expected).all()
        chol = marks["chol"].to_numpy()
        assert (chol == data["chol"].isna().to_numpy()).all()  # other columns: missing only
        with pytest.raises(ValueError, match=r"complete 0\) are not in a run with config `where`"):
            completed.complete(0)
        assert completed.complete(1)["bp"].notna().all()
    from sparkmice.diagnostics.report import _where_of

    assert _where_of(run, None) is None  # the report does not rebuild this run's input
    sparkmice.mice(data, m=1, maxit=1, seed=2, output=out, overwrite=True)
    assert _where_of(run, None) is not None  # (it does for a run without `where`)


def test_where_record_count_check_can_fail(data, tmp_path):
    """The record's observed counts are checked: a record without them does not add up."""
    import pyarrow.parquet as pq

    from sparkmice.io.imputed import NoWhereError, read_where
    from sparkmice.io.run import RunFolder

    out = str(tmp_path / "r")
    sparkmice.mice(data, m=1, maxit=1, seed=2, output=out, where={"bp": "bp_where"})
    run = RunFolder(out)
    folder = tmp_path / "r" / "_sparkmice" / "where"
    for path in folder.glob("*.parquet"):
        pq.write_table(pq.read_table(path).replace_schema_metadata(None), path)
    with pytest.raises(NoWhereError, match=r"does not match config.json for column\(s\) \['bp'\]"):
        read_where(run)


JANUARY = pd.Timestamp("2026-01-01").date()


def _with_visits(data: pd.DataFrame) -> pd.DataFrame:
    """A date and a train/test column, for predicates as users write them."""
    days = pd.to_datetime("2025-12-01") + pd.to_timedelta(np.arange(len(data)) % 60, "D")
    split = np.where(np.arange(len(data)) % 4 == 0, "test", "train")
    return data.drop(columns=["test", "bp_where"]).assign(visit_date=days.date, split=split)


@pytest.mark.parametrize(
    ("predicate", "flag"),
    [
        ("visit_date >= '2026-01-01'", lambda d: d["visit_date"] >= JANUARY),
        ("split == 'test'", lambda d: d["split"] == "test"),
        # a missing bp makes its comparison unknown: `or` with a true side is true, else false
        ("not (age < 60) or bp > 130 and `split` != 'train'",
         lambda d: (d["age"] >= 60) | ((d["bp"] > 130).fillna(False) & (d["split"] != "train"))),
    ],
)  # fmt: skip
def test_ignore_predicate_equals_its_boolean_column(data, predicate, flag):
    df = _with_visits(data)
    mask = flag(df).to_numpy(dtype=bool)
    assert 0 < mask.sum() < len(df)
    a = _imputations(df, ignore=predicate)
    b = _imputations(df.assign(flag=mask), ignore="flag")
    pd.testing.assert_frame_equal(a, b[a.columns])
    # the predicate matters (the test can fail): without it other imputations come out
    assert not a.equals(_imputations(df)[a.columns])


def test_ignore_bare_column_name_with_spaces_or_underscores_still_works(data):
    """Before `ignore` took predicates it named a boolean column, any name allowed: a text
    without operators, quotes or parentheses still does."""
    base = _imputations(data, ignore="test").drop(columns=["test"])
    assert not base.equals(_imputations(data).drop(columns=["test"]))  # ignore matters here
    for name in ("test set", "__test"):
        renamed = data.rename(columns={"test": name})
        got = _imputations(renamed, ignore=name).drop(columns=[name])
        pd.testing.assert_frame_equal(got, base)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "open('/etc/passwd') == 1",
        "age.__class__ == 1",
        "(lambda: 1)() == 1",
        "age + 1 > 60",
        "age[0] == 1",
        "age in (1, 2)",
        "age is None",
        "exec('x') or age > 1",
        "`age` > 1; import os",
    ],
)
def test_ignore_predicate_refuses_anything_but_its_grammar(data, text):
    with pytest.raises(
        sparkmice.ConfigError,
        match=r"The 'ignore' option .* (is not allowed|does not parse); write comparisons",
    ):
        sparkmice.mice(_with_visits(data), m=1, maxit=1, ignore=text)


def test_ignore_predicate_bad_column_or_type_is_one_line_before_any_job(data):
    df = _with_visits(data)
    with pytest.raises(
        sparkmice.ConfigError, match=r"^ignore names column 'visit', which is not in the input"
    ):
        sparkmice.mice(df, m=1, maxit=1, ignore="visit >= '2026-01-01'")
    with pytest.raises(
        InputError,
        match=r"^ignore \"visit_date >= 'soon'\" does not fit the columns' types: .*'soon'",
    ):
        sparkmice.mice(df, m=1, maxit=1, ignore="visit_date >= 'soon'")
