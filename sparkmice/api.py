"""`mice()`: impute a Spark or pandas DataFrame by chained equations; `MiceResult` (R's mids)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice import state
from sparkmice.blocks import key_row_ids, split_blocks
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.engines import inprocess
from sparkmice.identity import differences, run_id, run_identity
from sparkmice.io.paths import check_apart
from sparkmice.io.run import Attempt, ChainCommitError, RunFolder, tables_of
from sparkmice.names import BLOCK, IMPUTATION, ROW_ID
from sparkmice.plan import Plan, block_count, check_id_counts, check_schema, resolve
from sparkmice.progress import ProgressPrinter, ProgressWriter, describe, ensure_logging
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
        df = RunFolder(self.output).read(self.spark, None if action == "long" else action)
        return df if action == "long" else df.drop(IMPUTATION)

    def write(self, path: str, overwrite: bool = False) -> str:
        """Write the long table and the run's files to `path` (the run's format)."""
        run = RunFolder(path)
        _check_output_early(run, overwrite, adding=False, resume=False)
        rid, config = _open_output(run, self.plan, self.engine, overwrite, False, False)
        run.write_config(config)
        source = None if self.long_table is not None else RunFolder(self.output)
        if source is None:
            chains = sorted(set(self.long_table.column(IMPUTATION).to_pylist()))
        else:
            chains = source.chains()
        for k in chains:
            if source is None:
                rows = self.long_table.filter(pc.equal(self.long_table[IMPUTATION], k))
                _commit_files(run, self.plan, k, rid, lambda a, t=rows: run.write_table(a, t))
            elif run.output().writes_dataframes(self.spark):
                _write_dataframe(run, self.plan, k, source.read(self.spark, k), self.spark)
            else:
                done = source.read(self.spark, k)
                _commit_files(run, self.plan, k, rid, lambda a, d=done: run.stage_dataframe(a, d))
        run.write_tables(
            {"trace": self.trace, "events": self.logged_events, "timings": self.timings}
        )
        return run.root


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
    run = RunFolder(output) if output else None
    if run:
        adding = cfg.chains is not None
        _check_output_early(run, overwrite, adding, resume)
        rid, config = _open_output(run, plan, "inprocess", overwrite, adding, resume)
    tasks = _chain_tasks(run, cfg, resume, plan)
    if run and config:
        run.write_config(config)
    reports: list[SweepReport] = []
    writer = ProgressWriter(run.progress_uri) if run else None

    def on_sweep(report: SweepReport) -> None:
        log.info(describe(report))
        reports.append(report)
        if writer is not None:
            writer(report)

    blocks = split_blocks(table, plan)
    tables = []
    for task in tasks:  # each chain written as soon as it is done
        done = inprocess.run_chain(blocks, plan, task, on_sweep)
        if run:
            _commit_files(run, plan, task.chain, rid, lambda a, t=done: run.write_table(a, t))
        tables.append(done)
    long_table = pa.concat_tables(tables) if tables else None
    if not run:
        found = tables_of([asdict(r) for r in reports])
        return MiceResult(
            plan, "inprocess", None, found["trace"], _events(plan, found), found["timings"],
            long_table,
        )  # fmt: skip
    found = run.write_tables()
    if len(tasks) < len(cfg.chain_numbers()):  # resumed: some chains were already done
        long_table = pa.Table.from_pandas(run.read(), preserve_index=False)
    return MiceResult(
        plan, "inprocess", run.root, found["trace"], _events(plan, found), found["timings"],
        long_table,
    )  # fmt: skip


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
    run = RunFolder(output or _temporary_output())
    adding = cfg.chains is not None
    check_apart(run.root, _input_files(df))
    _check_output_early(run, overwrite, adding, resume)

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
        rid, config = _open_output(run, plan, engine, overwrite, adding, resume)
        chain_tasks = _chain_tasks(run, cfg, resume, plan)
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
    progress = run.progress_uri
    if config:
        run.write_config(config)
    by_dataframe = run.output().writes_dataframes(spark)  # Spark's own Delta writer

    def run_one(task: ChainTask, solo: bool) -> None:
        k = task.chain
        _describe_job(spark, f"sparkmice chain {k} of {cfg.m} ({engine})")
        t = time.perf_counter()
        if engine == "barrier" and not by_dataframe:  # the tasks write the files

            def write(attempt: Attempt) -> int:
                counts = barrier.run_chain(
                    prepared, block_schema, plan, task, out_schema, progress, solo,
                    (run.root, attempt), names,
                ).collect()  # fmt: skip
                return sum(int(r["rows"]) for r in counts)

            _commit_files(run, plan, k, rid, write)
        else:
            if engine == "barrier":
                out = barrier.run_chain(
                    prepared, block_schema, plan, task, out_schema, progress, solo, None, names
                )
            else:
                writer = ProgressWriter(progress)
                out = perstep.run_chain(prepared, plan, task, out_schema, writer, names)
            out = names.spark_real(out)
            if by_dataframe:
                _write_dataframe(run, plan, k, out, spark)
            else:
                _commit_files(run, plan, k, rid, lambda a: run.stage_dataframe(a, out))
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
    tables = run.write_tables()
    events = _events(plan, tables)
    log.info(f"imputed table written to {run.root}")
    return MiceResult(
        plan, engine, run.root, tables["trace"], events, tables["timings"], spark=spark,
        notes=[reason],
    )  # fmt: skip


def _events(plan: Plan, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The plan's events (before any sweep) and the sweeps' logged events."""
    return pd.concat(
        [pd.DataFrame(list(plan.events), columns=tables["events"].columns), tables["events"]],
        ignore_index=True,
    )


