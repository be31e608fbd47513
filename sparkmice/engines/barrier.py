"""The barrier engine: each chain is one Spark barrier job.

Every task loads its partition's blocks into numpy once and runs the whole chain (the same
`sampler.Chain` as in-process), exchanging only sums with the other tasks at each step
(`exchange`). At the end the tasks write the chain's completed rows as files of one attempt,
in the run's file format (`sparkmice.io.run.write_part`), for the driver to check and commit
as chain k (or, for Spark's own Delta writer, return them as rows). README, "Performance",
gives the measurements behind this choice.

A chain may also run as one task over all partitions (`solo`): then nothing is exchanged,
and no barrier is needed, so several such chains share the slots. Blocks, not tasks, define
the result, so both ways give the same imputations.

The input reaches the tasks packed (`pack_function`): each input partition's rows of a block
as Arrow IPC streams in binary values, so a chain's task receives its blocks as a few
hundred values instead of row by row (measured at 10^6 rows: 1.3 s -> 0.5 s per chain).
The same pass summarises its rows for the plan: one more value per input partition, in
`__summary` (`packed_summaries` reads them from the cache without a Python pass).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from sparkmice.blocks import block_of, completed_table, split_blocks
from sparkmice.engines.exchange import ExchangedBlocks, TaskExchange
from sparkmice.engines.inprocess import LocalBlocks
from sparkmice.engines.memory import freed_memory_kept
from sparkmice.io.run import WRITTEN_SCHEMA, Attempt, written_batch
from sparkmice.io.spark import AS_GIVEN, PositionalNames, as_table, spark_schema_of
from sparkmice.names import BLOCK, ROW_ID
from sparkmice.plan import ColumnSummary, Plan
from sparkmice.progress import ProgressWriter
from sparkmice.sampler import ChainTask
from sparkmice.summaries import merge_encoded

PACKED_SCHEMA = pa.schema(
    [("__task", pa.int32()), ("__rows", pa.binary()), ("__summary", pa.binary())]
)


def packed_value_bytes(records_per_batch: int) -> int:
    """Bytes of rows in one packed value: Spark hands Python up to `records_per_batch`
    values (spark.sql.execution.arrow.maxRecordsPerBatch) in one Arrow batch, whose binary
    column must stay under 2 GiB however large the task's input. Half of that is left for
    each value's IPC framing (a few KB), enough up to 10^5 records per batch; at most 64 MiB."""
    return max(1, min(64 << 20, (1 << 30) // max(records_per_batch, 1)))


def pack_function(
    input_schema: pa.Schema,
    n_blocks: int,
    task_keys: np.ndarray,
    value_bytes: int,
    names: PositionalNames = AS_GIVEN,
    summarize: Callable[[pa.Table], bytes] | None = None,
):
    """The mapInArrow function that packs an input partition, and its output schema: its
    rows of each block (with `_block`, the columns under their real `names`) as Arrow IPC
    streams of about `value_bytes` each (`__rows`), keyed (`__task`) for the task of the
    block: blocks go round-robin to the tasks. With `summarize`, first one value
    `__summary`: what it makes of the partition's rows (the plan's column summaries)."""

    def pack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        table = names.to_real(as_table(batches, input_schema))
        if table.num_rows == 0:
            return
        if summarize is not None:
            yield pa.RecordBatch.from_pydict(
                {"__task": [int(task_keys[0])], "__rows": [None], "__summary": [summarize(table)]},
                schema=PACKED_SCHEMA,
            )
        block = block_of(table.column(ROW_ID).to_numpy(), n_blocks)
        order = np.argsort(block, kind="stable")  # rows grouped by block, then sliced
        table = table.append_column(BLOCK, pa.array(block)).take(pa.array(order))
        table, block = table.combine_chunks(), block[order]
        rows_per_value = max(1, value_bytes * table.num_rows // max(table.nbytes, 1))
        starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
        for start, end in zip(starts, [*starts[1:], len(block)], strict=True):
            key = int(task_keys[block[start] % len(task_keys)])
            for lo in range(start, end, rows_per_value):
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table.slice(lo, min(rows_per_value, end - lo)))
                yield pa.RecordBatch.from_arrays(
                    [pa.array([key], pa.int32()), _binary_value(sink.getvalue()), _NO_SUMMARY],
                    schema=PACKED_SCHEMA,
                )

    return pack, PACKED_SCHEMA


_NO_SUMMARY = pa.nulls(1, pa.binary())


def _binary_value(buffer: pa.Buffer) -> pa.Array:
    """A one-value binary array over `buffer`, without copying it."""
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, buffer])


