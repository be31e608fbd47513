"""The Spark engines on local Spark: same imputations as in-process for the same seed and
blocks (barrier and per-step alike, whatever the concurrency), the invariants of every
imputation, the command line, fan-out by --chains, CSV input, Delta output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_inprocess import assert_invariants

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import make_mar

PMM = ["bp", "chol", "bmi", "lact"]


@pytest.fixture(scope="module")
def mar(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    data = make_mar(1500, seed=3)
    path = tmp_path_factory.mktemp("input") / "mar.parquet"
    data.to_parquet(path, index=False)
    return data, str(path)


@pytest.fixture(scope="module")
def reference(mar) -> pd.DataFrame:
    """In-process result; Parquet row ids are file positions, as pandas' are."""
    return sparkmice.mice(mar[0], m=2, maxit=2, seed=9, row_blocks=3).complete("long")


def run_spark(spark, mar, tmp_path, **options) -> tuple[sparkmice.MiceResult, pd.DataFrame]:
    out = tmp_path / "imputed"
    imp = sparkmice.mice(
        spark.read.parquet(mar[1]), m=2, maxit=2, seed=9, row_blocks=3, output=str(out), **options
    )
    return imp, sparkmice.read_imputed(str(out))


@pytest.mark.parametrize(
    "options",
    [
        {"engine": "barrier", "concurrency": 1},
        {"engine": "barrier", "concurrency": 2},
        {"engine": "perstep"},
    ],
    ids=["barrier", "barrier-concurrent", "perstep"],
)
def test_spark_equals_inprocess(spark, mar, reference, tmp_path, options):
    imp, long = run_spark(spark, mar, tmp_path, **options)
    assert imp.engine == options["engine"]
    pd.testing.assert_frame_equal(long, reference, check_dtype=False)
    assert_invariants(mar[0], long, 2, pmm=PMM)
    assert len(imp.trace) == 2 * 2 * 6
    timings = imp.timings
    pairs = sorted(zip(timings.chain, timings.iteration, strict=True))
    assert pairs == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_default_layout_equals_inprocess(spark, mar, tmp_path):
    """m = 3 on 2 slots: chains 1 and 2 run as one task each, at once, and chain 3 as a
    two-task barrier job; all three equal the in-process chains."""
    from sparkmice.config import MiceConfig
    from sparkmice.engines.spark import layout_chains

    layout = layout_chains(MiceConfig(m=3), 1500, 3, 2, [1, 2, 3], "barrier")
    assert (layout.solo, layout.spread, layout.partitions) == ((1, 2), (3,), 2)
    out = tmp_path / "imputed"
    sparkmice.mice(spark.read.parquet(mar[1]), m=3, maxit=2, seed=9, row_blocks=3, output=str(out))
    want = sparkmice.mice(mar[0], m=3, maxit=2, seed=9, row_blocks=3).complete("long")
    pd.testing.assert_frame_equal(sparkmice.read_imputed(str(out)), want, check_dtype=False)


def test_spark_reads_back_and_complete(spark, mar, tmp_path):
    imp, long = run_spark(spark, mar, tmp_path)
    assert spark.read.parquet(imp.output).count() == 2 * len(mar[0])
    one = imp.complete(2).toPandas().sort_values("_row_id").reset_index(drop=True)
    expected = long[long._imputation == 2].drop(columns="_imputation").reset_index(drop=True)
    pd.testing.assert_frame_equal(one[expected.columns], expected, check_dtype=False)
    config = json.loads((tmp_path / "imputed" / "_sparkmice" / "config.json").read_text())
    assert config["m"] == 2 and config["engine"] == "barrier"


def test_spark_input_errors_before_any_job(spark, mar):
    df = spark.read.parquet(mar[1]).withColumnRenamed("crp", "_row_id")
    with pytest.raises(sparkmice.InputError, match="reserves"):
        sparkmice.mice(df, m=1, maxit=1)
    # (dates are carried through or imputed: test_input_cli.py)
    df = spark.read.parquet(mar[1]).selectExpr("*", "array(1, 2) as day")
    with pytest.raises(sparkmice.InputError, match=r"column 'day' has type list"):
        sparkmice.mice(df, m=1, maxit=1)


