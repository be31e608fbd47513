"""The imputed long table in a catalog table (`catalog.schema.table`), partitioned by
`_imputation`: each chain committed in the run folder is published as its partition.

The run folder stays the record of the run (commits, resume, trace, config); the table is
written from it, one chain at a time, in the run's format:

- Parquet (`write_table(..., table_format="parquet")`, the default): the first chain
  creates the table (`partitionBy(_imputation)`), every later write is `INSERT OVERWRITE`
  of that chain's rows with dynamic partition overwrite, which replaces partition k only.
  Spark stages the new files and swaps the partition at job commit: one job per chain, but
  not an atomic swap for a concurrent reader, and a crash during the swap can leave
  partition k missing from the table (not from the run folder: publishing again restores it).
- Delta (`table_format="delta"`, or a run written with `format: delta`): a chain rerun
  replaces its partition in one Delta transaction. With Spark's Delta jars (Databricks)
  that is `replaceWhere` on the catalog table (written, not run here: no Delta jars on
  this machine). Without them, the table is a Delta table at the name's location in Spark's
  catalog (its database's location / table name: `spark.sql.warehouse.dir` for the default
  database): Spark's tasks write the chain's Parquet files there, then one log commit
  (delta-rs) removes the partition's old files and adds the new ones, as `replaceWhere`
  does. A write that fails before its commit leaves the table as it was (its files are
  deleted). Spark's catalog cannot register a Delta table without the jars, so such a
  table is read by location: `read_table(name, spark)` (or `sparkmice.io.delta.read_delta`).

Names are checked before any Spark job: one to three identifiers of letters, digits and
`_` separated by dots (`spark_catalog.default.imputed`); each is quoted in backticks when
it reaches SQL, so a name cannot carry SQL.
"""

from __future__ import annotations

import re
from typing import Any

from deltalake import DeltaTable

from sparkmice.io.delta import commit_files, log_schema, read_delta, replace_where, spark_has_delta
from sparkmice.io.paths import PathError
from sparkmice.io.run import ChainCommitError, RunFolder
from sparkmice.names import IMPUTATION

TABLE_FORMATS = ("parquet", "delta")

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


def _check_columns(name: str, columns: list[str], df: Any) -> None:
    """Refuse to publish a run into a table of another data set."""
    if sorted(columns) != sorted(df.columns):
        raise PathError(
            f"table {name} has columns {columns}, the run has {df.columns}: it holds another "
            "data set; give a new --output-table (or drop the old table first)"
        )


def _write_chain(spark: Any, df: Any, quoted: str, name: str) -> None:
    """Create the table from the first chain, or replace the chain's partition."""
    if not spark.catalog.tableExists(name):
        df.write.format("parquet").partitionBy(IMPUTATION).saveAsTable(quoted)
        return
    columns = spark.table(quoted).columns
    _check_columns(name, columns, df)
    before = spark.conf.get(_OVERWRITE_MODE)
    spark.conf.set(_OVERWRITE_MODE, "dynamic")
    try:  # insertInto matches by position: the table's column order, _imputation last
        df.select(*columns).write.insertInto(quoted, overwrite=True)
    finally:
        spark.conf.set(_OVERWRITE_MODE, before)


def table_location(spark: Any, name: str) -> RunFolder:
    """Where table `name` lives: its database's location (Spark's catalog: the warehouse
    dir for the default database) / the table's name, as Spark places a managed table."""
    check_table_name(name)
    *namespace, table = name.split(".")
    if not namespace:
        namespace = [spark.catalog.currentDatabase()]
    quoted = ".".join(f"`{p}`" for p in namespace)
    info = {r[0]: r[1] for r in spark.sql(f"DESCRIBE NAMESPACE {quoted}").collect()}
    return RunFolder(f"{info['Location'].rstrip('/')}/{table.lower()}")


def _write_chain_delta(spark: Any, df: Any, quoted: str, name: str, chain: int) -> None:
    """Replace partition `chain` of the Delta table `name` in one transaction: Spark's
    replaceWhere where Delta's jars are there, else attempt files and one delta-rs commit."""
    if spark_has_delta(spark):  # Databricks; not run here (no Delta jars without Maven)
        replace_where(df, chain).saveAsTable(quoted)
        return
    if spark.catalog.tableExists(name):
        raise PathError(
            f"table {name} is in Spark's catalog and not a Delta table (Delta's jars are not "
            "loaded): give a new --output-table, or drop the old table first"
        )
    folder = table_location(spark, name)
    root = folder.location.delta_uri
    if DeltaTable.is_deltatable(root):
        _check_columns(name, [f.name for f in DeltaTable(root).schema().fields], df)
    attempt = folder.new_attempt(chain)
    try:
        written = folder.write_dataframe_files(attempt, df.drop(IMPUTATION))
        files = folder.attempt_files(attempt)
        if sum(f.rows for f in files) != written.rows:
            raise ChainCommitError(
                f"chain {chain}: the files written for table {name} do not hold the "
                f"{written.rows} rows the tasks wrote; the table is unchanged: write it again"
            )
        commit_files(root, chain, files, log_schema(folder, files))
    except BaseException:
        folder.discard(attempt)
        raise


def write_table(
    root: str,
    name: str,
    spark: Any,
    chains: list[int] | None = None,
    table_format: str | None = None,
) -> list[int]:
    """Publish the committed chains of the run in `root` (all, or `chains`) to the catalog
    table `name`, each as its `_imputation` partition; returns the chains written.
    `table_format`: "parquet" or "delta" (default: "delta" for a Delta run, else Parquet)."""
    quoted = check_table_name(name)
    run = RunFolder(root)
    fmt = table_format or ("delta" if run.output().name == "delta" else "parquet")
    if fmt not in TABLE_FORMATS:
        raise PathError(f"table format must be one of {list(TABLE_FORMATS)}; got {fmt!r}")
    done = run.chains()
    chosen = done if chains is None else list(chains)
    missing = [k for k in chosen if k not in done]
    if missing:
        raise PathError(f"{root} has no committed chain(s) {missing} to write to {name}")
    for k in chosen:
        rows = run.read(spark, imputation=k)
        if fmt == "delta":
            _write_chain_delta(spark, rows, quoted, name, k)
        else:
            _write_chain(spark, rows, quoted, name)
    return chosen


def read_table(name: str, spark: Any) -> Any:
    """The long table `name` as a Spark DataFrame: from Spark's catalog, or the Delta table
    at the name's location (written without Delta's jars: only the files its log lists)."""
    quoted = check_table_name(name)
    if spark.catalog.tableExists(name):
        return spark.table(quoted)
    folder = table_location(spark, name)
    if not DeltaTable.is_deltatable(folder.location.delta_uri):
        raise PathError(
            f"table {name} not found: neither in Spark's catalog nor a Delta table at "
            f"{folder.root}; give the --output-table of 'sparkmice impute'"
        )
    return read_delta(folder.location.delta_uri, spark)
