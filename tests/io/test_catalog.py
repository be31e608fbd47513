"""Catalog tables in and out, in Spark's own catalog (no metastore, no Delta jars here): a
database whose LOCATION is a temporary folder stands for `spark.sql.warehouse.dir`, its
tables managed Parquet tables partitioned by `_imputation`. A chain written again replaces
its partition only; a table name is the input of `sparkmice impute` too."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.config import ConfigError
from sparkmice.datasets import load_nhanes
from sparkmice.io import catalog
from sparkmice.io.catalog import check_table_name, read_table, table_location, write_table
from sparkmice.io.delta import read_delta
from sparkmice.io.paths import PathError
from sparkmice.pooling.job import pool_directory, pool_table

DB = "spark_catalog.sparkmice_catalog_test"


@pytest.mark.parametrize("name", ["a.b.c.d", "db.t;drop table x", "db.`t`", "", "1db.t"])
def test_bad_table_names_are_refused(name) -> None:
    with pytest.raises(PathError, match="is not a table name: give catalog.schema.table"):
        check_table_name(name)


@pytest.mark.spark
def test_pool_of_a_missing_table_is_one_line(spark, tmp_path, capsys) -> None:
    out = str(tmp_path / "p.csv")
    argv = ["pool", "--imputed-table", f"{DB}_none.t", "--formula", "y ~ x", "--output", out]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB}_none LOCATION '{tmp_path / 'w'}'")
    try:
        assert main(argv) == 2
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {DB}_none CASCADE")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "table spark_catalog.sparkmice_catalog_test_none.t not found" in err[0]
    assert main([*argv[:2], "a.b;drop", *argv[3:]]) == 2  # refused before Spark starts
    assert "is not a table name" in capsys.readouterr().err


def test_pandas_input_cannot_write_a_table() -> None:
    with pytest.raises(ConfigError, match="output_table needs Spark input"):
        sparkmice.mice(load_nhanes(), m=2, maxit=1, output_table=f"{DB}.t")


def _table(spark, name: str) -> pd.DataFrame:
    return spark.table(name).toPandas().sort_values(["_imputation", "_row_id"]).reset_index(
        drop=True)  # fmt: skip


@pytest.mark.spark
def test_chains_in_and_out_of_a_catalog_table(spark, tmp_path) -> None:
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB} LOCATION '{tmp_path / 'warehouse'}'")
    try:
        _round_trip(spark, tmp_path)
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")


def _round_trip(spark, tmp_path) -> None:
    nhanes = load_nhanes()
    n = len(nhanes)
    spark.createDataFrame(nhanes).write.saveAsTable(f"{DB}.nhanes")
    first = str(tmp_path / "first")
    # input from a three-part name, output to another (CLI)
    code = main(["impute", "--input", f"{DB}.nhanes", "--output", first, "--m", "2",
                 "--maxit", "2", "--seed", "3", "--output-table", f"{DB}.imputed"])  # fmt: skip
    assert code == 0
    table = _table(spark, f"{DB}.imputed")
    run = sparkmice.read_imputed(first).reset_index(drop=True)
    assert len(table) == 2 * n
    pd.testing.assert_frame_equal(table[run.columns], run, check_dtype=False, check_exact=True)
    partitions = {r[0] for r in spark.sql(f"SHOW PARTITIONS {DB}.imputed").collect()}
    assert partitions == {"_imputation=1", "_imputation=2"}
    _pooled_alike(spark, f"{DB}.imputed", first, tmp_path)

    # chain 2 again, another seed (API): partition 2 replaced, partition 1 untouched
    second = str(tmp_path / "second")
    sparkmice.mice(spark.table(f"{DB}.nhanes"), m=2, maxit=2, seed=4, chains=[2],
                   output=second)  # fmt: skip
    assert write_table(second, f"{DB}.imputed", spark) == [2]
    after = _table(spark, f"{DB}.imputed")
    assert len(after) == 2 * n  # replaced, not appended
    again = sparkmice.read_imputed(second).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        after[after["_imputation"] == 2].reset_index(drop=True)[again.columns], again,
        check_dtype=False, check_exact=True,
    )  # fmt: skip
    untouched = after["_imputation"] == 1
    pd.testing.assert_frame_equal(
        after[untouched], table[table["_imputation"] == 1], check_exact=True)  # fmt: skip
    new, old = (t.loc[t["_imputation"] == 2, "chl"].to_numpy() for t in (after, table))
    assert not np.array_equal(new, old)  # another seed: chl's imputed cells differ

    with pytest.raises(PathError, match="holds another data set"):
        write_table(second, f"{DB}.nhanes", spark)


@pytest.mark.spark
def test_delta_table_replaces_a_chain_in_one_transaction(spark, tmp_path, monkeypatch) -> None:
    """`format: delta` with `--output-table` and no Delta jars: the table is a Delta table at
    the name's location in Spark's catalog (here the database's LOCATION, as the warehouse
    dir); a rerun chain is one log commit (its old files removed, its new ones added), two
    writers of one chain at once leave one whole copy, and a failed write changes nothing."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB} LOCATION '{tmp_path / 'warehouse'}'")
    try:
        _delta_round_trip(spark, tmp_path, monkeypatch)
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")


