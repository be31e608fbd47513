"""`mice()`: impute a Spark or pandas DataFrame by chained equations; `MiceResult` (R's mids)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice import state, where
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.engines.contract import Engine
from sparkmice.engines.inprocess import InProcessEngine
from sparkmice.identity import differences, run_id, run_identity
from sparkmice.io.imputed import (
    Completed,
    NoWhereError,
    is_default_index,
    of_folder,
    read_where,
    write_where,
)
from sparkmice.io.paths import check_apart
from sparkmice.io.run import ChainSink, RunFolder, tables_of
from sparkmice.models import plan_bytes
from sparkmice.names import IMPUTATION, ROW_ID
from sparkmice.plan import Plan
from sparkmice.progress import ensure_logging, notebook_bar
from sparkmice.sampler import ChainTask

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
    input_table: pa.Table | None = None  # in-process runs: the input, with `_row_id`
    where_table: pa.Table | None = None  # which cells were imputed, once asked
    row_labels: pd.Index | None = None  # a pandas input's own index, by position

    @property
    def m(self) -> int:
        return self.plan.config.m

    def rhat(self, threshold: float = 1.1) -> pd.DataFrame:
        """Rank-normalised split R-hat per variable over the second half of the trace
        (Vehtari et al. 2021), and whether the run is long enough to judge it."""
        from sparkmice.diagnostics.rhat import rhat_table

        return rhat_table(self.trace, threshold)

    def report(self, original=None, pooled=None):
        """The HTML report of this run (needs `output`); see sparkmice.diagnostics."""
        from sparkmice.diagnostics import build_report

        if self.output is None:
            raise ValueError("the report reads the run's files: impute with output=DIR.")
        return build_report(self.output, original=original, pooled=pooled, spark=self.spark)

    def impute_new(
        self, new_data, output: str | None = None, *, seed: int | None = None,
        overwrite: bool = False,
    ) -> MiceResult:  # fmt: skip
        """Impute rows that arrived after this run with each chain's final models, without
        refitting (see `sparkmice.impute_new`); needs the run's folder (`output`)."""
        if self.output is None:
            raise ValueError("impute_new reads the run's models: impute with output=DIR.")
        return impute_new(self.output, new_data, output, seed=seed, overwrite=overwrite)

    def _stored(self) -> RunFolder:
        """The run folder holding the completed data of a run not kept in memory."""
        if self.output is None:
            raise ValueError("this result holds no completed data: impute with output=DIR.")
        return RunFolder(self.output)

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

    def complete(self, action: int | str = 1, include: bool = False, indicator: bool = False):
        """The completed data, as R's complete(imp, action, include): imputation k (1..m),
        or the original data (0: the imputed cells missing again); "long" (stacked, with
        `_imputation`), "all" (a list of frames), "broad" (one row per `_row_id`, columns
        `<col>.<k>` by imputation) or "repeated" (the same, by column). `include` adds the
        original data as imputation 0. `indicator` adds `<col>_imputed`, True where the
        cell was imputed, for each column the run fills (see `where()`). A Spark DataFrame
        (a list of them for "all") for Spark runs, pandas otherwise."""
        return self._completed().complete(action, include, indicator)

    def where(self):
        """R's `where`: `_row_id` and, for each column the run fills, True where its value
        was imputed (missing in the input), for every row. Read from the run's record of
        its imputed cells (`sparkmice.where`), so it needs nothing but the run."""
        return self._completed().where()

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of the completed data under the pandas input's own index labels (each row's
        label, by its `_row_id`); 0, 1, ... where the input had no index of its own."""
        frame = frame.reset_index(drop=True)
        if self.row_labels is None or self.input_table is None:
            return frame
        positions = pd.Index(self.input_table.column(ROW_ID).to_numpy()).get_indexer(
            frame[ROW_ID].to_numpy()
        )
        frame.index = self.row_labels.take(positions)
        return frame

    def _completed(self) -> Completed:
        """The completed data: in memory (in-process runs), else the run folder's."""
        table = self.long_table
        if table is None:
            return of_folder(self._stored(), self.spark)

        def imputation_of(k: int) -> pd.DataFrame:
            one = table.filter(pc.equal(table[IMPUTATION], k)).drop([IMPUTATION]).to_pandas()
            return self._labelled(one.sort_values(ROW_ID, kind="stable"))

        def long_of() -> pd.DataFrame:
            df = table.to_pandas()
            return self._labelled(df.sort_values([IMPUTATION, ROW_ID], kind="stable"))

        def where_of() -> pa.Table:
            if self.where_table is None:
                source = self.input_table
                self.where_table = (
                    where.table_of_input(source, self.plan)
                    if source is not None
                    else read_where(self._stored())
                )
            return self.where_table

        chains = sorted(set(table.column(IMPUTATION).to_pylist()))
        return Completed(
            self.m, chains, imputation_of, long_of, where_of,
            where_option=tuple(self.plan.config.where),
        )  # fmt: skip

    def write(self, path: str, overwrite: bool = False) -> str:
        """Write the long table and the run's files to `path` (the run's format), with the
        chains' final models of the run's folder, so the copy can still `impute_new`."""
        run = RunFolder(path)
        _check_output_early(run, overwrite, adding=False, resume=False)
        rid, config = _open_output(run, self.plan, self.engine, overwrite, False, False)
        if config is None:  # only a run that is added to or resumed keeps its config.json
            raise RuntimeError(f"no config.json to write for {path}")
        run.write_config(config)
        sink = ChainSink(run, self.plan.n_rows, self.plan.config.maxit, rid)
        if self.output is not None:
            sink.models.update(run.copy_models(self._stored()))
        if self.long_table is not None:
            table = self.long_table
            for k in sorted(set(table.column(IMPUTATION).to_pylist())):
                sink.write_table(k, table.filter(pc.equal(table[IMPUTATION], k)))
            record = self._completed().where_of
        else:
            source = self._stored()
            for k in source.chains():
                sink.write_dataframe(k, source.read(self.spark, k), self.spark)
            record = functools.partial(read_where, source)  # as Arrow, for a Spark run too
        run.write_tables(
            {"trace": self.trace, "events": self.logged_events, "timings": self.timings}
        )
        try:
            write_where(run, record())
        except NoWhereError:  # a run of an older version: no record to copy
            pass
        return run.root


