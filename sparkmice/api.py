"""`mice()`: impute a Spark or pandas DataFrame by chained equations; `MiceResult` (R's mids)."""

from __future__ import annotations

import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs

from sparkmice import state
from sparkmice.blocks import BLOCK, IMPUTATION, ROW_ID, key_row_ids, split_blocks
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.engines import inprocess
from sparkmice.io import parquet as store
from sparkmice.plan import Plan, block_count, check_id_counts, check_schema, resolve
from sparkmice.progress import (
    ProgressPrinter,
    ProgressWriter,
    describe,
    ensure_logging,
    read_reports,
)
from sparkmice.sampler import ChainTask, SweepReport
from sparkmice.summaries import summarize_arrow

log = logging.getLogger("sparkmice")


class OutputExistsError(FileExistsError):
    """The output path holds data from another run and `overwrite` was not given."""


@dataclass
class MiceResult:
    """The outcome of `mice()`, as R's `mids`: the plan used, the trace, logged events, and
    the completed data (in memory for the in-process engine, at `output` for Spark)."""

    plan: Plan
    engine: str
    output: str | None
    trace: pd.DataFrame
    logged_events: pd.DataFrame
    timings: pd.DataFrame
    long_table: pa.Table | None = None
    spark: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def m(self) -> int:
        return self.plan.config.m

    def rhat(self, threshold: float = 1.1) -> pd.DataFrame:
        """Rank-normalised split R-hat per variable from the trace (Vehtari et al. 2021)."""
        from sparkmice.diagnostics.rhat import rhat_table

        return rhat_table(self.trace, threshold)

    def report(self, original=None, pooled=None):
        """The HTML report of this run (needs `output`); see sparkmice.diagnostics."""
        from sparkmice.diagnostics import build_report

        if self.output is None:
            raise ValueError("the report reads the run's files: impute with output=DIR.")
        return build_report(self.output, original=original, pooled=pooled, spark=self.spark)

    @property
    def method(self) -> dict[str, str]:
        return dict(self.plan.method)

    @property
    def visit_sequence(self) -> list[str]:
        return list(self.plan.visit_sequence)

    @property
    def predictor_matrix(self) -> pd.DataFrame:
        """R's predictorMatrix: rows are targets, 1 where the column predicts the row."""
        names = [v.name for v in self.plan.variables]
        pm = pd.DataFrame(0, index=names, columns=names, dtype=int)
        for target, preds in self.plan.predictors.items():
            pm.loc[target, list(preds)] = 1
        return pm

    def complete(self, action: int | str = 1):
        """One completed data set (action = k), or all of them stacked ("long"), as R's
        complete(). A Spark DataFrame for Spark runs, a pandas DataFrame otherwise."""
        if action != "long" and not (isinstance(action, int) and 1 <= action <= self.m):
            raise ValueError(
                f"action must be 'long' or an imputation in 1..{self.m}; got {action!r}."
            )
        if self.long_table is not None:
            df = self.long_table.to_pandas()
            if action != "long":
                df = df[df[IMPUTATION] == action].drop(columns=[IMPUTATION])
            return df.sort_values(
                [c for c in (IMPUTATION, ROW_ID) if c in df], kind="stable"
            ).reset_index(drop=True)
        from pyspark.sql import functions as F

        df = self.spark.read.parquet(self.output)
        if action != "long":
            df = df.where(F.col(IMPUTATION) == action).drop(IMPUTATION)
        return df

    def write(self, path: str, overwrite: bool = False) -> str:
        """Write the long table and the run's files to `path` (Parquet, `_imputation=k`)."""
        root = _absolute(path)
        _check_output(root, self.plan, overwrite, chains_only=False)
        if self.long_table is not None:
            store.write_long_table(self.long_table, root)
        else:
            self.complete("long").write.mode("overwrite").partitionBy(IMPUTATION).parquet(root)
        _write_meta(root, self.plan, self.engine, self.trace, self.logged_events, self.timings)
        return root


def mice(
    data,
    m: int | None = None,
    maxit: int | None = None,
    seed: int | None = None,
    *,
    config: MiceConfig | str | None = None,
    output: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    **options: Any,
) -> MiceResult:
    """Multiple imputation by chained equations, as R's mice(data, m, maxit, seed = ...).

    resume: continue the chains in `output` after their last finished sweep (a failed run,
    or a finished one with a larger maxit, as R's mice.mids); chains done are skipped.
    data: a Spark DataFrame (runs on Spark; the completed data are written to `output`,
    a temporary folder if not given) or a pandas DataFrame / Arrow table (in-process; also
    written if `output` is given). Options are `MiceConfig`'s (method, predictors, ...) or a
    YAML file path in `config`.
    """
    cfg = _config(config, m=m, maxit=maxit, seed=seed, **options)
    ensure_logging()
    if isinstance(data, (pd.DataFrame, pa.Table)) or cfg.engine == "inprocess":
        result = _mice_inprocess(data, cfg, output, overwrite, resume)
    else:
        result = _mice_spark(data, cfg, output, overwrite, resume)
    _log_convergence(result)
    return result


