"""Delta output without Spark's Delta jars: a chain's files are written as an attempt of the
run folder, and delta-rs commits them (one transaction per chain)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from sparkmice.io import delta
from sparkmice.io.delta import read_delta, spark_has_delta, write_chain_delta
from sparkmice.io.run import ChainSink, RunFolder

pytestmark = pytest.mark.spark


def _chain_pdf(k: int, n: int, shift: float) -> pd.DataFrame:
    """One chain's rows as the engine would produce them (values depend on ``shift``)."""
    return pd.DataFrame(
        {
            "x": [i + shift for i in range(n)],
            "g": [f"g{i % 3}" for i in range(n)],
            "_row_id": pd.Series(range(n), dtype="int64"),
            "_imputation": pd.Series([k] * n, dtype="int32"),
        }
    )


def _chain_df(spark, k: int, n: int, shift: float):
    """The chain as a Spark DataFrame over two partitions, so a write makes several files."""
    rows = _chain_pdf(k, n, shift).drop(columns="_imputation")
    return (
        spark.createDataFrame(rows).withColumn("_imputation", F.lit(k).cast("int")).repartition(2)
    )


def _sorted(pdf: pd.DataFrame) -> pd.DataFrame:
    cols = ["x", "g", "_row_id", "_imputation"]
    return pdf[cols].sort_values(["_imputation", "_row_id"]).reset_index(drop=True)


def _log_entries(root: Path) -> list[list[dict]]:
    """Actions of each Delta commit, in version order."""
    files = sorted((root / "_delta_log").glob("*.json"))
    return [[json.loads(line) for line in f.read_text().splitlines()] for f in files]


def _delta_sink(root: Path, n_rows: int) -> ChainSink:
    """The sink of a Delta run at `root` whose chains have `n_rows` rows."""
    run = RunFolder(str(root))
    if run.read_config() is None:
        run.write_config({"config": {"format": "delta"}, "run_id": "test"})
    return ChainSink(run, n_rows, 1, "test")


def test_no_delta_jars_here(spark):
    assert not spark_has_delta(spark)


def test_chains_replace_only_their_partition_and_readers_agree(spark, tmp_path):
    root = tmp_path / "imputed"
    _delta_sink(root, 10).write_dataframe(1, _chain_df(spark, 1, 10, 0.0), spark)
    _delta_sink(root, 12).write_dataframe(2, _chain_df(spark, 2, 12, 100.0), spark)
    _delta_sink(root, 8).write_dataframe(1, _chain_df(spark, 1, 8, 50.0), spark)

    expected = _sorted(pd.concat([_chain_pdf(1, 8, 50.0), _chain_pdf(2, 12, 100.0)]))
    by_delta_rs = _sorted(read_delta(str(root)))
    pd.testing.assert_frame_equal(by_delta_rs, expected)
    by_spark = _sorted(read_delta(str(root), spark).toPandas())
    pd.testing.assert_frame_equal(by_spark, expected)

    # One transaction per chain write, each adding only files of its own partition.
    commits = _log_entries(root)
    assert len(commits) == 3
    for commit, k in zip(commits, [1, 2, 1], strict=True):
        info = next(a["commitInfo"] for a in commit if "commitInfo" in a)
        assert info["sparkmice.imputation"] == k
        adds = [a["add"] for a in commit if "add" in a]
        assert len(adds) >= 2
        for add in adds:
            assert add["partitionValues"] == {"_imputation": str(k)}
            assert add["path"].startswith(f"_imputation={k}/")
            assert (root / add["path"]).is_file()
    # The rewrite of chain 1 removed exactly chain 1's first files.
    removed = {a["remove"]["path"] for a in commits[2] if "remove" in a}
    assert removed == {a["add"]["path"] for a in commits[0] if "add" in a}
    assert DeltaTable(str(root)).metadata().partition_columns == ["_imputation"]


