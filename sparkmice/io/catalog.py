"""The imputed long table in a catalog table (`catalog.schema.table`), partitioned by
`_imputation`: each chain committed in the run folder is published as its partition.

The run folder stays the record of the run (commits, resume, trace, config); the table is
written from it, one chain at a time: the first chain creates the table (Parquet,
`partitionBy(_imputation)`), every later write is `INSERT OVERWRITE` of that chain's rows
with dynamic partition overwrite, which replaces partition k only — a rerun of chain k
replaces its partition and leaves the others as they were. Spark stages the new files and
swaps the partition at job commit: one job per chain, but for a Parquet table not an
atomic swap for a concurrent reader, and a crash during the swap can leave partition k
missing from the table (not from the run folder: publishing again restores it). A Delta
table (replaceWhere) would make it one transaction; Delta's jars are not available here,
so only Parquet tables are written and tested.

Names are checked before any Spark job: one to three identifiers of letters, digits and
`_` separated by dots (`spark_catalog.default.imputed`); each is quoted in backticks when
it reaches SQL, so a name cannot carry SQL.
"""

from __future__ import annotations

import re
from typing import Any

from sparkmice.io.paths import PathError
from sparkmice.io.run import RunFolder
from sparkmice.names import IMPUTATION

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OVERWRITE_MODE = "spark.sql.sources.partitionOverwriteMode"


def check_table_name(name: str) -> str:
    """The name quoted for SQL (`a`.`b`.`c`); PathError naming the rule otherwise."""
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 3 or not all(_IDENTIFIER.match(p) for p in parts):
        raise PathError(
            f"--output-table {name!r} is not a table name: give catalog.schema.table (or "
            "schema.table), each part letters, digits and _ (e.g. spark_catalog.default.imputed)"
        )
    return ".".join(f"`{p}`" for p in parts)


def _write_chain(spark: Any, df: Any, quoted: str, name: str) -> None:
    """Create the table from the first chain, or replace the chain's partition."""
    if not spark.catalog.tableExists(name):
        df.write.format("parquet").partitionBy(IMPUTATION).saveAsTable(quoted)
        return
    columns = spark.table(quoted).columns
    if sorted(columns) != sorted(df.columns):
        raise PathError(
            f"table {name} has columns {columns}, the run has {df.columns}: it holds another "
            "data set; give a new --output-table (or drop the old table first)"
        )
    before = spark.conf.get(_OVERWRITE_MODE)
    spark.conf.set(_OVERWRITE_MODE, "dynamic")
    try:  # insertInto matches by position: the table's column order, _imputation last
        df.select(*columns).write.insertInto(quoted, overwrite=True)
    finally:
        spark.conf.set(_OVERWRITE_MODE, before)


def write_table(root: str, name: str, spark: Any, chains: list[int] | None = None) -> list[int]:
    """Publish the committed chains of the run in `root` (all, or `chains`) to the catalog
    table `name`, each as its `_imputation` partition; returns the chains written."""
    quoted = check_table_name(name)
    run = RunFolder(root)
    done = run.chains()
    chosen = done if chains is None else list(chains)
    missing = [k for k in chosen if k not in done]
    if missing:
        raise PathError(f"{root} has no committed chain(s) {missing} to write to {name}")
    for k in chosen:
        _write_chain(spark, run.read(spark, imputation=k), quoted, name)
    return chosen
