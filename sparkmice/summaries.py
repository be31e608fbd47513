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
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        distinct = pc.unique(col.drop_null())
        n_distinct = len(distinct)
        levels = tuple(sorted(distinct.to_pylist())) if n_distinct <= max_levels else None
        out.append(ColumnSummary(name, table.schema.field(name).type, len(col), col.null_count,
                                 levels, n_distinct))
    return out


def summarize_spark(df, max_levels: int, skip: set[str]) -> list[ColumnSummary]:
    """Two aggregation jobs: counts and approximate distinct counts, then the exact distinct
    values of the columns that may be categorical (never more than max_levels + 1 each)."""
    from pyspark.sql import functions as F

    from sparkmice.io.spark import arrow_schema

    schema = arrow_schema(df.schema)
    names = [f.name for f in schema if f.name not in skip and supported_type(f.type)]
    if not names:
        return []
    aggs = [F.count(F.lit(1)).alias("__n")]
    for i, n in enumerate(names):
        c = F.col(f"`{n}`")
        aggs += [F.count(c).alias(f"c{i}"), F.approx_count_distinct(c, 0.01).alias(f"d{i}")]
    row = df.agg(*aggs).first()
    total = int(row["__n"])
    # a column can only be categorical with few distinct values: fetch those exactly
    few = [i for i, _ in enumerate(names) if row[f"d{i}"] <= max_levels * 1.1 + 10]
    exact: dict[int, list] = {}
    if few:
        sets = [
            F.slice(F.array_sort(F.collect_set(F.col(f"`{names[i]}`"))), 1, max_levels + 1).alias(
                f"s{i}"
            )
            for i in few
        ]
        srow = df.agg(*sets).first()
        exact = {i: list(srow[f"s{i}"]) for i in few}
    out = []
    for i, n in enumerate(names):
        vals = exact.get(i)
        if vals is not None and len(vals) <= max_levels:
            levels, n_distinct = tuple(vals), len(vals)
        else:
            levels, n_distinct = None, max(int(row[f"d{i}"]), max_levels + 1)
        out.append(ColumnSummary(n, schema.field(n).type, total, total - int(row[f"c{i}"]),
                                 levels, n_distinct))
    return out