def _log_convergence(result: MiceResult) -> None:
    """Say whether the chains have mixed (R-hat); not converging is a warning, not an error."""
    from sparkmice.diagnostics.rhat import convergence_message

    if result.trace.empty or result.trace["chain"].nunique() < 2:
        return
    message = convergence_message(result.rhat())
    (log.warning if "Not converged" in message else log.info)(message)


def _config(config: MiceConfig | str | None, **overrides: Any) -> MiceConfig:
    given = {k: v for k, v in overrides.items() if v is not None}
    if config is None:
        return MiceConfig.from_dict(given)
    if isinstance(config, MiceConfig):
        return MiceConfig.from_dict({**config.to_dict(), **given})
    return MiceConfig.from_yaml(config, **given)


# -- in-process ----------------------------------------------------------------------------
def _arrow_input(data, cfg: MiceConfig) -> pa.Table:
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    elif not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data.toPandas(), preserve_index=False)
    check_schema(data.schema, cfg)
    if cfg.inf_as_missing:
        data = _infinite_to_null(data, set(cfg.exclude) | {cfg.id_column})
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


def _infinite_to_null(table: pa.Table, skip: set[str | None]) -> pa.Table:
    """+inf and -inf in floating columns (but `skip`) become missing (`inf_as_missing`)."""
    for i, name in enumerate(table.column_names):
        col = table.column(i)
        if name not in skip and pa.types.is_floating(col.type):
            table = table.set_column(i, name, pc.if_else(pc.is_inf(col), None, col))
    return table


def _mice_inprocess(
    data, cfg: MiceConfig, output: str | None, overwrite: bool, resume: bool
) -> MiceResult:
    table = _arrow_input(data, cfg)
    skip = set(cfg.exclude) | {ROW_ID} | ({cfg.id_column} if cfg.id_column else set())
    plan = resolve(
        table.schema.remove(table.schema.get_field_index(ROW_ID)),
        summarize_arrow(table, cfg.max_levels, skip),
        cfg,
    )
    root = _absolute(output) if output else None
    if root:
        _check_output(root, plan, overwrite, cfg.chains is not None, resume)
    tasks = _chain_tasks(root, cfg, resume, plan)
    if root:
        _write_meta(root, plan, "inprocess")
    reports: list[SweepReport] = []
    writer = ProgressWriter(store.meta_uri(root, "progress")) if root else None

    def on_sweep(report: SweepReport) -> None:
        log.info(describe(report))
        reports.append(report)
        if writer is not None:
            writer(report)

    blocks = split_blocks(table, plan)
    tables = []
    for task in tasks:  # each chain written as soon as it is done
        done = inprocess.run_chain(blocks, plan, task, on_sweep)
        if root:
            store.write_long_table(done, root)
            store.mark_done(root, task.chain, cfg.maxit)
        tables.append(done)
    long_table = pa.concat_tables(tables) if tables else None
    if not root:
        run = store.tables_of([asdict(r) for r in reports])
        return MiceResult(
            plan, "inprocess", root, run["trace"], _events(plan, run), run["timings"], long_table
        )
    run = store.write_run_tables(root)
    if len(tasks) < len(cfg.chain_numbers()):  # resumed: some chains were already done
        long_table = pa.Table.from_pandas(store.read_imputed(root), preserve_index=False)
    return MiceResult(
        plan, "inprocess", root, run["trace"], _events(plan, run), run["timings"], long_table
    )


