"""The run folder with Spark where the bugs lived: a Delta run whose chain 1 was rerun must
read as exactly m x n rows in every reader (pool, complete, report); pool takes m from the
run; overwrite leaves only the new run; bad outputs get one line before any job."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import load_nhanes
from sparkmice.diagnostics import build_report
from sparkmice.io.paths import PathError
from sparkmice.io.run import RunFolder

pytestmark = pytest.mark.spark
N = 25  # rows of nhanes


@pytest.fixture(scope="module")
def nhanes_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("input") / "nhanes.csv"
    load_nhanes().to_csv(path, index=False, na_rep="NA")
    return str(path)


def _impute(csv: str, out: str, *extra: str) -> int:
    args = ["impute", "--input", csv, "--output", out, "--maxit", "2", "--seed", "3", *extra]
    return main(args)


def _pool(out: Path, *extra: str) -> pd.DataFrame:
    pooled = out.parent / f"{out.name}-pooled.csv"
    code = main(["pool", "--imputed", str(out), "--formula", "chl ~ age + bmi",
                 "--output", str(pooled), *extra])  # fmt: skip
    assert code == 0
    return pd.read_csv(pooled)


def test_delta_chain_rerun_reads_as_m_times_n_rows_everywhere(spark, nhanes_csv, tmp_path, capsys):
    """The reported bug: Delta output, chain 1 rerun with --chains 1; Spark's Parquet reader
    then saw 75 rows and the pooled model was fitted on duplicated rows (dfcom 47)."""
    out = tmp_path / "delta"
    assert _impute(nhanes_csv, str(out), "--m", "2", "--format", "delta") == 0
    assert _impute(nhanes_csv, str(out), "--m", "2", "--format", "delta", "--chains", "1") == 0
    assert len(list(out.glob("_imputation=1/*.parquet"))) >= 2  # the replaced files remain

    assert sparkmice.read_imputed(str(out), spark).count() == 2 * N
    assert len(sparkmice.read_imputed(str(out))) == 2 * N
    result = sparkmice.mice(
        spark.read.csv(nhanes_csv, header=True, inferSchema=True, nullValue="NA"),
        m=2, maxit=2, seed=3, output=str(out), format="delta", chains=[2],
    )  # fmt: skip
    assert result.complete("long").count() == 2 * N
    assert result.complete(1).count() == N
    capsys.readouterr()
    pooled = _pool(out)
    assert "found 2 imputations" in capsys.readouterr().err
    assert (pooled["dfcom"] == N - 3).all()  # 25 rows per fit, 3 coefficients
    original = spark.read.csv(nhanes_csv, header=True, inferSchema=True, nullValue="NA")
    report = build_report(str(out), original=original, spark=spark)
    hist = report.tables["histograms"]
    imputed_bmi = hist[(hist["variable"] == "bmi") & (hist["imputation"] > 0)]
    assert imputed_bmi.groupby("imputation")["count"].sum().tolist() == [9, 9]  # bmi's NAs


def test_overwrite_to_smaller_m_then_pool_sees_only_the_new_run(
    spark, nhanes_csv, tmp_path, capsys
):
    out = tmp_path / "over"
    assert _impute(nhanes_csv, str(out), "--m", "5") == 0
    assert _impute(nhanes_csv, str(out), "--m", "2", "--seed", "8", "--overwrite") == 0
    capsys.readouterr()
    pooled = _pool(out)
    assert f"found 2 imputations in {out}: [1, 2]" in capsys.readouterr().err
    assert (pooled["m"] == 2).all()


def test_pool_allow_partial_pools_what_is_done_and_says_so(spark, nhanes_csv, tmp_path, capsys):
    out = tmp_path / "partial"
    assert _impute(nhanes_csv, str(out), "--m", "3", "--chains", "1,2") == 0
    capsys.readouterr()
    pooled = out.parent / "p.csv"
    args = ["pool", "--imputed", str(out), "--formula", "chl ~ age", "--output", str(pooled)]
    assert main(args) == 2
    assert "lacks chain(s) [3] of its run's m=3" in capsys.readouterr().err
    assert (_pool(out, "--allow-partial")["m"] == 2).all()
    err = capsys.readouterr().err
    assert "warning: pooling 2 of m=3 imputations; chain(s) [3] are missing" in err


def test_bad_outputs_get_one_line_before_any_job(spark, nhanes_csv, tmp_path, capsys):
    file = tmp_path / "taken"
    file.write_text("x")
    assert _impute(nhanes_csv, str(file), "--m", "1") == 2
    assert capsys.readouterr().err == (
        f"sparkmice impute: error: output {file} is a file; choose a folder path.\n"
    )
    parquet = tmp_path / "in" / "nhanes.parquet"
    parquet.parent.mkdir()
    load_nhanes().to_parquet(parquet, index=False)
    df = spark.read.parquet(str(parquet))
    with pytest.raises(PathError, match=r"output .*/in contains the input"):
        sparkmice.mice(df, m=1, maxit=1, output=str(parquet.parent))
    assert not (parquet.parent / "_sparkmice").exists()


def test_barrier_rerun_of_a_chain_leaves_exactly_its_committed_files(spark, nhanes_csv, tmp_path):
    out = tmp_path / "pq"
    assert _impute(nhanes_csv, str(out), "--m", "2") == 0
    before = sparkmice.read_imputed(str(out), imputation=2)
    assert _impute(nhanes_csv, str(out), "--m", "2", "--chains", "1") == 0
    run = RunFolder(str(out))
    for k in (1, 2):
        on_disk = sorted(f"_imputation={k}/{p.name}" for p in (out / f"_imputation={k}").iterdir())
        assert on_disk == run.record(k)["files"]
    assert run.record(1)["writes"] == 2 and run.record(1)["rows"] == N
    pd.testing.assert_frame_equal(sparkmice.read_imputed(str(out), imputation=2), before)
    assert spark.read.parquet(str(out)).count() == 2 * N  # no orphan left for plain readers
