"""Spark-side input: reading paths and tables, Arrow schemas, stable row ids."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sparkmice.names import ROW_ID


def column(name: str):
    """A Spark column by its exact name, whatever it holds (dots, spaces, backticks)."""
    from pyspark.sql import functions as F

    return F.col(quoted(name))


def quoted(name: str) -> str:
    """A column's name quoted for Spark's parser (`dropna(subset=...)` takes no Column)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class PositionalNames:
    """Inside the Spark engines the input's columns are named by position (`__c0`, ...):
    pyspark cannot refer to every name (`mapInArrow` fails on a dot, as in R's `Solar.R`),
    and a position never collides with an engine's own columns. The tasks' tables (what the
    plan and the kernels see) and the written output carry the real names."""

    names: tuple[str, ...]

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(f"__c{i}" for i in range(len(self.names)))

    def of(self, name: str) -> str:
        return self.positional[self.names.index(name)]

    def _rename(self, current: list[str], to_real: bool) -> list[str]:
        pairs = zip(self.positional, self.names, strict=True)
        mapping = {a: b for a, b in pairs} if to_real else {b: a for a, b in pairs}
        return [mapping.get(n, n) for n in current]

    def to_real(self, table: pa.Table) -> pa.Table:
        return table.rename_columns(self._rename(table.column_names, True))

    def to_positional(self, table: pa.Table) -> pa.Table:
        return table.rename_columns(self._rename(table.column_names, False))

    def real_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema(
            [f.with_name(n) for f, n in zip(schema, self._rename(schema.names, True), strict=True)]
        )

    def spark_positional(self, df):
        return df.toDF(*self._rename(df.columns, False))

    def spark_real(self, df):
        return df.toDF(*self._rename(df.columns, True))


AS_GIVEN = PositionalNames(())  # no renaming: tables whose columns carry their real names


def arrow_schema(spark_schema) -> pa.Schema:
    """The Arrow schema Spark's mapInArrow hands to Python for this Spark schema."""
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return to_arrow_schema(spark_schema, prefers_large_types=False)
    except TypeError:  # pyspark 3.5 has no prefers_large_types
        return to_arrow_schema(spark_schema)
    except Exception:
        return pa.schema([_arrow_field(f) for f in spark_schema.fields])