def unpack_function(schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], pa.Table]:
    """A partition's packed batches -> one table of its rows (`schema`: the input's columns
    and `_block`); summary values are skipped."""

    def unpack(batches: Iterator[pa.RecordBatch]) -> pa.Table:
        parts = [
            pa.ipc.open_stream(value.as_buffer()).read_all()
            for batch in batches
            for value in batch.column("__rows")
            if value.is_valid
        ]
        return pa.concat_tables(parts) if parts else schema.empty_table()

    return unpack


def packed_summaries(prepared, schema: pa.Schema, max_levels: int) -> list[ColumnSummary]:
    """The column summaries that `pack_function(summarize=summaries.table_summaries(...))`
    left in the cached packed rows, merged (`schema`: the summarised columns): a filter
    over the cache, no Python worker."""
    from pyspark.sql import functions as F

    rows = prepared.where(F.col("__summary").isNotNull()).select("__summary").collect()
    return merge_encoded((r[0] for r in rows), schema, max_levels)


def chain_function(
    plan: Plan,
    task: ChainTask,
    input_schema: pa.Schema,
    progress_uri: str,
    solo: bool,
    write_to: tuple[str, Attempt] | None,
    names: PositionalNames,
):
    """The mapInArrow function of one chain (a fresh exchange key per job, reaching the
    tasks inside this function over Spark's own channel). With `write_to` (a run folder and
    an attempt), each task writes its completed rows as that attempt's file and returns
    only their count and schema; else it returns them, the columns named by position
    (`names`)."""
    job_key = secrets.token_bytes(32)
    timeout = plan.config.exchange_timeout
    unpack = unpack_function(input_schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one core per task: BLAS threads would only contend
        with freed_memory_kept():  # the whole task: unpacking, sweeps and writing
            blocks = split_blocks(unpack(batches), plan)
            if solo:
                task.run(plan, LocalBlocks(blocks), ProgressWriter(progress_uri))
            else:
                from pyspark import BarrierTaskContext

                with TaskExchange(BarrierTaskContext.get(), job_key, timeout) as exchange:
                    reporter = ProgressWriter(progress_uri) if exchange.rank == 0 else None
                    task.run(plan, ExchangedBlocks(blocks, exchange), reporter)
            tables = [completed_table(b, plan, task.chain) for b in blocks]
            if write_to is None:
                for t in tables:
                    yield from names.to_positional(t).to_batches()
                return
            from pyspark import TaskContext

            root, attempt = write_to
            context = TaskContext.get()
            if context is None:
                raise RuntimeError("chain parts are written only inside a Spark task")
            yield written_batch(root, attempt, context.partitionId(), tables)

    return run


def run_chain(
    prepared,
    input_schema: pa.Schema,
    plan: Plan,
    task: ChainTask,
    output_schema,
    progress_uri: str,
    solo: bool = False,
    write_to: tuple[str, Attempt] | None = None,
    names: PositionalNames = AS_GIVEN,
):
    """The lazy DataFrame of one chain: one barrier stage over the packed partitions
    (`input_schema`: the rows' columns and `_block`), or with `solo` one plain task over
    all of them. Its rows are the chain's completed rows (`output_schema`), or with
    `write_to` what its tasks wrote as the attempt's files (`WRITTEN_SCHEMA`; written by
    the tasks themselves: twice as fast as handing the rows to Spark's writer)."""
    fn = chain_function(plan, task, input_schema, progress_uri, solo, write_to, names)
    schema = output_schema if write_to is None else spark_schema_of(WRITTEN_SCHEMA)
    if solo:
        return prepared.coalesce(1).mapInArrow(fn, schema)
    return prepared.mapInArrow(fn, schema, barrier=True)