def test_cli_fan_out_chains_into_one_table(spark, mar, reference, tmp_path):
    out = str(tmp_path / "fan")
    base = ["impute", "--input", mar[1], "--output", out, "--m", "2", "--maxit", "2", "--seed", "9"]
    conf = tmp_path / "conf.yaml"
    conf.write_text("row_blocks: 3\n")
    assert main(base + ["--config", str(conf), "--chains", "2"]) == 0
    assert main(base + ["--config", str(conf), "--chains", "1"]) == 0
    pd.testing.assert_frame_equal(sparkmice.read_imputed(out), reference, check_dtype=False)
    trace = pd.read_csv(tmp_path / "fan" / "_sparkmice" / "trace.csv")
    assert sorted(trace.chain.unique()) == [1, 2]
    # re-running chain 1 replaces its partition only, leaving chain 2 as it was
    before = sparkmice.read_imputed(out, imputation=2)
    assert main(base + ["--config", str(conf), "--chains", "1"]) == 0
    pd.testing.assert_frame_equal(sparkmice.read_imputed(out, imputation=2), before)
    # a different run into the same folder is refused without --overwrite
    assert main(base[:-1] + ["10", "--config", str(conf)]) == 2


def test_csv_input_keeps_types_and_na(spark, tmp_path):
    csv = tmp_path / "small.csv"
    csv.write_text("a,b,c\n1,2.5,x\nNA,3.5,y\n3,,\n4,1.0,x\n5,2.0,y\n6,NA,x\n")
    out = tmp_path / "csv_out"
    assert (
        main(
            [
                "impute",
                "--input",
                str(csv),
                "--output",
                str(out),
                "--m",
                "2",
                "--maxit",
                "2",
                "--config",
                str(_sample_config(tmp_path)),
            ]
        )
        == 0
    )
    back = sparkmice.read_imputed(str(out))
    assert back["a"].dtype.kind == "i" and back["b"].dtype.kind == "f"
    assert back[["a", "b", "c"]].notna().all().all()
    assert set(back["c"]) <= {"x", "y"}


def _sample_config(tmp_path):
    conf = tmp_path / "sample.yaml"
    conf.write_text("method: {a: sample, b: sample, c: sample}\n")
    return conf


def test_delta_output_matches_parquet(spark, mar, reference, tmp_path):
    from sparkmice.io.delta import read_delta

    out = tmp_path / "delta"
    sparkmice.mice(
        spark.read.parquet(mar[1]), m=2, maxit=2, seed=9, row_blocks=3, output=str(out),
        format="delta",
    )
    via_rs = read_delta(str(out)).sort_values(["_imputation", "_row_id"]).reset_index(drop=True)
    via_spark = read_delta(str(out), spark=spark).toPandas()
    via_spark = via_spark.sort_values(["_imputation", "_row_id"]).reset_index(drop=True)
    cols = list(reference.columns)
    pd.testing.assert_frame_equal(via_rs[cols], reference, check_dtype=False)
    pd.testing.assert_frame_equal(via_spark[cols], reference, check_dtype=False)


def test_results_do_not_depend_on_input_partitioning(spark, mar, reference, tmp_path):
    df = spark.read.parquet(mar[1])
    shuffled = spark.createDataFrame(df.toPandas().assign(rid=np.arange(len(mar[0]))))
    shuffled = shuffled.repartition(5)
    out = tmp_path / "shuffled"
    sparkmice.mice(shuffled, m=2, maxit=2, seed=9, row_blocks=3, output=str(out), id_column="rid")
    long = sparkmice.read_imputed(str(out)).drop(columns="rid")
    pd.testing.assert_frame_equal(long, reference, check_dtype=False)


