"""The barrier engine: each chain is one Spark barrier job.

Every task loads its partition's blocks into numpy once and runs the whole chain (the same
`sampler.Chain` as in-process), exchanging only sums with the other tasks at each step
(`exchange`). Its output rows are the chain's completed table, which the caller writes
straight to the chain's `_imputation=k` partition. See DESIGN.md §3 for the measurements
behind this choice.

A chain may also run as one task over all partitions (`solo`): then nothing is exchanged,
and no barrier is needed, so several such chains share the slots. Blocks, not tasks, define
the result, so both ways give the same imputations.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pyarrow as pa

from sparkmice.blocks import completed_table, split_blocks
from sparkmice.engines.exchange import ExchangedBlocks, TaskExchange
from sparkmice.engines.inprocess import LocalBlocks
from sparkmice.plan import Plan
from sparkmice.progress import ProgressWriter
from sparkmice.sampler import ChainTask


def chain_function(
    plan: Plan, task: ChainTask, input_schema: pa.Schema, progress_uri: str, solo: bool
):
    """The mapInArrow function of one chain (a fresh authkey per job)."""
    authkey = secrets.token_bytes(32)
    timeout = plan.config.exchange_timeout

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # one core per task: BLAS threads would only contend
        table = pa.Table.from_batches(list(batches), schema=input_schema)
        blocks = split_blocks(table, plan)
        if solo:
            task.run(plan, LocalBlocks(blocks), ProgressWriter(progress_uri))
        else:
            from pyspark import BarrierTaskContext

            with TaskExchange(BarrierTaskContext.get(), authkey, timeout) as exchange:
                reporter = ProgressWriter(progress_uri) if exchange.rank == 0 else None
                task.run(plan, ExchangedBlocks(blocks, exchange), reporter)
        for b in blocks:
            yield from completed_table(b, plan, task.chain).to_batches()

    return run


def run_chain(
    prepared, plan: Plan, task: ChainTask, output_schema, progress_uri: str, solo: bool = False
):
    """The lazy DataFrame of one chain's completed rows: one barrier stage over the
    prepared partitions, or with `solo` one plain task over all of them."""
    from sparkmice.io.spark import arrow_schema

    fn = chain_function(plan, task, arrow_schema(prepared.schema), progress_uri, solo)
    if solo:
        return prepared.coalesce(1).mapInArrow(fn, output_schema)
    return prepared.mapInArrow(fn, output_schema, barrier=True)