# -- Spark ------------------------------------------------------------------------------------
def _mice_spark(
    df, cfg: MiceConfig, output: str | None, overwrite: bool, resume: bool
) -> MiceResult:
    from sparkmice.engines import barrier, perstep
    from sparkmice.io.spark import (
        PositionalNames,
        arrow_schema,
        nan_to_null,
        partition_keys,
        spark_schema_of,
        with_row_id,
    )
    from sparkmice.session import slots
    from sparkmice.summaries import summarize_spark

    spark = df.sparkSession
    check_schema(arrow_schema(df.schema), cfg)  # before any Spark job
    root = _absolute(output) if output else _temporary_output()
    _check_output(root, None, overwrite, cfg.chains is not None, resume)

    t0 = time.perf_counter()
    names = PositionalNames(tuple(df.columns))  # Spark sees positions; tasks, real names
    df = names.spark_positional(df)
    df, n_rows = with_row_id(df, names.of(cfg.id_column) if cfg.id_column else None, cfg.id_column)
    kept = set(cfg.exclude) | {cfg.id_column}  # carried through as they are
    infinite = [names.of(c) for c in names.names if cfg.inf_as_missing and c not in kept]
    df = nan_to_null(df, infinite)
    input_schema = arrow_schema(df.schema)  # positional
    real_schema = names.real_schema(input_schema)
    n_blocks = block_count(cfg, n_rows)
    n_slots = slots(spark)
    engine, reason = _choose_engine(spark, cfg)
    layout = _layout(cfg, n_rows, n_blocks, n_slots, cfg.chain_numbers(), engine)
    log.info(f"{n_rows} rows, {n_blocks} blocks, engine {engine} ({reason}), {layout}")

    # the input read once: blocks go round-robin to the tasks (one shuffle, no sampling
    # job), cached, and the plan's column summaries are taken from that cache
    keys = np.array(partition_keys(spark, layout.partitions), dtype=np.int32)
    block_schema = real_schema.append(pa.field(BLOCK, pa.int32()))
    if engine == "barrier":
        records = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
        value_bytes = barrier.packed_value_bytes(int(records))
        tag, tagged_schema = barrier.pack_function(
            input_schema, n_blocks, keys, value_bytes, names
        )
    else:
        tag, tagged_schema = perstep.tag_function(input_schema, n_blocks, keys)
    prepared = (
        df.mapInArrow(tag, spark_schema_of(tagged_schema))
        .repartition(layout.partitions, "__task")
        .drop("__task")
        .cache()
    )
    try:
        skip = set(cfg.exclude) | {ROW_ID, BLOCK} | ({cfg.id_column} if cfg.id_column else set())
        if engine == "barrier":
            unpack = barrier.unpack_function(block_schema)
        else:
            unpack = perstep.rows_function(input_schema.append(pa.field(BLOCK, pa.int32())), names)
        summaries = summarize_spark(prepared, cfg.max_levels, skip, unpack)
        plan = resolve(real_schema.remove(real_schema.get_field_index(ROW_ID)), summaries, cfg)
        _check_output(root, plan, overwrite, cfg.chains is not None, resume)
        chain_tasks = _chain_tasks(root, cfg, resume, plan)
    except Exception:
        prepared.unpersist()
        raise
    log.info(f"input read and plan resolved in {time.perf_counter() - t0:.1f} s")
    out_schema = spark_schema_of(
        pa.schema(
            [f for f in input_schema if f.name != ROW_ID]
            + [pa.field(ROW_ID, pa.int64()), pa.field(IMPUTATION, pa.int32())]
        )
    )
    progress = store.meta_uri(root, "progress")
    _write_meta(root, plan, engine)

    def run_one(task: ChainTask, solo: bool) -> None:
        k = task.chain
        _describe_job(spark, f"sparkmice chain {k} of {cfg.m} ({engine})")
        t = time.perf_counter()
        if engine == "barrier" and cfg.format == "parquet":  # the tasks write the files
            staged = store.staging_uri(root, k)
            barrier.run_chain(
                prepared, block_schema, plan, task, out_schema, progress, solo, staged, names
            ).collect()
            store.commit_chain(root, k, staged)
        elif engine == "barrier":
            out = barrier.run_chain(
                prepared, block_schema, plan, task, out_schema, progress, solo, None, names
            )
            _write_chain(names.spark_real(out), root, k, cfg.format, spark)
        else:
            writer = ProgressWriter(progress)
            out = perstep.run_chain(prepared, plan, task, out_schema, writer, names)
            _write_chain(names.spark_real(out), root, k, cfg.format, spark)
        store.mark_done(root, k, cfg.maxit)
        printer.poll()  # the chain's last sweeps before the line that it is written
        log.info(f"chain {k} written in {time.perf_counter() - t:.1f} s")

    def run_all(chains: tuple[int, ...], solo: bool, at_once: int) -> None:
        group = [t for t in chain_tasks if t.chain in chains]
        if at_once > 1 and len(group) > 1:
            with ThreadPoolExecutor(max_workers=min(at_once, len(group))) as pool:
                list(pool.map(lambda t: run_one(t, solo), group))
        else:
            for task in group:
                run_one(task, solo)

    printer = ProgressPrinter(progress, [t.chain for t in chain_tasks])
    try:
        with printer:
            run_all(layout.solo, True, layout.solo_at_once)
            run_all(layout.spread, False, layout.spread_at_once)
    finally:
        prepared.unpersist()
    tables = store.write_run_tables(root)
    events = _events(plan, tables)
    log.info(f"imputed table written to {root}")
    return MiceResult(
        plan, engine, root, tables["trace"], events, tables["timings"], spark=spark, notes=[reason]
    )