def test_dates_of_a_dataframe_made_from_pandas_come_back_unchanged(spark, tmp_path):
    """spark.createDataFrame(pandas) with a datetime column through the barrier engine: the
    dates are carried through, equal to the input in every imputation."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=120), "y": rng.normal(size=120),
                       "when": pd.date_range("2020-01-01", periods=120, freq="D")})  # fmt: skip
    df.loc[::5, "y"] = np.nan
    imp = sparkmice.mice(spark.createDataFrame(df), m=2, maxit=1, seed=1, engine="barrier",
                         output=str(tmp_path / "out"))  # fmt: skip
    long = imp.complete("long").toPandas().sort_values(["_imputation", "_row_id"])
    for _, chain in long.groupby("_imputation"):
        assert chain["when"].tolist() == df["when"].tolist()


def test_a_filtered_input_of_several_files_keeps_every_row_once(spark, mar, tmp_path):
    """Row ids of a filtered Parquet directory: files are spaced by their highest row index,
    not by the rows the filter kept (which gave two rows of different files the same id).
    Every kept row is imputed once per chain, its observed cells unchanged."""
    data = mar[0].assign(key=np.arange(len(mar[0])))
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(data)), 3)):
        data.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False)
    kept = data[data["age"] > 40]
    df = spark.read.parquet(str(folder)).where("age > 40")
    long = sparkmice.mice(df, m=2, maxit=1, seed=3, output=str(tmp_path / "out")).complete("long")
    long = long.toPandas()
    for _, chain in long.groupby("_imputation"):
        assert chain["_row_id"].is_unique and chain["key"].is_unique
        chain = chain.set_index("key").loc[kept["key"]]
        assert len(chain) == len(kept)
        for name in ("bp", "chol", "diet"):
            seen = kept[name].notna().to_numpy()
            assert chain[name].to_numpy()[seen].tolist() == kept[name].to_numpy()[seen].tolist()


def test_rows_read_twice_get_distinct_row_ids(spark, mar, tmp_path):
    """A join that repeats each row reads each file position twice: positions cannot be
    the ids, so the rows get the partitions' order instead, every one distinct."""
    from sparkmice.io.spark import with_row_id

    twice = spark.read.parquet(mar[1]).crossJoin(spark.createDataFrame([(1,), (2,)], ["copy"]))
    ided, n = with_row_id(twice)
    assert n == 2 * len(mar[0])
    assert ided.select("_row_id").distinct().count() == n


def test_a_filtered_input_read_twice_is_refused_in_one_line(spark, mar, tmp_path):
    """Rows repeated by a join and thinned by a filter below one per position: their count
    does not give the repeats away, so two rows share each position's id. The chain's
    tasks find them in their blocks and the run stops with their InputError line."""
    from sparkmice.plan import InputError

    cut = float(mar[0]["age"].quantile(0.7))  # keeps 30%: twice that is fewer rows than the file
    twice = spark.read.parquet(mar[1]).crossJoin(spark.createDataFrame([(1,), (2,)], ["copy"]))
    with pytest.raises(InputError, match="^rows read more than once: [0-9]+ row") as raised:
        sparkmice.mice(twice.where(f"age > {cut}").drop("copy"), m=1, maxit=1, seed=1,
                       output=str(tmp_path / "out"))  # fmt: skip
    assert "\n" not in str(raised.value) and "id_column" in str(raised.value)


def test_a_join_with_repeated_names_and_a_filter_keeping_no_row_are_refused(spark, mar):
    """A join's two `age` columns, refused before any job; a filter that keeps no row,
    said as such."""
    from sparkmice.plan import InputError

    df = spark.read.parquet(mar[1])
    joined = df.join(df.select("age", "bp"), on="bp")
    with pytest.raises(InputError, match=r"input column 'age' appears more than once"):
        sparkmice.mice(joined, m=1, maxit=1)
    with pytest.raises(InputError, match=r"^the input has no rows"):
        sparkmice.mice(df.where("age < -1"), m=1, maxit=1)


def test_a_union_of_reads_gets_row_ids_without_an_error_in_the_log(spark, mar, capfd):
    """A union of two reads has no file metadata: its rows get the partitions' order, and
    the probe for `_metadata` leaves no ERROR with a stack trace on stderr."""
    from sparkmice.io.spark import with_row_id

    df = spark.read.parquet(mar[1])
    capfd.readouterr()
    ided, n = with_row_id(df.union(df))
    assert n == 2 * len(mar[0])
    assert ided.select("_row_id").distinct().count() == n
    assert "UNRESOLVED_COLUMN" not in capfd.readouterr().err


def test_starting_the_python_workers_is_best_effort(caplog):
    """The background job that starts the workers while the rows are counted: its failure
    is logged and the run goes on (the packing job shows any real error); the block's own
    error still propagates."""
    from types import SimpleNamespace

    from sparkmice.engines.spark import _python_workers_starting

    class NoCluster:
        sparkContext = SimpleNamespace(setJobDescription=lambda text: None)

        def range(self, *args, **kwargs):
            raise RuntimeError("no executors")

    with caplog.at_level("DEBUG", logger="sparkmice"):
        with _python_workers_starting(NoCluster(), 2):
            counted = 7
    assert counted == 7
    assert "starting the Python workers failed: no executors" in caplog.text
    with pytest.raises(ValueError, match="duplicate ids"):
        with _python_workers_starting(NoCluster(), 2):
            raise ValueError("duplicate ids")
