"""Column summaries for resolving a plan: counts, missing counts and the distinct values of
columns with few of them. One pass over an Arrow table, or two small aggregations on Spark."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sparkmice.plan import ColumnSummary, supported_type


def summarize_arrow(table: pa.Table, max_levels: int, skip: set[str]) -> list[ColumnSummary]:
    out = []
    for name in table.column_names:
        col = table.column(name)
        if name in skip or not supported_type(col.type):
            continue
        ordered = pa.types.is_dictionary(col.type) and col.type.ordered
        if ordered:  # every category, in the categorical's own order
            distinct = col.chunks[0].dictionary if col.num_chunks else pa.array([])
        else:
            if pa.types.is_dictionary(col.type):
                col = pc.cast(col, col.type.value_type)
            distinct = pc.unique(col.drop_null())
        n_distinct = len(distinct)
        levels = None
        if n_distinct <= max_levels:
            values = distinct.to_pylist()
            levels = tuple(values if ordered else sorted(values))
        field = table.schema.field(name)
        out.append(
            ColumnSummary(name, field.type, len(col), col.null_count, levels, n_distinct, ordered)
        )
    return out


def summarize_spark(
    df, max_levels: int, skip: set[str], categorical: set[str] = frozenset()
) -> list[ColumnSummary]:
    """Two aggregation jobs. First: counts; minimum and maximum of numbers; approximate
    distinct counts of strings and booleans. Second: whether a number takes a value other
    than its minimum and maximum (two values = binary), and the exact levels of the columns
    that may be categorical (at most max_levels + 1 each). Numbers declared categorical in
    `categorical` get their levels too."""
    from pyspark.sql import functions as F

    from sparkmice.io.spark import arrow_schema

    schema = arrow_schema(df.schema)
    names = [f.name for f in schema if f.name not in skip and supported_type(f.type)]
    if not names:
        return []
    numeric = {n for n in names if _numeric(schema.field(n).type)}
    aggs = [F.count(F.lit(1)).alias("__n")]
    for i, n in enumerate(names):
        c = F.col(f"`{n}`")
        aggs.append(F.count(c).alias(f"c{i}"))
        if n in numeric:
            aggs += [F.min(c).alias(f"lo{i}"), F.max(c).alias(f"hi{i}")]
        if n not in numeric or n in categorical:
            aggs.append(F.approx_count_distinct(c, 0.01).alias(f"d{i}"))
    row = df.agg(*aggs).first()
    total = int(row["__n"])

    second = []
    for i, n in enumerate(names):
        c = F.col(f"`{n}`")
        if n in numeric and row[f"lo{i}"] is not None:
            other = (c != F.lit(row[f"lo{i}"])) & (c != F.lit(row[f"hi{i}"]))
            second.append(F.max(F.when(other, 1).otherwise(0)).alias(f"o{i}"))
        if (n not in numeric or n in categorical) and row[f"d{i}"] <= max_levels * 1.1 + 10:
            levels = F.array_sort(F.collect_set(c))
            second.append(F.slice(levels, 1, max_levels + 1).alias(f"s{i}"))
    srow = df.agg(*second).first().asDict() if second else {}

    out = []
    for i, n in enumerate(names):
        n_missing = total - int(row[f"c{i}"])
        if f"s{i}" in srow and len(srow[f"s{i}"]) <= max_levels:
            levels = tuple(srow[f"s{i}"])
            n_distinct = len(levels)
        elif n in numeric and f"o{i}" in srow and srow[f"o{i}"] == 0:
            lo, hi = row[f"lo{i}"], row[f"hi{i}"]
            levels = (lo,) if lo == hi else (lo, hi)
            n_distinct = len(levels)
        elif n in numeric and f"s{i}" not in srow:
            levels, n_distinct = None, 3  # more than two values: continuous
        else:
            levels, n_distinct = None, max_levels + 1
        out.append(ColumnSummary(n, schema.field(n).type, total, n_missing, levels, n_distinct))
    return out


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