def own_index(data: Any) -> pd.Index | None:
    """A pandas frame's index when it is its own (labels, a name, or not 0, 1, ...): the
    completed frames keep it, as R's complete() keeps row names; else None."""
    if not isinstance(data, pd.DataFrame) or is_default_index(data.index):
        return None
    return data.index


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
    output_table: str | None = None,
    **options: Any,
) -> MiceResult:
    """Multiple imputation by chained equations, as R's mice(data, m, maxit, seed = ...).

    output_table: also publish the chains of this run to the catalog table
    `catalog.schema.table`, each as its `_imputation` partition (`sparkmice.io.catalog`):
    a Delta table (a rerun chain replaced in one transaction) with `format="delta"`, else
    Parquet; Spark input only. A catalog table as input: `mice(spark.table("catalog.schema.t"))`.

    resume: continue the chains in `output` after their last finished sweep (a failed run,
    or a finished one with a larger maxit, as R's mice.mids); chains done are skipped.
    data: a Spark DataFrame (runs on Spark; the completed data are written to `output`,
    a temporary folder if not given) or a pandas DataFrame / Arrow table (in-process; also
    written if `output` is given). Options are `MiceConfig`'s (method, predictors, ...) or a
    YAML file path in `config`.
    """
    cfg = _config(config, m=m, maxit=maxit, seed=seed, **options)
    if resume and cfg.where:  # the saved state counts missing cells, not `where` cells
        raise ConfigError(
            "resume is not built for a run with `where`: rerun it with overwrite "
            "(--overwrite) instead of resume."
        )
    ensure_logging()
    engine = _engine_for(data, cfg)  # checks the input's schema; no Spark job yet
    in_memory = engine.name == "inprocess"
    if output_table is not None:
        _check_output_table(output_table, in_memory)
    run = RunFolder(output) if output else None if in_memory else RunFolder(_temporary_output())
    adding = cfg.chains is not None
    if run:
        check_apart(run.root, engine.input_files())
        _check_output_early(run, overwrite, adding, resume)
    try:
        plan = engine.prepare()
        sink = None
        if run:
            rid, config_json = _open_output(run, plan, engine.name, overwrite, adding, resume)
            sink = ChainSink(run, plan.n_rows, cfg.maxit, rid)
        tasks = _chain_tasks(run, cfg, resume, plan)
        if run and config_json:
            run.write_config(config_json)
        if run and sink:
            tasks = _keep_models(run, sink, plan, tasks)
        with notebook_bar({t.chain: len(t.iterations) for t in tasks}):
            tables = engine.run(tasks, sink, run.progress_uri if run else None)
    finally:
        engine.close()
    found = run.run_tables() if run else tables_of([asdict(r) for r in engine.reports])
    found["events"] = _events(plan, found)  # the plan's events, then the sweeps'
    if run:
        run.write_tables(found)
    long_table = pa.concat_tables(tables) if tables else None
    if in_memory and run and len(tasks) < len(cfg.chain_numbers()):  # resumed: some done
        long_table = pa.Table.from_pandas(run.read(), preserve_index=False)
    if run:
        log.info(f"imputed table written to {run.root}")
    if run and output_table is not None:
        from sparkmice.io.catalog import write_table

        write_table(run.root, output_table, data.sparkSession, cfg.chain_numbers())
        log.info(f"chains {cfg.chain_numbers()} written to table {output_table}")
    result = MiceResult(
        plan, engine.name, run.root if run else None, found["trace"], found["events"],
        found["timings"], long_table, spark=None if in_memory else data.sparkSession,
        notes=engine.notes,
        input_table=engine.table if isinstance(engine, InProcessEngine) else None,
        row_labels=own_index(data),
    )  # fmt: skip
    _log_convergence(result)
    return result


