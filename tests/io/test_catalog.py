"""Catalog tables in and out, in Spark's own catalog (no metastore, no Delta jars here): a
database whose LOCATION is a temporary folder stands for `spark.sql.warehouse.dir`, its
tables managed Parquet tables partitioned by `_imputation`. A chain written again replaces
its partition only; a table name is the input of `sparkmice impute` too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.config import ConfigError
from sparkmice.datasets import load_nhanes
from sparkmice.io.catalog import check_table_name, write_table
from sparkmice.io.paths import PathError

DB = "spark_catalog.sparkmice_catalog_test"


@pytest.mark.parametrize("name", ["a.b.c.d", "db.t;drop table x", "db.`t`", "", "1db.t"])
def test_bad_table_names_are_refused(name) -> None:
    with pytest.raises(PathError, match="is not a table name: give catalog.schema.table"):
        check_table_name(name)


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
