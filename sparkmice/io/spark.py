"""Spark-side input: reading paths and tables, Arrow schemas, stable row ids."""

from __future__ import annotations

import pyarrow as pa

from sparkmice.blocks import ROW_ID


def arrow_schema(spark_schema) -> pa.Schema:
    """The Arrow schema Spark's mapInArrow hands to Python for this Spark schema."""
    from pyspark.sql.pandas.types import to_arrow_schema

    try:
        return to_arrow_schema(spark_schema, prefers_large_types=False)
    except TypeError:  # pyspark 3.5 has no prefers_large_types
        return to_arrow_schema(spark_schema)
    except Exception:
        return pa.schema([_arrow_field(f) for f in spark_schema.fields])


def _arrow_field(f) -> pa.Field:
    """Fields of types Arrow conversion refuses (e.g. intervals): kept opaque for errors."""
    try:
        from pyspark.sql.pandas.types import to_arrow_type

        return pa.field(f.name, to_arrow_type(f.dataType), nullable=True)
    except Exception:
        return pa.field(f.name, pa.null())


def read_input(spark, source: str):
    """A Parquet or CSV path, or a catalog table name, as a Spark DataFrame.

    CSV: header row, types inferred by Spark, `NA` and empty cells missing."""
    from pyspark.sql import functions as F

    lowered = source.lower().rstrip("/")
    if lowered.endswith(".csv"):
        df = spark.read.csv(source, header=True, inferSchema=True, nullValue="NA")
        strings = [f.name for f in df.schema.fields if f.dataType.typeName() == "string"]
        return df.select(
            *[
                F.when(F.col(f"`{c}`") == "", None).otherwise(F.col(f"`{c}`")).alias(c)
                if c in strings
                else F.col(f"`{c}`")
                for c in df.columns
            ]
        )
    if lowered.endswith(".parquet") or "/" in source or source.startswith("."):
        return spark.read.parquet(source)
    return spark.table(source)


def with_row_id(df, id_column: str | None = None):
    """Add `_row_id` (int64): the id column if given, else the row's position.

    For Parquet files the position is (file order, row index in file), the same however
    Spark splits the files; otherwise it follows the input's partitions in order, which is
    stable for a given input and Spark configuration. Returns the DataFrame with `_row_id`."""
    from pyspark.sql import functions as F

    if id_column:
        return df.withColumn(ROW_ID, F.col(f"`{id_column}`").cast("long"))
    try:
        meta = df.select("*", F.col("_metadata.file_path").alias("__file"),
                         F.col("_metadata.row_index").alias("__pos"))
        files = [r[0] for r in meta.select("__file").distinct().collect()]
    except Exception:
        meta, files = None, []
    if meta is not None and files:
        counts = dict(meta.groupBy("__file").count().collect())
        offsets, total = {}, 0
        for f in sorted(files):
            offsets[f] = total
            total += counts[f]
        offset = F.create_map(*[x for f in sorted(files) for x in (F.lit(f), F.lit(offsets[f]))])
        return meta.withColumn(ROW_ID, (offset[F.col("__file")] + F.col("__pos")).cast("long")
                               ).drop("__file", "__pos")
    mid = df.withColumn("__mid", F.monotonically_increasing_id())
    part = F.shiftright(F.col("__mid"), 33)
    counts = dict(mid.groupBy(part.alias("p")).count().collect())
    offsets, total = {}, 0
    for p in sorted(counts):
        offsets[p] = total
        total += counts[p]
    if not offsets:
        return mid.withColumn(ROW_ID, F.col("__mid")).drop("__mid")
    offset = F.create_map(*[x for p in sorted(offsets) for x in (F.lit(p), F.lit(offsets[p]))])
    low = F.col("__mid").bitwiseAND(F.lit((1 << 33) - 1))
    return mid.withColumn(ROW_ID, (offset[part] + low).cast("long")).drop("__mid")


def spark_schema_of(schema: pa.Schema):
    """The Spark schema for an Arrow schema (for mapInArrow's output)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)
