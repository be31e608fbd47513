"""Column summaries for resolving a plan: counts, missing counts and the distinct values of
columns with few of them. One pass over an Arrow table, or one Spark job whose tasks
summarise their partitions (rows, or the barrier engine's packed rows)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
            distinct = _distinct(col, max_levels)
        n_distinct = len(distinct)
        levels = counts = None
        values = _as_python(distinct) if n_distinct <= max_levels else None
        if values is not None:
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


PREFIX_ROWS = 10_000


def _distinct(col: pa.ChunkedArray, max_levels: int) -> pa.Array:
    """The distinct observed values. Of a floating column whose first `PREFIX_ROWS` observed
    values already hold more than `max_levels`, only those: enough to know it is continuous
    (then `n_distinct` is a lower bound), without hashing every row (at 10^6 rows, ~1 s of
    the plan's pass)."""
    observed = col.drop_null()
    if pa.types.is_floating(col.type) and len(observed) > PREFIX_ROWS:
        head = pc.unique(observed.slice(0, PREFIX_ROWS))
        if len(head) > max_levels:
            return head
    return pc.unique(observed)


def _as_python(distinct: pa.Array) -> list[Any] | None:
    """The values as Python objects; None for dates or timestamps beyond Python's years
    1-9999 (most often a wrong unit: nanoseconds labelled microseconds), whose column is
    then summarised as one of many values: carried through, or imputed as numbers."""
    try:
        return distinct.to_pylist()
    except (OverflowError, ValueError):
        return None


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


def summarised(schema: pa.Schema, skip: set[str]) -> pa.Schema:
    """The columns of `schema` that get a summary: those of supported types not in `skip`."""
    return pa.schema([f for f in schema if f.name not in skip and supported_type(f.type)])


def table_summaries(table: pa.Table, max_levels: int, skip: set[str]) -> bytes:
    """`summarize_arrow` encoded for the driver (`encode_summaries`): what a task sends."""
    return encode_summaries(summarize_arrow(table, max_levels, skip))


def merge_encoded(
    parts: Iterable[bytes], schema: pa.Schema, max_levels: int
) -> list[ColumnSummary]:
    """The summaries of the columns of `schema` over the union of the row sets whose
    encoded summaries are `parts` (typed by the driver's `schema`; nothing is unpickled)."""
    return _merge_all((decode_summaries(p, schema) for p in parts), schema, max_levels)


def _merge_all(
    parts: Iterable[list[ColumnSummary]], schema: pa.Schema, max_levels: int
) -> list[ColumnSummary]:
    return functools.reduce(
        lambda a, b: [merge_summaries(x, y, max_levels) for x, y in zip(a, b, strict=True)],
        parts,
        summarize_arrow(schema.empty_table(), max_levels, set()),
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
    batches a table of rows. The tasks' summaries reach the driver as Arrow IPC (typed
    values; nothing received is unpickled)."""
    from sparkmice.io.spark import arrow_schema, as_table, column

    sub = summarised(arrow_schema(df.schema) if unpack is None else unpack(iter([])).schema, skip)
    names = sub.names
    if not names:
        return []

    def task(batches):
        if unpack is None:
            tables = (as_table([b], sub) for b in batches)
        else:
            tables = iter([unpack(batches).select(names)])
        parts = (summarize_arrow(t, max_levels, set()) for t in tables)
        yield pa.RecordBatch.from_pydict(
            {"s": [encode_summaries(_merge_all(parts, sub, max_levels))]}
        )

    rows = (df if unpack else df.select(*[column(n) for n in names])).mapInArrow(task, "s binary")
    return merge_encoded((r["s"] for r in rows.collect()), sub, max_levels)


_SUMMARY_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("n", pa.int64()),
        ("n_missing", pa.int64()),
        ("n_distinct", pa.int64()),
        ("ordered", pa.bool_()),
        ("n_infinite", pa.int64()),
        ("distinct", pa.binary()),  # Arrow IPC of the values in the column's type, or null
        ("counts", pa.list_(pa.int64())),
    ]
)


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def encode_summaries(summaries: list[ColumnSummary]) -> bytes:
    """Summaries as one Arrow IPC stream (the distinct values typed as their column)."""
    rows = [
        {
            "name": s.name, "n": s.n, "n_missing": s.n_missing, "n_distinct": s.n_distinct,
            "ordered": s.ordered, "n_infinite": s.n_infinite,
            "distinct": None if s.distinct is None else _ipc(
                pa.table({"v": pa.array(list(s.distinct), _value_type(s.type))})
            ),
            "counts": None if s.counts is None else list(s.counts),
        }
        for s in summaries
    ]  # fmt: skip
    return _ipc(pa.Table.from_pylist(rows, schema=_SUMMARY_SCHEMA))


def decode_summaries(data: bytes, schema: pa.Schema) -> list[ColumnSummary]:
    """The inverse of `encode_summaries`; column types come from `schema` (the driver's)."""
    table = pa.ipc.open_stream(data).read_all()
    if not table.schema.equals(_SUMMARY_SCHEMA):
        raise ValueError("a task's column summaries are not in the expected layout")
    out = []
    for row in table.to_pylist():
        field = schema.field(row["name"])
        distinct = None
        if row["distinct"] is not None:
            values = pa.ipc.open_stream(row["distinct"]).read_all().column("v")
            if not values.type.equals(_value_type(field.type)):
                raise ValueError(f"summary of column {row['name']!r} has values of another type")
            distinct = tuple(values.to_pylist())
        counts = None if row["counts"] is None else tuple(row["counts"])
        out.append(
            ColumnSummary(
                row["name"], field.type, row["n"], row["n_missing"], distinct,
                row["n_distinct"], row["ordered"], counts, row["n_infinite"],
            )  # fmt: skip
        )
    return out
