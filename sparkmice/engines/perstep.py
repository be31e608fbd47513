"""The per-step engine: for clusters without barrier support (dynamic allocation, fewer
slots than partitions). The sampler runs on the driver; every reduce is one Spark job that
sums per block (`mapInArrow`), every update a new cached state DataFrame. Same kernels,
same blocks, same random streams and merge order as the barrier engine, so the same
imputations; slower, because each exchange is a Spark job. Block sums reach the driver through
the typed codec of the exchange (`wire`), never as pickles."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from sparkmice.blocks import Block, block_of, completed_table, split_blocks
from sparkmice.engines import wire
from sparkmice.io.spark import AS_GIVEN, PositionalNames, as_table
from sparkmice.names import BLOCK, ROW_ID
from sparkmice.plan import Plan
from sparkmice.sampler import ChainTask, SweepReport

T = TypeVar("T")


def tag_function(input_schema: pa.Schema, n_blocks: int, task_keys: np.ndarray):
    """The mapInArrow function that adds each row's `_block` and the task of its block
    (`__task`: blocks go round-robin to the tasks), and its output schema."""
    schema = input_schema.append(pa.field(BLOCK, pa.int32())).append(
        pa.field("__task", pa.int32())
    )

    def tag(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            block = block_of(b.column(b.schema.get_field_index(ROW_ID)).to_numpy(), n_blocks)
            yield pa.RecordBatch.from_arrays(
                b.columns + [pa.array(block), pa.array(task_keys[block % len(task_keys)])],
                schema=schema,
            )

    return tag, schema


def _state_name(i: int) -> str:
    return f"__v{i}"


def _blocks(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, plan: Plan, names: PositionalNames
) -> list[Block]:
    """This partition's blocks (columns under their real `names`), with the current values
    from the state columns if present."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one core per task: BLAS threads would only contend
    table = as_table(batches, schema)
    states = [_state_name(v.index) for v in plan.variables]
    stateful = bool(states) and states[0] in schema.names
    blocks = split_blocks(names.to_real(table.drop_columns(states) if stateful else table), plan)
    if stateful:
        by_row = table.select([ROW_ID, BLOCK, *states])  # the rows in split_blocks' order
        order = np.lexsort((by_row.column(ROW_ID).to_numpy(), by_row.column(BLOCK).to_numpy()))
        by_row = by_row.take(pa.array(order))
        start = 0
        for b in blocks:
            rows = by_row.slice(start, len(b.row_id))
            start += len(b.row_id)
            b.values = np.asfortranarray(
                np.column_stack([rows.column(n).to_numpy() for n in states])
            )
    return blocks


def _with_state(b: Block, plan: Plan, names: PositionalNames) -> pa.Table:
    """The block's rows (columns named by position) and its current values."""
    src = names.to_positional(b.source)
    for v in plan.variables:
        src = src.append_column(_state_name(v.index), pa.array(b.values[:, v.index]))
    return src


def rows_function(schema: pa.Schema, names: PositionalNames):
    """A partition's batches -> its rows under their real names (for the column summaries)."""

    def rows(batches: Iterator[pa.RecordBatch]) -> pa.Table:
        return names.to_real(as_table(batches, schema))

    return rows


class SparkBlocks:
    """A BlockSet whose blocks live in a cached Spark DataFrame, one job per reduce."""

    def __init__(self, prepared, plan: Plan, names: PositionalNames):
        from sparkmice.io.spark import arrow_schema

        self.plan, self.names = plan, names
        self.prepared = prepared  # shared by the chains: cached and released by the caller
        self.state = prepared
        self.schema = arrow_schema(prepared.schema)
        # states this set cached, released once their successor exists
        self.previous: list[Any] = []

    def reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        plan, schema, names = self.plan, self.schema, self.names

        def task(batches):
            for b in _blocks(batches, schema, plan, names):
                yield pa.RecordBatch.from_pydict(
                    {"block": [b.index], "payload": [wire.encode(fn(b))]},
                    schema=pa.schema([("block", pa.int32()), ("payload", pa.binary())]),
                )

        rows = self.state.mapInArrow(task, "block int, payload binary").collect()
        for df in self.previous:
            df.unpersist()
        self.previous = []
        parts = sorted((r["block"], wire.decode(r["payload"])) for r in rows)
        return functools.reduce(merge, (v for _, v in parts))

    def update(self, fn: Callable[[Block], None]) -> None:
        from sparkmice.io.spark import spark_schema_of

        plan, schema, names = self.plan, self.schema, self.names

        def task(batches):
            for b in _blocks(batches, schema, plan, names):
                fn(b)
                yield from _with_state(b, plan, names).to_batches()

        kept = [n for n in schema.names if not n.startswith("__v")]
        out_schema = pa.schema(
            [schema.field(n) for n in kept]
            + [pa.field(_state_name(v.index), pa.float64()) for v in plan.variables]
        )
        self._retire(self.state)
        self.state = self.state.mapInArrow(task, spark_schema_of(out_schema)).cache()
        self.schema = out_schema

    def checkpoint(self) -> None:
        """Cut the lineage once per sweep so plans stay short."""
        old, self.state = self.state, self.state.localCheckpoint(eager=True)
        self._retire(old)
        for df in self.previous:  # the checkpoint holds the data now
            df.unpersist()
        self.previous = []

    def _retire(self, df) -> None:
        if df is not self.prepared:
            self.previous.append(df)

    def completed(self, chain: int):
        plan, schema, names = self.plan, self.schema, self.names

        def task(batches):
            for b in _blocks(batches, schema, plan, names):
                yield from names.to_positional(completed_table(b, plan, chain)).to_batches()

        return task


def run_chain(
    prepared,
    plan: Plan,
    task: ChainTask,
    output_schema,
    on_sweep: Callable[[SweepReport], None] | None = None,
    names: PositionalNames = AS_GIVEN,
):
    """Run one chain with the driver in charge; returns the completed rows' DataFrame
    (columns named by position, `names`)."""
    blocks = SparkBlocks(prepared, plan, names)

    def after_sweep(report: SweepReport) -> None:
        blocks.checkpoint()
        if on_sweep is not None:
            on_sweep(report)

    task.run(plan, blocks, after_sweep)
    return blocks.state.mapInArrow(blocks.completed(task.chain), output_schema)