def impute_new(
    model: str, new_data, output: str | None = None, *, seed: int | None = None,
    overwrite: bool = False,
) -> MiceResult:  # fmt: skip
    """Impute the missing cells of rows that arrived after run `model` (its output folder)
    with each chain's final models, without refitting on the run's data: parameters fixed
    at the chain's last draw, the chained sweeps run over the new rows only (maxit of them).
    `new_data` has the run's columns (pandas, Arrow, or a Spark DataFrame, collected).
    The result's long table has one imputation per committed chain (`_imputation`); it is
    also written to `output` (a run folder) if given. What this is and is not: see
    `sparkmice.newdata` and the README ("New rows with a run's models")."""
    from sparkmice.newdata import impute_chains

    ensure_logging()
    out = RunFolder(output) if output else None
    if out:
        check_apart(out.root, [RunFolder(model).root])
        _check_output_early(out, overwrite, False, False)
    plan, tables = impute_chains(RunFolder(model), new_data, seed)
    n_rows = next(iter(tables.values())).num_rows
    plan = dataclasses.replace(plan, n_rows=n_rows)
    if out:
        rid, config = _open_output(out, plan, "inprocess", overwrite, False, False)
        if config is None:
            raise RuntimeError(f"no config.json to write for {out.root}")
        out.write_config({**config, "impute_new_of": RunFolder(model).root})
        sink = ChainSink(out, n_rows, plan.config.maxit, rid)
        for k, table in tables.items():
            sink.write_table(k, table)
        log.info(f"new rows imputed with the models of {model}, written to {out.root}")
    empty = tables_of([])
    return MiceResult(
        plan, "inprocess", out.root if out else None, empty["trace"], empty["events"],
        empty["timings"], pa.concat_tables(list(tables.values())),
    )  # fmt: skip


def _keep_models(
    run: RunFolder, sink: ChainSink, plan: Plan, tasks: list[ChainTask]
) -> list[ChainTask]:
    """Each chain that runs a sweep keeps its last sweep's models in a file of its own,
    named by its commit record (`sparkmice.models`); the plan they belong to beside them."""
    run.write_model_plan(*plan_bytes(plan))
    kept = []
    for task in tasks:
        if len(task.iterations):
            name, uri = run.new_model_file(task.chain)
            sink.models[task.chain] = name
            task = dataclasses.replace(task, model_uri=uri)
        kept.append(task)
    return kept
def _check_output_table(name: str, in_memory: bool) -> None:
    """Before any job: a valid table name, and Spark input (the table is written by Spark)."""
    from sparkmice.io.catalog import check_table_name

    check_table_name(name)
    if in_memory:
        raise ConfigError(
            "output_table needs Spark input (a Spark DataFrame) and the Spark engines; for "
            "pandas input give output=DIR, then sparkmice.write_table(DIR, name, spark)"
        )


def _engine_for(data: Any, cfg: MiceConfig) -> Engine:
    """In-process for pandas and Arrow input (or engine 'inprocess'), else Spark's."""
    if isinstance(data, (pd.DataFrame, pa.Table)) or cfg.engine == "inprocess":
        return InProcessEngine(data, cfg)
    from sparkmice.engines.spark import SparkEngine

    return SparkEngine(data, cfg)


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
                state.check_resumable(run.state_uri, k, start - 1, plan)
        where_uri = run.where_uri if run else None
        tasks.append(
            ChainTask(k, range(start, cfg.maxit + 1), state_uri, report, where_uri=where_uri)
        )
    for task in tasks:
        if task.iterations.start == 1 and run:
            run.clear_progress(task.chain)
            state.start(run.state_uri, task.chain, plan)
    return tasks


# -- output checks and metadata ---------------------------------------------------------------
def _temporary_output() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="sparkmice-")


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
        # rewritten when maxit grows, or when DIR's run id was digested by an older version
        # (an option renamed or added since: the same run, see sparkmice.identity)
        rewrite = old.get("maxit") != plan.config.maxit or old.get("run_id") != rid
        return rid, (config if rewrite else None)
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
