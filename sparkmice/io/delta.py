"""Delta Lake output for the long imputed table, with or without Spark's Delta jars.

Where Spark has a Delta writer (Databricks), a chain is one ``replaceWhere`` overwrite of its
``_imputation`` partition. Elsewhere the chain's Parquet files are written in parallel, as an
attempt of the run folder (by the barrier tasks, or the tasks of a chain's DataFrame), and the
driver commits exactly those files with delta-rs as one transaction that replaces partition k.
Readers see the old chain or the new one, and read only the files the log lists
(``read_delta``); a job that dies before the commit leaves only files the log never mentions
(``vacuum`` removes them).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any, overload

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, CommitProperties, create_table_with_add_actions
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from sparkmice.io.run import PARQUET_FILES, Attempt, DataFile, RunFolder
from sparkmice.names import IMPUTATION, ROW_ID

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PARTITION_COLUMN = IMPUTATION
COMMIT_ATTEMPTS = 6
# Spark Delta's conflicts that a retry resolves: two chains creating the table at once.
_SPARK_DELTA_CONFLICTS = (
    "ProtocolChangedException",
    "MetadataChangedException",
    "ConcurrentAppendException",
    "DELTA_PROTOCOL_CHANGED",
    "DELTA_METADATA_CHANGED",
    "DELTA_CONCURRENT_APPEND",
)


def spark_has_delta(spark: SparkSession) -> bool:
    """Whether ``spark`` can resolve the ``delta`` data source.

    Resolving a reader for a path that does not exist costs one analysis round trip and no
    job, needs no JVM handle (works over Spark Connect), and fails with DATA_SOURCE_NOT_FOUND
    exactly when the jars are missing. Config such as ``spark.sql.extensions`` is no reliable
    signal: Databricks has Delta built in without it, and path-based writes do not need it.
    """
    probe = f"file:/nonexistent/sparkmice-delta-probe-{uuid.uuid4().hex}"
    try:
        spark.read.format("delta").load(probe).schema  # noqa: B018 - forces analysis
    except Exception as err:  # any other error (e.g. path not found) means Delta resolved
        return "DATA_SOURCE_NOT_FOUND" not in str(err)
    return True


def write_chain_delta(
    chain_df: DataFrame, root: str, imputation: int, *, spark: SparkSession
) -> None:
    """Replace partition ``_imputation = imputation`` of the Delta table at ``root`` by chain_df
    with Spark's own Delta writer (where its jars are there: ``DeltaOutput.writes_dataframes``);
    elsewhere chains arrive as attempt files that ``DeltaOutput.commit`` commits with delta-rs.

    ``chain_df`` holds one chain's completed rows with ``_imputation`` equal to ``imputation``.
    The table is created on the first write; other partitions are left untouched.
    """
    root = table_root(root)
    _retry(
        lambda: _write_with_spark_delta(chain_df, root, imputation),
        lambda err: any(name in str(err) for name in _SPARK_DELTA_CONFLICTS),
    )


@overload
def read_delta(root: str, spark: None = None) -> pd.DataFrame: ...
@overload
def read_delta(root: str, spark: SparkSession) -> DataFrame: ...
def read_delta(root: str, spark: SparkSession | None = None) -> pd.DataFrame | DataFrame:
    """The table's current rows: pandas via delta-rs, or a Spark DataFrame if ``spark`` is given.

    Without Spark's Delta reader, Spark reads exactly the active files the log lists, per
    partition, and restores ``_imputation`` from the log's partition values (never from a
    directory listing, which would include replaced and orphaned files).
    """
    root = table_root(root)
    if spark is None:
        return DeltaTable(root).to_pandas()
    if spark_has_delta(spark):
        return spark.read.format("delta").load(root)
    table = DeltaTable(root)
    schema = from_arrow_schema(pa.schema(table.schema().to_arrow()))
    data_schema = StructType([f for f in schema.fields if f.name != PARTITION_COLUMN])
    partition_type = schema[PARTITION_COLUMN].dataType
    parts = [
        spark.read.schema(data_schema)
        .parquet(*table.file_uris(file_pruning_predicate=[(PARTITION_COLUMN, "=", value)]))
        .withColumn(PARTITION_COLUMN, F.lit(value).cast(partition_type))
        for value in sorted({p[PARTITION_COLUMN] for p in table.partitions()}, key=int)
    ]
    if not parts:
        return spark.createDataFrame([], schema)
    return reduce(lambda a, b: a.unionByName(b), parts).select(*schema.names)


def table_root(root: str) -> str:
    """``root`` as an absolute path or URI, so Spark, delta-rs and pyarrow agree on it."""
    return root.rstrip("/") if "://" in root else os.path.abspath(root)


def commit_files(root: str, imputation: int, files: list[DataFile], schema: pa.Schema) -> None:
    """Commit ``files`` (paths relative to ``root``) as partition ``imputation``, atomically.

    One Delta transaction adds the files and removes every file the partition held before
    (creating the table if needed). Commits race with other processes' chains; delta-rs
    rebases over commits that touch other partitions, and a lost race (a conflict, or another
    process creating the table first) is retried on a fresh snapshot with jittered backoff.
    Two commits of the same partition leave the later one's files, whole.
    """
    actions = [
        AddAction(
            path=d.path,
            size=d.size,
            partition_values={PARTITION_COLUMN: str(imputation)},
            modification_time=d.mtime_ms,
            data_change=True,
            stats=json.dumps({"numRecords": d.rows}),
        )
        for d in files
    ]
    delta_schema = DeltaSchema.from_arrow(schema)
    properties = CommitProperties(custom_metadata={"sparkmice.imputation": imputation})

    def commit() -> None:
        if DeltaTable.is_deltatable(root):
            DeltaTable(root).create_write_transaction(
                # deltalake types this list[AddAction | RemoveAction] (invariant), not Sequence
                actions,  # type: ignore[arg-type]
                mode="overwrite",
                schema=delta_schema,
                partition_by=[PARTITION_COLUMN],
                partition_filters=[(PARTITION_COLUMN, "=", str(imputation))],
                commit_properties=properties,
            )
        else:
            create_table_with_add_actions(
                root,
                delta_schema,
                actions,
                mode="error",
                partition_by=[PARTITION_COLUMN],
                commit_properties=properties,
            )

    def lost_race(err: Exception) -> bool:
        if isinstance(err, CommitFailedError):
            return True
        return isinstance(err, DeltaError) and "already exists" in str(err)

    _retry(commit, lost_race)


def log_schema(folder: RunFolder, files: list[DataFile]) -> pa.Schema:
    """The Delta log's schema of `files` (below `folder`): the first file's own (Parquet
    files carry theirs), dictionaries as their values, and the partition column."""
    with folder.fs.open_input_file(folder.at(files[0].path).path) as f:
        schema = pq.ParquetFile(f).schema_arrow
    return pa.schema(
        [pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
         for f in schema]
    ).append(pa.field(PARTITION_COLUMN, pa.int32()))  # fmt: skip


class DeltaOutput:
    """A chain is partition ``_imputation = k`` of the Delta table at DIR: an attempt's
    files are committed by one log transaction, and readers read only the files the log
    lists (replaced files stay on disk until ``vacuum``, for time travel)."""

    name = "delta"
    files = PARQUET_FILES

    def commit(
        self, run: RunFolder, attempt: Attempt, files: list[DataFile], schema: pa.Schema | None
    ) -> dict[str, Any]:
        """The log's schema is the first file's own (Parquet files carry theirs)."""
        root = run.location.delta_uri
        commit_files(root, attempt.chain, files, log_schema(run, files))
        return {"delta_version": DeltaTable(root).version()}

    def chains(self, run: RunFolder) -> list[int]:
        root = run.location.delta_uri
        if not DeltaTable.is_deltatable(root):
            return []
        return sorted({int(p[PARTITION_COLUMN]) for p in DeltaTable(root).partitions()})

    def read(self, run: RunFolder, spark: Any, imputation: int | None) -> Any:
        if not self.chains(run):
            raise FileNotFoundError(f"{run.root} holds no committed imputation.")
        root = run.location.delta_uri
        if spark is not None:
            rows = read_delta(root, spark)
            return rows if imputation is None else rows.where(F.col(PARTITION_COLUMN) == imputation)
        df = read_delta(root)
        df[PARTITION_COLUMN] = df[PARTITION_COLUMN].astype("int32")
        if imputation is not None:
            df = df[df[PARTITION_COLUMN] == imputation]
        return df.sort_values([PARTITION_COLUMN, ROW_ID], kind="stable").reset_index(drop=True)

    def writes_dataframes(self, spark: Any) -> bool:
        return spark is not None and spark_has_delta(spark)

    def write_dataframe(self, run: RunFolder, chain: int, df: Any, spark: Any) -> None:
        write_chain_delta(df, run.location.delta_uri, chain, spark=spark)


OUTPUT = DeltaOutput()


def replace_where(chain_df: DataFrame, imputation: int) -> Any:
    """Spark's own Delta writer of one chain, before `.save(path)` or `.saveAsTable(name)`:
    overwrite partition k only (one Delta transaction), creating the table if needed."""
    return (
        chain_df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{PARTITION_COLUMN} = {imputation}")
        .partitionBy(PARTITION_COLUMN)
    )


def _write_with_spark_delta(chain_df: DataFrame, root: str, imputation: int) -> None:
    replace_where(chain_df, imputation).save(root)


def _retry(action: Callable[[], None], retryable: Callable[[Exception], bool]) -> None:
    """Run ``action``, retrying with jittered exponential backoff while ``retryable(err)``."""
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            action()
            return
        except Exception as err:
            if attempt == COMMIT_ATTEMPTS - 1 or not retryable(err):
                raise
        time.sleep(random.uniform(0.05, 0.1) * 2**attempt)