def _events(plan: Plan, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The plan's events (before any sweep) and the sweeps' logged events."""
    return pd.concat(
        [pd.DataFrame(list(plan.events), columns=tables["events"].columns), tables["events"]],
        ignore_index=True,
    )


def _chain_tasks(
    root: str | None, cfg: MiceConfig, resume: bool, plan: Plan
) -> list[ChainTask]:
    """The chains to run and from which sweep. Fresh chains forget their earlier progress
    and state; with `resume`, a chain continues after its last completed sweep (its last
    progress report, its saved state checked first), and a chain already written at this
    maxit is skipped. Every chain is checked before anything is changed."""
    tasks = []
    state_uri = store.meta_uri(root, "state") if root else None
    for k in cfg.chain_numbers():
        start, report = 1, None
        if root and resume:
            try:
                reports = read_reports(store.meta_uri(root, "progress"), [k])
            except ValueError:
                raise state.StateError(
                    f"cannot resume chain {k}: a progress record in "
                    f"{store.meta_uri(root, 'progress')} is damaged; rerun with overwrite "
                    f"(--overwrite) instead of resume to start afresh."
                ) from None
            if reports:
                report = reports[-1]
                start = report["iteration"] + 1
            if start > cfg.maxit + 1:
                raise ConfigError(
                    f"chain {k} has already run {start - 1} iterations, more than maxit="
                    f"{cfg.maxit}; a run can be continued, not shortened: use overwrite."
                )
            if start == cfg.maxit + 1 and store.chain_done(root, k) == cfg.maxit:
                log.info(f"chain {k} is complete at maxit={cfg.maxit}; skipped")
                continue
            if start > 1:
                state.check_resumable(state_uri, k, start - 1, plan)
        tasks.append(ChainTask(k, range(start, cfg.maxit + 1), state_uri, report))
    for task in tasks:
        if task.iterations.start == 1 and root:
            store.clear_progress(root, task.chain)
            state.start(state_uri, task.chain, plan)
    return tasks


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


def _layout(
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


def _choose_engine(spark, cfg: MiceConfig) -> tuple[str, str]:
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


def _describe_job(spark, text: str) -> None:
    from sparkmice.session import is_connect

    if is_connect(spark):
        spark.addTag(text.replace(" ", "-"))
    else:
        spark.sparkContext.setJobDescription(text)


def _write_chain(out, root: str, k: int, fmt: str, spark) -> None:
    if fmt == "delta":
        from sparkmice.io.delta import write_chain_delta

        write_chain_delta(out, root, k, spark=spark)
        return
    (
        out.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(IMPUTATION)
        .parquet(root)
    )


# -- output checks and metadata ---------------------------------------------------------------
def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _temporary_output() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="sparkmice-")


def _same_run(old: dict[str, Any], plan: Plan | None, resume: bool) -> bool:
    if plan is None:
        return True  # decided once the plan is known
    new = plan.to_dict()
    keys = ["m", "seed", "n_blocks", "variables", "predictor_matrix", "visit_sequence"]
    if not resume:
        keys.append("maxit")
    return all(old.get(k) == new.get(k) for k in keys)


def _check_output(
    root: str, plan: Plan | None, overwrite: bool, chains_only: bool, resume: bool = False
) -> None:
    """Refuse to write into a folder that holds something else, unless told to overwrite.

    A run of some chains (`chains`) may add to a table written by the same run's other
    chains (a fan-out), and a resumed run (`resume`, also to extend maxit) continues its
    own: same plan and options."""
    fs, path = pafs.FileSystem.from_uri(root)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound or (overwrite and not resume):
        return
    if info.type == pafs.FileType.File:
        raise OutputExistsError(f"output {root} is a file; choose a folder path.")
    entries = fs.get_file_info(pafs.FileSelector(path))
    if not entries:
        return
    config = store.meta_uri(root, "config.json")
    if (
        (chains_only or resume)
        and fs.get_file_info(pafs.FileSystem.from_uri(config)[1]).type == pafs.FileType.File
        and _same_run(store.read_json(config), plan, resume)
    ):
        return
    raise OutputExistsError(
        f"output {root} already exists; pass overwrite=True (--overwrite) to replace the "
        f"chains this run writes, or choose another path."
    )


def _write_meta(
    root: str,
    plan: Plan,
    engine: str,
    trace: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    timings: pd.DataFrame | None = None,
) -> None:
    store.write_json(store.meta_uri(root, "config.json"), {**plan.to_dict(), "engine": engine})
    if trace is None:
        store.write_run_tables(root)
        return
    for name, frame in (("trace", trace), ("events", events), ("timings", timings)):
        store.write_csv(store.meta_uri(root, f"{name}.csv"), frame)
