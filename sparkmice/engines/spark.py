"""Spark runs: read the input once, choose the barrier or per-step engine, lay the chains
out on the slots and run them, each chain handed to the run folder's sink.

The input is read once: row ids (with the row count) first, then one shuffle that sends
each block to its task (packed for the barrier engine), cached; the plan's column
summaries come from the pass that packs (barrier: read back from the cache with no
Python pass) or from one pass over the cache (per-step). Inside Spark the columns are
named by position (`PositionalNames`); the tasks, the plan and the output use the real
names.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sparkmice.blocks import REPEATED_ROWS
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.engines import barrier, perstep
from sparkmice.io.run import Attempt, ChainSink, Written, written_by
from sparkmice.io.spark import (
    PositionalNames,
    arrow_schema,
    nan_to_null,
    partition_keys,
    spark_schema_of,
    with_row_id,
)
from sparkmice.names import BLOCK, IMPUTATION, ROW_ID
from sparkmice.plan import InputError, Plan, block_count, check_schema, resolve
from sparkmice.predictors import correlate_spark
from sparkmice.progress import ProgressPrinter, ProgressWriter
from sparkmice.sampler import ChainTask, SweepReport
from sparkmice.summaries import summarised, summarize_spark, table_summaries

log = logging.getLogger("sparkmice")


class SparkEngine:
    """The barrier engine (default) or the per-step one where barrier jobs cannot run."""

    def __init__(self, df: Any, cfg: MiceConfig):
        check_schema(arrow_schema(df.schema), cfg)  # before any Spark job
        self.df, self.cfg, self.spark = df, cfg, df.sparkSession
        self.name, reason = choose_engine(self.spark, cfg)
        self.notes = [reason]
        self.reports: list[SweepReport] = []  # Spark runs keep them in the run folder
        self.prepared = None

    def input_files(self) -> list[str]:
        """The files the DataFrame reads (metadata only; none for tables in memory)."""
        try:
            return list(self.df.inputFiles())
        except Exception:  # a source that cannot list its files
            return []

    def prepare(self) -> Plan:
        from sparkmice.session import slots

        cfg, spark = self.cfg, self.spark
        t0 = time.perf_counter()
        names = PositionalNames(tuple(self.df.columns))  # Spark sees positions; tasks, names
        df = names.spark_positional(self.df)
        id_column = names.of(cfg.id_column) if cfg.id_column else None
        kept = set(cfg.excluded()) | {cfg.id_column}  # carried through as they are
        infinite = [names.of(c) for c in names.names if cfg.inf_as_missing and c not in kept]
        with _python_workers_starting(spark, slots(spark)):  # while the rows are counted
            df, n_rows = with_row_id(df, id_column, cfg.id_column)
            df = nan_to_null(df, infinite)
        input_schema = arrow_schema(df.schema)  # positional
        real_schema = names.real_schema(input_schema)
        n_blocks = block_count(cfg, n_rows)
        self.layout = layout_chains(
            cfg, n_rows, n_blocks, slots(spark), cfg.chain_numbers(), self.name
        )
        log.info(
            f"{n_rows} rows, {n_blocks} blocks, engine {self.name} ({self.notes[0]}), "
            f"{self.layout}"
        )
        # blocks go round-robin to the tasks (one shuffle, no sampling job), cached
        keys = np.array(partition_keys(self.layout.partitions), dtype=np.int32)
        self.block_schema = real_schema.append(pa.field(BLOCK, pa.int32()))
        skip = set(cfg.excluded()) | {ROW_ID, BLOCK} | ({cfg.id_column} if cfg.id_column else set())
        if self.name == "barrier":  # the pass that packs the rows also summarises them
            records = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
            value_bytes = barrier.packed_value_bytes(int(records))
            summarize = functools.partial(table_summaries, max_levels=cfg.max_levels, skip=skip)
            tag, tagged_schema = barrier.pack_function(
                input_schema, n_blocks, keys, value_bytes, names, summarize
            )
            unpack = barrier.unpack_function(self.block_schema)
        else:
            tag, tagged_schema = perstep.tag_function(input_schema, n_blocks, keys)
            unpack = perstep.rows_function(input_schema.append(pa.field(BLOCK, pa.int32())), names)
        self.prepared = (
            df.mapInArrow(tag, spark_schema_of(tagged_schema))
            .repartition(self.layout.partitions, "__task")
            .drop("__task")
            .cache()
        )
        if self.name == "barrier":
            summaries = barrier.packed_summaries(
                self.prepared, summarised(self.block_schema, skip), cfg.max_levels
            )
        else:
            summaries = summarize_spark(self.prepared, cfg.max_levels, skip, unpack)
        self.plan = resolve(
            real_schema.remove(real_schema.get_field_index(ROW_ID)),
            summaries,
            cfg,
            correlate_spark(self.prepared, unpack),
        )
        self.names = names
        self.out_schema = spark_schema_of(
            pa.schema(
                [f for f in input_schema if f.name != ROW_ID]
                + [pa.field(ROW_ID, pa.int64()), pa.field(IMPUTATION, pa.int32())]
            )
        )
        log.info(f"input read and plan resolved in {time.perf_counter() - t0:.1f} s")
        return self.plan

    def run(
        self, tasks: list[ChainTask], sink: ChainSink | None, progress_uri: str | None
    ) -> list[pa.Table]:
        if sink is None or progress_uri is None:
            raise ValueError("Spark runs write their chains: give a sink and a progress folder")
        layout = self.layout
        printer = ProgressPrinter(progress_uri, [t.chain for t in tasks])

        def run_one(task: ChainTask, solo: bool) -> None:
            t = time.perf_counter()
            with _input_errors_of_tasks():
                self._run_chain(task, solo, sink, progress_uri)
            printer.poll()  # the chain's last sweeps before the line that it is written
            log.info(f"chain {task.chain} written in {time.perf_counter() - t:.1f} s")

        def run_all(chains: tuple[int, ...], solo: bool, at_once: int) -> None:
            group = [t for t in tasks if t.chain in chains]
            if at_once > 1 and len(group) > 1:
                with ThreadPoolExecutor(max_workers=min(at_once, len(group))) as pool:
                    list(pool.map(lambda t: run_one(t, solo), group))
            else:
                for task in group:
                    run_one(task, solo)

        with printer:
            run_all(layout.solo, True, layout.solo_at_once)
            run_all(layout.spread, False, layout.spread_at_once)
        return []

    def _run_chain(self, task: ChainTask, solo: bool, sink: ChainSink, progress: str) -> None:
        """One chain as one Spark job: barrier tasks write its files themselves, unless the
        format takes rows (Spark's Delta writer); the per-step engine hands Spark its rows."""
        k, plan, names = task.chain, self.plan, self.names
        describe_job(self.spark, f"sparkmice chain {k} of {self.cfg.m} ({self.name})")
        chain_args = (self.prepared, self.block_schema, plan, task, self.out_schema, progress)
        if self.name == "barrier" and not sink.writes_dataframes(self.spark):

            def write(attempt: Attempt) -> Written:
                reports = barrier.run_chain(
                    *chain_args, solo, (sink.run.root, attempt), names
                ).collect()
                return written_by(reports)

            sink.write_files(k, write)
        else:
            if self.name == "barrier":
                out = barrier.run_chain(*chain_args, solo, None, names)
            else:
                out = perstep.run_chain(
                    self.prepared, plan, task, self.out_schema, ProgressWriter(progress), names
                )
            sink.write_dataframe(k, names.spark_real(out), self.spark)

    def close(self) -> None:
        if self.prepared is not None:
            self.prepared.unpersist()


@dataclass(frozen=True)
class Layout:
    """How the chains share the slots. The prepared input has `partitions` partitions; the
    `solo` chains run first, as one task each (no exchange, no waiting on peers),
    `solo_at_once` at a time; then the `spread` chains, one task per partition,
    `spread_at_once` at a time. Never changes the imputations, only the speed."""

    partitions: int
    solo: tuple[int, ...]
    spread: tuple[int, ...]
    solo_at_once: int
    spread_at_once: int

    def __str__(self) -> str:
        parts = []
        if self.solo:
            parts.append(f"{len(self.solo)} chain(s) of 1 task, {self.solo_at_once} at once")
        if self.spread:
            parts.append(
                f"{len(self.spread)} chain(s) of {self.partitions} task(s), "
                f"{self.spread_at_once} at once"
            )
        return "; then ".join(parts) or "no chain to run"


def layout_chains(
    cfg: MiceConfig, n_rows: int, n_blocks: int, n_slots: int, chains: list[int], engine: str
) -> Layout:
    """By default (barrier engine, every task may hold all rows): waves of one-task chains
    fill the slots, and the chains left over run one after another with a task on every
    slot, so that no slot idles while the last chain runs. A task holds at most
    `rows_per_task` rows; never more tasks than blocks or slots. An explicit `concurrency`
    sets the chains at once, and the tasks per chain follow from it."""
    need = math.ceil(n_rows / cfg.rows_per_task)
    if cfg.concurrency is None and engine == "barrier" and need <= 1:
        partitions = max(1, min(n_blocks, n_slots))
        solo = len(chains) // n_slots * n_slots if partitions > 1 else len(chains)
        return Layout(partitions, tuple(chains[:solo]), tuple(chains[solo:]), n_slots, 1)
    at_once = cfg.concurrency or max(1, min(len(chains), n_slots))
    tasks = max(1, min(n_blocks, n_slots, max(need, n_slots // at_once)))
    if cfg.concurrency is None:
        at_once = max(1, min(len(chains), n_slots // tasks))
    if tasks == 1 and engine == "barrier":
        return Layout(1, tuple(chains), (), at_once, at_once)
    return Layout(tasks, (), tuple(chains), at_once, at_once)


def choose_engine(spark: Any, cfg: MiceConfig) -> tuple[str, str]:
    """Barrier unless the cluster cannot run it; the reason is logged."""
    if cfg.engine == "perstep":
        return "perstep", "requested"
    dynamic = (spark.conf.get("spark.dynamicAllocation.enabled", "false") or "").lower()
    problem = None
    if dynamic == "true":
        problem = "dynamic allocation is on, which barrier jobs do not support"
    if problem is None:
        return "barrier", "requested" if cfg.engine == "barrier" else "default"
    if cfg.engine == "barrier":
        raise ConfigError(f"engine 'barrier' cannot run here: {problem}; use engine 'perstep'.")
    return "perstep", problem


@contextlib.contextmanager
def _python_workers_starting(spark: Any, tasks: int) -> Iterator[None]:
    """Start the executors' Python workers, with the engines' modules imported, in a job
    of its own while the block runs, and wait for that job at its end: the first Python
    stage (the packing) otherwise waits 2-4 s for its workers (measured on 2 cores), and
    before it the driver runs JVM-only jobs (the row count). Best effort: an error of
    that job is logged (debug) and shows again, where it matters, in the packing."""

    def import_engines(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import sparkmice.engines.barrier  # noqa: F401  (the kernels, the plan, Arrow)

        yield from batches

    def run() -> None:
        describe_job(spark, "sparkmice: start the Python workers")
        try:
            spark.range(tasks, numPartitions=tasks).mapInArrow(import_engines, "id long").collect()
        except Exception as error:
            log.debug(f"starting the Python workers failed: {error}")

    with ThreadPoolExecutor(max_workers=1) as pool:
        started = pool.submit(run)
        try:
            yield
        finally:
            started.result()


@contextlib.contextmanager
def _input_errors_of_tasks() -> Iterator[None]:
    """A chain's job that failed because its tasks found rows read more than once (only
    the tasks see all of a row id's rows) raises the tasks' InputError line, not Spark's
    wrapped traceback."""
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        text = str(error)
        at = text.find(REPEATED_ROWS)
        if at < 0:
            raise
        raise InputError(text[at:].splitlines()[0].strip()) from error


def describe_job(spark: Any, text: str) -> None:
    """Name the chain's job in the Spark UI (a tag over Spark Connect)."""
    from sparkmice.session import is_connect

    if is_connect(spark):
        spark.addTag(text.replace(" ", "-"))
    else:
        spark.sparkContext.setJobDescription(text)