def _chains_once(spark, name: str, n: int) -> pd.DataFrame:
    """The table read by its Delta log, by Spark and by delta-rs alike, each chain once."""
    got = read_table(name, spark).toPandas().sort_values(["_imputation", "_row_id"])
    got = got.reset_index(drop=True)
    assert got.groupby("_imputation")["_row_id"].apply(lambda r: sorted(r) == list(range(n))).all()
    by_delta_rs = read_delta(table_location(spark, name).root)
    by_delta_rs = by_delta_rs.sort_values(["_imputation", "_row_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(by_delta_rs[got.columns], got, check_dtype=False)
    return got


def _pooled_alike(spark, name: str, run: str, tmp_path) -> None:
    """`sparkmice pool --imputed-table` and `pool_table` pool the table as the run folder
    that holds the same chains is pooled."""
    formula = "chl ~ age + bmi"
    want = pool_directory(spark, run, formula)
    pd.testing.assert_frame_equal(pool_table(spark, name, formula), want)
    out = str(tmp_path / "pooled.csv")
    assert main(["pool", "--imputed-table", name, "--formula", formula, "--output", out]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), want, check_dtype=False)


def _delta_round_trip(spark, tmp_path, monkeypatch) -> None:
    nhanes = spark.createDataFrame(load_nhanes())
    n, name = nhanes.count(), f"{DB}.dimputed"
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    sparkmice.mice(nhanes, m=2, maxit=1, seed=3, format="delta", output=first,
                   output_table=name)  # fmt: skip
    root = Path(table_location(spark, name).root)
    assert root == tmp_path / "warehouse" / "dimputed" and (root / "_delta_log").is_dir()
    before = _chains_once(spark, name, n)
    run = sparkmice.read_imputed(first)
    pd.testing.assert_frame_equal(before[run.columns], run, check_dtype=False)
    _pooled_alike(spark, name, first, tmp_path)

    # chain 2 rerun (another seed): one commit removes its old files and adds the new ones
    sparkmice.mice(nhanes, m=2, maxit=1, seed=4, chains=[2], format="delta", output=second)
    old_files = {p.name for p in (root / "_imputation=2").iterdir()}
    assert write_table(second, name, spark) == [2]
    log = sorted((root / "_delta_log").glob("*.json"))
    actions = [json.loads(line) for line in log[-1].read_text().splitlines()]
    removed = {a["remove"]["path"].split("/")[-1] for a in actions if "remove" in a}
    added = [a["add"] for a in actions if "add" in a]
    assert removed == old_files and added
    assert all(a["partitionValues"] == {"_imputation": "2"} for a in added)
    after = _chains_once(spark, name, n)
    again = sparkmice.read_imputed(second)
    two = after[after["_imputation"] == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(two[again.columns], again, check_dtype=False)
    pd.testing.assert_frame_equal(
        after[after["_imputation"] == 1], before[before["_imputation"] == 1]
    )
    assert not np.array_equal(two["chl"], before.loc[before["_imputation"] == 2, "chl"])

    # two writers of chain 2 at once: one whole copy, of one of them
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda r: write_table(r, name, spark, [2]), [first, second]))
    raced = _chains_once(spark, name, n)
    two = raced[raced["_imputation"] == 2].reset_index(drop=True)
    assert any(two[r.columns].equals(r) for r in (before[before["_imputation"] == 2]
               .reset_index(drop=True), again))  # fmt: skip

    # a write that fails before its commit: the table and its files as they were
    files = sorted(p.name for p in (root / "_imputation=2").iterdir())

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(catalog, "commit_files", fail)
    with pytest.raises(OSError, match="disk full"):
        write_table(second, name, spark, [2])
    pd.testing.assert_frame_equal(_chains_once(spark, name, n), raced)
    assert sorted(p.name for p in (root / "_imputation=2").iterdir()) == files