def as_table(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """Batches that mapInArrow handed over, as one table of `schema`. Spark may label a
    timestamp's zone otherwise than the schema it reports (batches of a DataFrame made
    from pandas say Etc/UTC where the schema says UTC): the same instants, so such batches
    are cast to `schema` (a cast between zones keeps the instants; any other difference
    still fails)."""
    return pa.Table.from_batches(
        [b if b.schema.equals(schema) else b.cast(schema) for b in batches], schema=schema
    )


def _arrow_field(f) -> pa.Field:
    """Fields of types Arrow conversion refuses (e.g. intervals): kept opaque for errors."""
    try:
        from pyspark.sql.pandas.types import to_arrow_type

        return pa.field(f.name, to_arrow_type(f.dataType), nullable=True)
    except Exception:
        return pa.field(f.name, pa.null())


def read_input(spark, source: str):
    """A Parquet or CSV path, or a catalog table name, as a Spark DataFrame; a source that
    cannot be read is one InputError naming it and the fix.

    CSV: header row, types inferred by Spark, `NA` and empty cells missing; every record is
    parsed once here, so that a malformed one (another number of fields than the header, an
    unclosed quote) is refused before any imputation."""
    from sparkmice.plan import InputError

    lowered = source.lower().rstrip("/")
    try:
        if lowered.endswith(".csv"):
            return _read_csv(spark, source)
        if lowered.endswith(".parquet") or "/" in source or source.startswith("."):
            return spark.read.parquet(source)
        return spark.table(source)
    except InputError:
        raise
    except Exception as error:
        text = str(error)
        if "PATH_NOT_FOUND" in text or "TABLE_OR_VIEW_NOT_FOUND" in text:
            raise InputError(
                f"input {source} does not exist; give a Parquet or CSV path (.csv) or a "
                f"catalog table name."
            ) from None
        if "TIMESTAMP(NANOS" in text:
            raise InputError(_nanosecond_message(source)) from None
        raise


def _read_csv(spark, source: str):
    from pyspark.sql import functions as F

    from sparkmice.plan import InputError

    df = spark.read.csv(source, header=True, inferSchema=True, nullValue="NA", mode="FAILFAST")
    try:  # counting every column's values parses every record
        df.agg(*[F.count(column(c)) for c in df.columns]).collect()
    except Exception as error:
        if "MALFORMED_CSV_RECORD" not in str(error) and "Malformed" not in str(error):
            raise
        raise InputError(
            f"input {source} is not a well-formed CSV file: a record has another number of "
            f"fields than the header, or an unclosed quote; fix the file (every row as many "
            f"comma-separated fields as the header, quotes in pairs)."
        ) from None
    strings = [f.name for f in df.schema.fields if f.dataType.typeName() == "string"]
    return df.select(
        *[
            F.when(column(c) == "", None).otherwise(column(c)).alias(c)
            if c in strings
            else column(c)
            for c in df.columns
        ]
    )


def _nanosecond_message(source: str) -> str:
    """Which columns of a Parquet input hold nanosecond timestamps (read by pyarrow from
    the files' footers, if it can reach them), and the two fixes."""
    columns = ""
    try:
        import pyarrow.dataset as ds

        schema = ds.dataset(source, format="parquet").schema
        nanos = [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
        columns = f"column(s) {nanos} " if nanos else ""
    except Exception:  # not reachable from the driver: the message without the names
        pass
    return (
        f"input {source}: {columns}stored as Parquet TIMESTAMP(NANOS) (pandas' default), "
        f"which Spark cannot read; write the file with df.to_parquet(path, "
        f"coerce_timestamps='us', allow_truncated_timestamps=True), or set the Spark option "
        f"spark.sql.legacy.parquet.nanosAsLong=true to read them as integer nanoseconds."
    )


def nan_to_null(df, infinite: Collection[str] = ()):
    """NaN in floating columns becomes null: missing, as R's NA and pandas' NaN are; in the
    columns `infinite`, so do +inf and -inf (the option `inf_as_missing`)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    floats = {f.name for f in df.schema.fields if isinstance(f.dataType, (DoubleType, FloatType))}
    if not floats:
        return df
    return df.select(
        *[
            F.when(_missing_float(column(c), c in infinite), None).otherwise(column(c)).alias(c)
            if c in floats
            else column(c)
            for c in df.columns
        ]
    )


def _missing_float(value, infinite: bool):
    from pyspark.sql import functions as F

    if not infinite:
        return F.isnan(value)
    return F.isnan(value) | (value == F.lit(float("inf"))) | (value == F.lit(float("-inf")))


def with_row_id(df, id_column: str | None = None, name: str | None = None) -> tuple[Any, int]:
    """The DataFrame with `_row_id` (int64): from the id column if given (its keys checked:
    unique, non-null; `name` is the column's name for messages), else the row's position;
    and its number of rows (counted by the same small job).

    For Parquet files the position is (file order, row index in file), the same however
    Spark splits the files; files are spaced by their highest row index read, so that a
    filtered input's rows keep distinct ids (the ids then have gaps: blocks hash them). Rows
    read more than once (a self-union, a join) fall back to the partitions' order, which is
    stable for a given input and Spark configuration, as for every other source."""
    from pyspark.sql import functions as F

    if id_column:
        ided = df.withColumn(ROW_ID, key_row_id(df, id_column))
        return ided, _checked_id_rows(ided, id_column, name or id_column)
    if _has_row_index(df):
        meta = df.select(
            "*",
            F.col("_metadata.file_path").alias("__file"),
            F.col("_metadata.row_index").alias("__pos"),
        )
        files = meta.groupBy("__file").agg(F.count(F.lit(1)), F.max("__pos")).collect()
        if files and all(n <= top + 1 for _, n, top in files):
            offset = _offset_map({f: top + 1 for f, _, top in files})
            ided = meta.withColumn(ROW_ID, (offset[F.col("__file")] + F.col("__pos")).cast("long"))
            return ided.drop("__file", "__pos"), sum(n for _, n, _ in files)
    mid = df.withColumn("__mid", F.monotonically_increasing_id())
    part = F.shiftright(F.col("__mid"), 33)
    counts = dict(mid.groupBy(part.alias("p")).count().collect())
    if not counts:
        return mid.withColumn(ROW_ID, F.col("__mid")).drop("__mid"), 0
    offset = _offset_map(counts)
    low = F.col("__mid").bitwiseAND(F.lit((1 << 33) - 1))
    ided = mid.withColumn(ROW_ID, (offset[part] + low).cast("long")).drop("__mid")
    return ided, sum(counts.values())


def _has_row_index(df) -> bool:
    """Whether the rows come from files whose metadata has a row index (Parquet). Asked
    without a failing query where possible (CSV files have no row index, in-memory data no
    files); where the query fails (a union of reads has no `_metadata`), PySpark's log of
    the failed analysis, an ERROR with a stack trace though handled here, is kept quiet."""
    try:
        if not df.inputFiles():
            return False
        with _quiet_analysis_errors():
            fields = df.select("_metadata").schema["_metadata"].dataType.names
    except Exception:  # a source without file metadata
        return False
    return "row_index" in fields and "file_path" in fields


@contextlib.contextmanager
def _quiet_analysis_errors() -> Iterator[None]:
    """PySpark 4's logger of failed DataFrame analyses off for the block (Spark 3.5 has
    none)."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:
        yield
        return
    logger = PySparkLogger.getLogger("DataFrameQueryContextLogger")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def key_row_id(df, id_column: str):
    """The row id of an id column (`blocks.key_row_ids`): an integer key as it is, a string
    key's first 60 bits of SHA-256 (UTF-8), computed by Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    key = column(id_column)
    if isinstance(df.schema[id_column].dataType, StringType):
        return F.conv(F.substring(F.sha2(key, 256), 1, 15), 16, 10).cast("long")
    return key.cast("long")


def _checked_id_rows(ided, id_column: str, name: str) -> int:
    """The number of rows, counted with the id column's nulls and distinct keys and row
    ids (one job); a bad key is refused (`check_id_counts`)."""
    from pyspark.sql import functions as F

    from sparkmice.plan import check_id_counts

    key = column(id_column)
    row = ided.agg(
        F.count(F.lit(1)).alias("n"),
        F.count(key).alias("keys"),
        F.countDistinct(key).alias("distinct"),
        F.countDistinct(F.col(ROW_ID)).alias("ids"),
    ).first()
    check_id_counts(name, row["n"], row["n"] - row["keys"], row["distinct"], row["ids"])
    return int(row["n"])


def spark_schema_of(schema: pa.Schema):
    """The Spark schema for an Arrow schema (for mapInArrow's output)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _offset_map(counts: dict):
    """A literal map from each key to the sum of the counts of the keys sorted before it."""
    from pyspark.sql import functions as F

    pairs, total = [], 0
    for key in sorted(counts):
        pairs += [F.lit(key), F.lit(total)]
        total += counts[key]
    return F.create_map(*pairs)


def partition_keys(n: int) -> list[int]:
    """For each partition t < n, the smallest int whose Spark hash lands in partition t
    under `repartition(n, col)`: so that rows can be sent to chosen partitions without the
    sampling job of a range partitioning. Computed here (`spark_int_hash`), with no job."""
    keys: dict[int, int] = {}
    k = 0
    while len(keys) < n:
        keys.setdefault(spark_int_hash(k) % n, k)  # Python's % is Spark's pmod for n > 0
        k += 1
    return [keys[t] for t in range(n)]


def spark_int_hash(value: int) -> int:
    """Spark's `hash()` of an int column (Murmur3 x86 32-bit of the 4-byte int, seed 42),
    which hash partitioning uses; as a signed 32-bit int."""
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    k1 = rotl((value & mask) * 0xCC9E2D51 & mask, 15) * 0x1B873593 & mask
    h1 = (rotl(42 ^ k1, 13) * 5 + 0xE6546B64) & mask
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & mask
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & mask
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 >= 1 << 31 else h1
