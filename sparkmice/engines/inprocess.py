"""The in-process engine: the same sampler over blocks held in this process (pandas/Arrow
input). For small data and fast tests; results equal the Spark engines' for the same seed,
row ids and number of blocks."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice.blocks import Block, completed_table, key_row_ids, split_blocks
from sparkmice.config import MiceConfig
from sparkmice.engines.memory import freed_memory_kept
from sparkmice.io.run import ChainSink
from sparkmice.names import ROW_ID
from sparkmice.plan import (
    Plan,
    block_count,
    check_id_counts,
    check_rows,
    check_schema,
    check_unique_names,
    resolve,
)
from sparkmice.predictors import correlate_table
from sparkmice.progress import ProgressWriter, announce
from sparkmice.sampler import ChainTask, SweepReport
from sparkmice.summaries import summarize_arrow

log = logging.getLogger("sparkmice")

T = TypeVar("T")


class LocalBlocks:
    """A BlockSet whose blocks are all here: reduce is a fold in block order."""

    def __init__(self, blocks: list[Block]):
        self.blocks = blocks

    def reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        return functools.reduce(merge, (fn(b) for b in self.blocks))

    def update(self, fn: Callable[[Block], None]) -> None:
        for b in self.blocks:
            fn(b)


def run_chain(
    blocks: list[Block],
    plan: Plan,
    task: ChainTask,
    on_sweep: Callable[[SweepReport], None] | None = None,
) -> pa.Table:
    """Run one chain on copies of `blocks`; return its completed rows."""
    with freed_memory_kept():
        blocks = [copy.copy(b) for b in blocks]
        for b in blocks:
            b.values, b.cache = b.values.copy(order="F"), {}
        task.run(plan, LocalBlocks(blocks), on_sweep)
        return pa.concat_tables(completed_table(b, plan, task.chain) for b in blocks)


class InProcessEngine:
    """The engine for a pandas DataFrame or Arrow table (or, with engine 'inprocess', a
    Spark DataFrame collected to the driver): every chain runs here, one after another,
    and is written as soon as it is done."""

    name = "inprocess"

    def __init__(self, data: Any, cfg: MiceConfig):
        self.cfg = cfg
        self.table = arrow_input(data, cfg)
        self.notes: list[str] = []
        self.reports: list[SweepReport] = []

    def input_files(self) -> list[str]:
        return []

    def prepare(self) -> Plan:
        cfg, table = self.cfg, self.table
        skip = set(cfg.excluded()) | {ROW_ID} | ({cfg.id_column} if cfg.id_column else set())
        self.plan = resolve(
            table.schema.remove(table.schema.get_field_index(ROW_ID)),
            summarize_arrow(table, cfg.max_levels, skip),
            cfg,
            correlate_table(table, block_count(cfg, table.num_rows)),
        )
        return self.plan

    def run(
        self, tasks: list[ChainTask], sink: ChainSink | None, progress_uri: str | None
    ) -> list[pa.Table]:
        writer = ProgressWriter(progress_uri) if progress_uri else None

        def on_sweep(report: SweepReport) -> None:
            announce(report)
            self.reports.append(report)
            if writer is not None:
                writer(report)

        blocks = split_blocks(self.table, self.plan)
        tables = []
        for task in tasks:  # each chain written as soon as it is done
            done = run_chain(blocks, self.plan, task, on_sweep)
            if sink is not None:
                sink.write_table(task.chain, done)
            tables.append(done)
        return tables

    def close(self) -> None:
        pass


def arrow_input(data: Any, cfg: MiceConfig) -> pa.Table:
    """The input as an Arrow table with `_row_id` (the id column's keys, or positions),
    checked as the plan requires (schema, keys)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        check_unique_names(data.columns)  # before Arrow's own error listing every column
        check_rows(len(data))  # before a column of no rows is typed null
        data = pa.Table.from_pandas(data, preserve_index=False)
    elif not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data.toPandas(), preserve_index=False)
    check_schema(data.schema, cfg)
    kept = {*cfg.excluded(), cfg.id_column}  # carried through as they are
    data = _nan_to_null(data, set(data.column_names) - kept if cfg.inf_as_missing else set())
    if cfg.id_column:
        keys = data.column(cfg.id_column)
        ids = np.zeros(len(keys), dtype=np.int64)
        if not keys.null_count:
            ids = key_row_ids(keys)
        n_keys = len(pc.unique(keys.drop_null()))
        check_id_counts(cfg.id_column, len(keys), keys.null_count, n_keys, len(np.unique(ids)))
    else:
        ids = np.arange(data.num_rows, dtype=np.int64)
    return data.append_column(ROW_ID, pa.array(ids))


def _nan_to_null(table: pa.Table, infinite: set[str]) -> pa.Table:
    """NaN in floating columns becomes missing, as on Spark (`io.spark.nan_to_null`) and as
    pandas' NaN does; in the columns `infinite`, so do +inf and -inf (`inf_as_missing`)."""
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if not pa.types.is_floating(col.type):
            continue
        missing = pc.is_nan(col)
        if name in infinite:
            missing = pc.or_(missing, pc.is_inf(col))
        if pc.any(missing).as_py():
            table = table.set_column(i, name, pc.if_else(missing, None, col))
    return table