def test_failure_between_spark_write_and_commit_leaves_table_as_it_was(
    spark, tmp_path, monkeypatch
):
    """Spark wrote the attempt's files, then the commit failed: the log and the rows are as
    before, and the attempt removed its own files (every data file left is in the log)."""
    root = tmp_path / "imputed"
    _delta_sink(root, 10).write_dataframe(1, _chain_df(spark, 1, 10, 0.0), spark)
    before = _sorted(read_delta(str(root)))
    committed = []

    def fail(*args, **kwargs):
        committed.append(args)
        raise RuntimeError("driver lost before commit")

    monkeypatch.setattr(delta, "commit_files", fail)
    with pytest.raises(RuntimeError, match="before commit"):
        _delta_sink(root, 6).write_dataframe(1, _chain_df(spark, 1, 6, 7.0), spark)

    assert committed  # the new files were written and handed to the commit
    assert DeltaTable(str(root)).version() == 0
    pd.testing.assert_frame_equal(_sorted(read_delta(str(root))), before)
    active = {Path(u.removeprefix("file://")) for u in DeltaTable(str(root)).file_uris()}
    assert set((root / "_imputation=1").glob("*.parquet")) == active


_COMMIT_IN_OTHER_PROCESS = textwrap.dedent(
    """
    import os
    import sys
    import time
    import pyarrow as pa, pyarrow.parquet as pq
    from pathlib import Path
    from sparkmice.io.delta import commit_files
    from sparkmice.io.run import DataFile

    root, k, barrier, n = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    table = pa.table({"x": pa.array([float(k)] * 5), "_row_id": pa.array(range(5), pa.int64())})
    rel_dir = f"_imputation={k}/staged"
    (Path(root) / rel_dir).mkdir(parents=True)
    pq.write_table(table, f"{root}/{rel_dir}/part-0.parquet")
    schema = table.schema.append(pa.field("_imputation", pa.int32()))
    (barrier / f"ready-{k}").touch()
    while len(list(barrier.glob("ready-*"))) < n:  # start committing together
        time.sleep(0.001)
    info = os.stat(f"{root}/{rel_dir}/part-0.parquet")
    data = DataFile(f"{rel_dir}/part-0.parquet", 5, info.st_size, int(info.st_mtime * 1000))
    commit_files(root, k, [data], schema)
    """
)


def test_concurrent_chains_from_separate_processes(tmp_path):
    """Chains committed at once by separate processes, into a table none of them has created."""
    root, barrier = tmp_path / "imputed", tmp_path / "barrier"
    root.mkdir()
    barrier.mkdir()
    chains = [1, 2, 3, 4]
    argv = [sys.executable, "-c", _COMMIT_IN_OTHER_PROCESS, str(root)]
    repo = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([*argv, str(k), str(barrier), str(len(chains))], cwd=repo) for k in chains
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * len(chains)

    table = DeltaTable(str(root))
    assert table.version() == len(chains) - 1
    got = table.to_pandas().sort_values(["_imputation", "_row_id"]).reset_index(drop=True)
    assert got["_imputation"].tolist() == [k for k in chains for _ in range(5)]
    assert (got["x"] == got["_imputation"].astype(float)).all()


class _RecordingWriter:
    """Stands in for a DataFrameWriter: records the builder calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name, *args))
            return self

        return record


def test_spark_delta_writer_used_when_available(monkeypatch):
    """With Spark's Delta writer, a chain is one replaceWhere overwrite of its partition."""

    class ChainDf:
        write = _RecordingWriter()

    monkeypatch.setattr(delta, "spark_has_delta", lambda spark: True)
    assert delta.OUTPUT.writes_dataframes(object())  # the sink hands Spark's writer the rows
    write_chain_delta(ChainDf(), "s3://bucket/imputed/", 3, spark=None)
    assert ChainDf.write.calls == [
        ("format", "delta"),
        ("mode", "overwrite"),
        ("option", "replaceWhere", "_imputation = 3"),
        ("partitionBy", "_imputation"),
        ("save", "s3://bucket/imputed"),
    ]


def test_catalog_table_uses_replace_where_when_spark_has_delta(monkeypatch):
    """The Delta route of `--output-table` where Delta's jars are there (Databricks): one
    replaceWhere overwrite of the chain's partition of the catalog table. Not runnable here
    (no Delta jars): the writer's calls are recorded instead."""
    from sparkmice.io import catalog

    class ChainDf:
        write = _RecordingWriter()

    monkeypatch.setattr(catalog, "spark_has_delta", lambda spark: True)
    catalog._write_chain_delta(None, ChainDf(), "`c`.`db`.`t`", "c.db.t", 3)
    assert ChainDf.write.calls == [
        ("format", "delta"),
        ("mode", "overwrite"),
        ("option", "replaceWhere", "_imputation = 3"),
        ("partitionBy", "_imputation"),
        ("saveAsTable", "`c`.`db`.`t`"),
    ]
