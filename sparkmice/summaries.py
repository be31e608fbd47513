"""Column summaries for resolving a plan: counts, missing counts and the distinct values of
columns with few of them. One pass over an Arrow table, or one Spark job whose tasks
summarise their partitions (rows, or the barrier engine's packed rows)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

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
        levels = counts = None
        if n_distinct <= max_levels:
            values = distinct.to_pylist()
            levels = tuple(values if ordered else sorted(values))
            tally = pc.value_counts(pc.cast(col, col.type.value_type) if ordered else col)
            found = dict(
                zip(
                    tally.field("values").to_pylist(),
                    tally.field("counts").to_pylist(),
                    strict=True,
                )
            )
            counts = tuple(found.get(v, 0) for v in levels)
        field = table.schema.field(name)
        infinite = (pc.sum(pc.is_inf(col)).as_py() or 0) if pa.types.is_floating(col.type) else 0
        out.append(
            ColumnSummary(
                name,
                field.type,
                len(col),
                col.null_count,
                levels,
                n_distinct,
                ordered,
                counts,
                infinite,
            )
        )
    return out


def merge_summaries(a: ColumnSummary, b: ColumnSummary, max_levels: int) -> ColumnSummary:
    """The summary of two row sets' union: counts add, distinct values unite (while few)."""
    levels = counts = None
    if a.distinct is not None and b.distinct is not None:
        union = set(a.distinct) | set(b.distinct)
        if len(union) <= max_levels:
            levels = tuple(sorted(union))
            tally = dict.fromkeys(levels, 0)
            for s in (a, b):
                if s.distinct is None or s.counts is None:  # summaries carry both or neither
                    raise ValueError(f"summary of column {s.name!r} has no level counts")
                for v, c in zip(s.distinct, s.counts, strict=True):
                    tally[v] += c
            counts = tuple(tally[v] for v in levels)
    n_distinct = (
        len(levels) if levels is not None else max(a.n_distinct, b.n_distinct, max_levels + 1)
    )
    return ColumnSummary(
        a.name,
        a.type,
        a.n + b.n,
        a.n_missing + b.n_missing,
        levels,
        n_distinct,
        False,
        counts,
        a.n_infinite + b.n_infinite,
    )


def summarize_spark(
    df,
    max_levels: int,
    skip: set[str],
    unpack: Callable[[Iterator[pa.RecordBatch]], pa.Table] | None = None,
) -> list[ColumnSummary]:
    """One pass: every partition summarises its rows as `summarize_arrow` does and the
    driver merges the partitions' summaries (a single job, no wide SQL aggregation).
    `unpack`: for a DataFrame of packed rows, the function that makes a partition's
    batches a table of rows."""
    import pickle

    from sparkmice.io.spark import arrow_schema, column

    schema = arrow_schema(df.schema) if unpack is None else unpack(iter([])).schema
    names = [f.name for f in schema if f.name not in skip and supported_type(f.type)]
    if not names:
        return []
    sub = pa.schema([schema.field(n) for n in names])
    empty = summarize_arrow(sub.empty_table(), max_levels, set())

    def merge_all(parts) -> list[ColumnSummary]:
        return functools.reduce(
            lambda a, b: [merge_summaries(x, y, max_levels) for x, y in zip(a, b, strict=True)],
            parts,
            empty,
        )

    def task(batches):
        if unpack is None:
            tables = (pa.Table.from_batches([b], schema=sub) for b in batches)
        else:
            tables = iter([unpack(batches).select(names)])
        parts = (summarize_arrow(t, max_levels, set()) for t in tables)
        yield pa.RecordBatch.from_pydict({"s": [pickle.dumps(merge_all(parts))]})

    rows = (df if unpack else df.select(*[column(n) for n in names])).mapInArrow(task, "s binary")
    return merge_all(pickle.loads(r["s"]) for r in rows.collect())