def _chain_tasks(
    run: RunFolder | None, cfg: MiceConfig, resume: bool, plan: Plan
) -> list[ChainTask]:
    """The chains to run and from which sweep. Fresh chains forget their earlier progress
    and state; with `resume`, a chain continues after its last completed sweep (its last
    progress report, its saved state checked first), and a chain already written at this
    maxit is skipped. Every chain is checked before anything is changed."""
    tasks = []
    state_uri = run.state_uri if run else None
    for k in cfg.chain_numbers():
        start, report = 1, None
        if run and resume:
            try:
                reports = run.sweep_reports([k])
            except ValueError:
                raise state.StateError(
                    f"cannot resume chain {k}: a progress record in {run.progress_uri} is "
                    f"damaged; rerun with overwrite (--overwrite) instead of resume to start "
                    f"afresh."
                ) from None
            if reports:
                report = reports[-1]
                start = report["iteration"] + 1
            if start > cfg.maxit + 1:
                raise ConfigError(
                    f"chain {k} has already run {start - 1} iterations, more than maxit="
                    f"{cfg.maxit}; a run can be continued, not shortened: use overwrite."
                )
            if start == cfg.maxit + 1 and run.chain_done(k) == cfg.maxit:
                log.info(f"chain {k} is complete at maxit={cfg.maxit}; skipped")
                continue
            if start > 1:
                state.check_resumable(state_uri, k, start - 1, plan)
        tasks.append(ChainTask(k, range(start, cfg.maxit + 1), state_uri, report))
    for task in tasks:
        if task.iterations.start == 1 and run:
            run.clear_progress(task.chain)
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


def _commit_files(
    run: RunFolder, plan: Plan, chain: int, rid: str, write: Callable[[Attempt], int | None]
) -> None:
    """Write chain `chain` as a new attempt (`write` writes its files and returns the rows
    its tasks reported, or None) and commit it; a failed attempt removes its own files."""
    attempt = run.new_attempt(chain)
    try:
        returned = write(attempt)
        run.commit(
            attempt, maxit=plan.config.maxit, n_rows=plan.n_rows, returned_rows=returned,
            run_id=rid,
        )  # fmt: skip
    except BaseException:
        run.discard(attempt)
        raise


def _write_dataframe(run: RunFolder, plan: Plan, chain: int, out, spark) -> None:
    """A chain written by the format from a DataFrame (Spark's Delta writer, atomic by its
    log); its rows are checked after the write, then recorded."""
    run.output().write_dataframe(run, chain, out, spark)
    rows = run.read(spark, chain).count()
    if rows != plan.n_rows:
        raise ChainCommitError(
            f"chain {chain}: the Delta table holds {rows} rows of it, but the input has "
            f"{plan.n_rows}; rerun the chain (--chains {chain})."
        )
    run.record_dataframe_write(chain, plan.config.maxit, rows)


# -- output checks and metadata ---------------------------------------------------------------
def _temporary_output() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="sparkmice-")


def _input_files(df) -> list[str]:
    """The files a Spark DataFrame reads (metadata only; none for tables in memory)."""
    try:
        return list(df.inputFiles())
    except Exception:  # a source that cannot list its files
        return []


def _check_output_early(run: RunFolder, overwrite: bool, adding: bool, resume: bool) -> None:
    """Before any job: refuse an output that is a file, or an existing folder this run may
    not write into (the same-run check follows once the plan is known)."""
    if not run.entries() or adding or resume:
        return
    if not overwrite:
        raise OutputExistsError(
            f"output {run.root} already exists; pass overwrite=True (--overwrite) to replace "
            "the run there, or choose another path."
        )
    run.wipe_check()


def _open_output(
    run: RunFolder, plan: Plan, engine: str, overwrite: bool, adding: bool, resume: bool
) -> tuple[str, dict[str, Any] | None]:
    """Make DIR ready for this run: the run's id, and the config.json to write once the
    chains to run are known (None: DIR's stays). DIR may hold the same run when some chains
    are added (`adding`: a fan-out task) or it is resumed (then maxit may grow); overwrite
    removes a run there entirely first. Anything else is refused, naming what differs."""
    identity = run_identity(plan)
    rid = run_id(identity)
    config = {**plan.to_dict(), "engine": engine, "identity": identity, "run_id": rid}
    if not run.entries():
        return rid, config
    old = run.read_config()
    diffs = differences(old.get("identity"), identity, resume) if old else None
    if old is not None and not diffs and (adding or resume):
        return rid, (config if old.get("maxit") != plan.config.maxit else None)
    if overwrite and not resume:
        run.wipe()
        return rid, config
    if old is None:
        problem = "and is not the output of a sparkmice run"
    elif diffs:
        problem = f"and holds another run (differs in: {'; '.join(diffs)})"
    else:
        problem = "and holds this run: pass resume=True (--resume) to continue it, or chains"
        problem += " (--chains) to rewrite some chains"
    raise OutputExistsError(
        f"output {run.root} already exists {problem}; pass overwrite=True (--overwrite) to "
        "replace it, or choose another path."
    )
