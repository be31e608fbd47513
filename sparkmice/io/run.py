"""The run folder DIR: the only code that knows where a run's files are.

    DIR/_imputation=k/<attempt>-part-NNNNN.parquet   data files of chain k, per attempt
    DIR/_delta_log/                  the Delta log (format delta): which files are the table
    DIR/_sparkmice/config.json       the resolved run and its identity (see sparkmice.identity)
    DIR/_sparkmice/done/chain_k.json chain k's commit record: attempt, files, rows, maxit
    DIR/_sparkmice/{trace,events,timings}.csv   assembled from progress/
    DIR/_sparkmice/progress/         one JSON per finished sweep
    DIR/_sparkmice/state/            imputed cells after each sweep (resume)
    DIR/_sparkmice/model/            the plan and each chain's final models (impute-new);
                                     chain k's file is the one its commit record names
    DIR/_sparkmice/staging/<attempt>/  files a Spark writer stages for an attempt

A chain is committed all-or-nothing. Each attempt (a run of chain k: a retry, or the same
`--chains` task launched twice) writes its files under names of its own, so attempts never
touch each other's files. The commit checks that they hold the rows the tasks returned and
the input has, then switches with one small atomic write: for Parquet the record
`done/chain_k.json` listing the attempt's files (readers follow it and nothing else), for
Delta one log transaction (then the record). After the switch the previous attempt's files
are deleted (Parquet; Delta leaves them to `vacuum`). The last commit wins; it is always a
whole chain.

Files are written straight under their final names (no rename, which on an object store
is a copy): so a reader that lists `_imputation=k/` itself (`spark.read.parquet(DIR)`, a
bare pyarrow dataset) may see an attempt in flight or one that died; readers that go
through this module (`read_imputed`, `MiceResult.complete`, pool, report) never do.

Output formats sit behind `OutputFormat`; a new one is a module and a line in `FORMATS`.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkmice.io.paths import Location, PathError, resolve, write_atomic
from sparkmice.names import (
    CONFIG_FILE,
    DELTA_LOG,
    DONE_DIR,
    FORMAT_VERSION,
    IMPUTATION,
    META,
    MODEL_DIR,
    MODEL_LEVELS,
    MODEL_PLAN,
    PROGRESS_DIR,
    ROW_ID,
    RUN_TABLES,
    STAGING_DIR,
    STATE_DIR,
)

# output formats: name -> module defining OUTPUT (an OutputFormat); imported when used, so
# that Parquet runs need neither deltalake nor pyspark
FORMATS = {"parquet": "sparkmice.io.parquet", "delta": "sparkmice.io.delta"}
TABLE_COLUMNS = {
    "trace": ["chain", "iteration", "variable", "mean", "sd"],
    "events": ["chain", "iteration", "variable", "event", "detail"],
    "timings": ["chain", "iteration", "seconds", "exchanges"],
}
_CHAIN_DIR = re.compile(rf"^{IMPUTATION}=(\d+)$")
# names a run writes at DIR's top level (Spark's own markers included, from older runs)
_OURS = re.compile(rf"^({IMPUTATION}=\d+|{META}|{DELTA_LOG}|_SUCCESS|\._SUCCESS\.crc)$")


class ChainCommitError(RuntimeError):
    """A chain's files do not hold what they must; the chain was not committed."""


@dataclass(frozen=True)
class Attempt:
    """One attempt at writing chain `chain`; `id` is unique to it."""

    chain: int
    id: str

    @property
    def prefix(self) -> str:
        """The attempt's data files, relative to DIR, begin with this."""
        return f"{IMPUTATION}={self.chain}/{self.id}-"

    def file(self, part: int) -> str:
        """Data file `part` of this attempt, relative to DIR."""
        return f"{self.prefix}part-{part:05d}.parquet"


@dataclass(frozen=True)
class DataFile:
    """A data file of a chain: its path relative to DIR, rows, bytes, mtime (ms)."""

    path: str
    rows: int
    size: int
    mtime_ms: int


class OutputFormat(Protocol):
    """What an output format does; the run folder does the rest (attempts, checks, records).

    commit: make `files` (an attempt's checked data files) chain `attempt.chain`, at once;
    returns what the chain's record should add. chains: the committed chains. read: the
    table (pandas, or Spark if `spark`), one imputation if given. writes_dataframes: whether
    the format writes a Spark DataFrame itself (Spark's Delta writer) instead of files."""

    name: str

    def commit(self, run: RunFolder, attempt: Attempt, files: list[DataFile]) -> dict[str, Any]: ...

    def chains(self, run: RunFolder) -> list[int]: ...

    def read(self, run: RunFolder, spark: Any, imputation: int | None) -> Any: ...

    def writes_dataframes(self, spark: Any) -> bool: ...

    def write_dataframe(self, run: RunFolder, chain: int, df: Any, spark: Any) -> None: ...


def output_format(name: str) -> OutputFormat:
    if name not in FORMATS:
        raise PathError(f"format must be one of {sorted(FORMATS)}; got {name!r}.")
    return importlib.import_module(FORMATS[name]).OUTPUT


class RunFolder:
    """DIR of a run, on any filesystem `sparkmice.io.paths.resolve` knows."""

    def __init__(self, root: str | Location):
        self.location = root if isinstance(root, Location) else resolve(root)

    @property
    def root(self) -> str:
        return self.location.uri

    @property
    def fs(self) -> pafs.FileSystem:
        return self.location.filesystem

    def at(self, *parts: str) -> Location:
        return self.location.join(*parts)

    def meta(self, *parts: str) -> Location:
        return self.at(META, *parts)

    @property
    def progress_uri(self) -> str:
        return self.meta(PROGRESS_DIR).uri

    @property
    def state_uri(self) -> str:
        return self.meta(STATE_DIR).uri

    def _type(self, loc: Location) -> pafs.FileType:
        return self.fs.get_file_info(loc.path).type

    def _list(self, loc: Location, recursive: bool = False) -> list[pafs.FileInfo]:
        return self.fs.get_file_info(
            pafs.FileSelector(loc.path, allow_not_found=True, recursive=recursive)
        )

    # -- the run's metadata ---------------------------------------------------------------
    def read_config(self) -> dict[str, Any] | None:
        """config.json, or None where there is none."""
        return self._read_json(self.meta(CONFIG_FILE))

    def write_config(self, config: dict[str, Any]) -> None:
        self._write_json(self.meta(CONFIG_FILE), {**config, "format_version": FORMAT_VERSION})

    def _read_json(self, loc: Location) -> Any:
        if self._type(loc) != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(loc.path) as f:
            return json.loads(f.read())

    def _write_json(self, loc: Location, obj: Any) -> None:
        write_atomic(self.fs, loc.path, json.dumps(obj, indent=2, default=str).encode())

    def sweep_reports(self, chains: list[int] | None = None) -> list[dict[str, Any]]:
        return read_reports(self.progress_uri, chains)

    def run_tables(self) -> dict[str, pd.DataFrame]:
        """trace, events and timings of every chain in the progress reports."""
        return tables_of(self.sweep_reports())

    def write_tables(
        self, tables: dict[str, pd.DataFrame] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Write trace/events/timings.csv (from the progress reports unless given)."""
        tables = tables if tables is not None else self.run_tables()
        for name in RUN_TABLES:
            data = tables[name].to_csv(index=False).encode()
            write_atomic(self.fs, self.meta(f"{name}.csv").path, data)
        return tables

    def read_tables(self) -> dict[str, pd.DataFrame]:
        """trace, events and timings as written (empty frames where a file is missing)."""
        tables = {}
        for name in RUN_TABLES:
            path = self.meta(f"{name}.csv").path
            info = self.fs.get_file_info(path)
            if info.type != pafs.FileType.File or not info.size:
                tables[name] = pd.DataFrame(columns=TABLE_COLUMNS[name])
                continue
            with self.fs.open_input_stream(path) as f:
                data = io.BytesIO(f.read())
            tables[name] = pd.read_csv(data, keep_default_na=False, na_values=[""])
        return tables

    def clear_progress(self, chain: int) -> None:
        """Forget chain `chain`'s earlier sweeps before it runs again."""
        for info in self._list(self.meta(PROGRESS_DIR)):
            if info.base_name.startswith(f"chain_{chain}_sweep_"):
                self.fs.delete_file(info.path)

    # -- the folder as a whole --------------------------------------------------------------
    def entries(self) -> list[str]:
        """Names at DIR's top level ([] if DIR does not exist)."""
        kind = self._type(self.location)
        if kind == pafs.FileType.File:
            raise PathError(f"output {self.root} is a file; choose a folder path.")
        if kind == pafs.FileType.NotFound:
            return []
        return sorted(info.base_name for info in self._list(self.location))

    def foreign_entries(self) -> list[str]:
        """Names at DIR's top level that no sparkmice run writes."""
        return [name for name in self.entries() if not _OURS.match(name)]

    def wipe_check(self) -> None:
        """Refuse to wipe DIR if it holds files no sparkmice run writes."""
        foreign = self.foreign_entries()
        if foreign:
            raise PathError(
                f"output {self.root} holds files sparkmice did not write ({', '.join(foreign[:5])}"
                f"{', ...' if len(foreign) > 5 else ''}); overwrite deletes only a run's own "
                "files: choose an empty folder or a sparkmice output."
            )

    def wipe(self) -> None:
        """Delete everything a run wrote in DIR (every chain, the Delta log, the metadata:
        config, trace, done records, progress, state); refuse if DIR holds other files."""
        self.wipe_check()
        for name in self.entries():
            loc = self.at(name)
            if self._type(loc) == pafs.FileType.Directory:
                self.fs.delete_dir(loc.path)
            else:
                self.fs.delete_file(loc.path)

    # -- chains -----------------------------------------------------------------------------
    def output(self) -> OutputFormat:
        """The run's format: config.json's, else Delta where DIR has a log, else Parquet."""
        config = self.read_config() or {}
        name = (config.get("config") or {}).get("format")
        if name is None:
            name = (
                "delta" if self._type(self.at(DELTA_LOG)) == pafs.FileType.Directory else "parquet"
            )
        return output_format(name)

    def versioned(self) -> bool:
        """Whether DIR's chains are committed by records (written by this version's layout),
        rather than a plain partitioned table whose `_imputation=k` folders are the chains."""
        return (self.read_config() or {}).get("format_version", 0) >= 2

    def new_attempt(self, chain: int) -> Attempt:
        return Attempt(chain, f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}")

    def record(self, chain: int) -> dict[str, Any] | None:
        """Chain `chain`'s commit record (done/chain_k.json), or None."""
        return self._read_json(self.meta(DONE_DIR, f"chain_{chain}.json"))

    def chain_done(self, chain: int) -> int | None:
        """The maxit at which chain `chain` was last committed, or None."""
        record = self.record(chain)
        return None if record is None else int(record["maxit"])

    def chains(self) -> list[int]:
        """The committed chains, by the run's format."""
        return self.output().chains(self)

    def chain_folders(self) -> list[int]:
        """Chains that have an `_imputation=k` folder (committed or not)."""
        found = [_CHAIN_DIR.match(name) for name in self.entries()]
        return sorted(int(m.group(1)) for m in found if m)

    def attempt_files(self, attempt: Attempt) -> list[DataFile]:
        """The data files attempt `attempt` has written, with their rows (Parquet footers)."""
        folder = self.at(f"{IMPUTATION}={attempt.chain}")
        name_start = attempt.prefix.split("/", 1)[1]
        files = []
        for info in self._list(folder):
            if not (info.is_file and info.base_name.startswith(name_start)):
                continue
            with self.fs.open_input_file(info.path) as f:
                rows = pq.ParquetFile(f).metadata.num_rows
            files.append(
                DataFile(
                    f"{IMPUTATION}={attempt.chain}/{info.base_name}",
                    rows,
                    info.size,
                    int(info.mtime.timestamp() * 1000) if info.mtime else 0,
                )
            )
        return sorted(files, key=lambda d: d.path)

    def discard(self, attempt: Attempt) -> None:
        """Delete attempt `attempt`'s own files and staging, nothing else (best effort)."""
        paths = [self.at(d.path).path for d in self.attempt_files(attempt)]
        staging = self.meta(STAGING_DIR, attempt.id)
        try:
            for path in paths:
                self.fs.delete_file(path)
            if self._type(staging) == pafs.FileType.Directory:
                self.fs.delete_dir(staging.path)
        except OSError:
            pass

    def commit(
        self,
        attempt: Attempt,
        *,
        maxit: int,
        n_rows: int,
        returned_rows: int | None = None,
        run_id: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Make the attempt's files chain `attempt.chain`, all or nothing.

        The files must hold exactly `n_rows` rows (the input's) and, if given, the
        `returned_rows` the tasks reported writing; DIR must still hold run `run_id` (a run
        that overwrote DIR meanwhile wins). Otherwise the attempt's files are deleted and
        ChainCommitError raised: the chain's previous data stay as they were."""
        k = attempt.chain
        files = self.attempt_files(attempt)
        written = sum(d.rows for d in files)
        problems = []
        if returned_rows is not None and written != returned_rows:
            problems.append(f"the tasks reported {returned_rows}")
        if written != n_rows:
            problems.append(f"the input has {n_rows}")
        config = self.read_config() or {}
        if run_id is not None and config.get("run_id") != run_id:
            problems.append("and DIR now holds another run (overwritten meanwhile)")
        if problems:
            self.discard(attempt)
            raise ChainCommitError(
                f"chain {k}: attempt {attempt.id} wrote {written} rows in {len(files)} "
                f"file(s), but {'; '.join(problems)}; chain {k} was not committed and its "
                f"previous data in {self.root} are unchanged."
            )
        previous = self.record(k) or {}
        fmt = self.output()
        extra = fmt.commit(self, attempt, files)
        record = {
            "chain": k,
            "maxit": maxit,
            "attempt": attempt.id,
            "format": fmt.name,
            "rows": written,
            "writes": previous.get("writes", 0) + 1,
            "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
            **extra,
            **({"model": model} if model else {}),
        }
        self._write_json(self.meta(DONE_DIR, f"chain_{k}.json"), record)  # Parquet: the switch
        self._drop_stale_model(previous, model)
        if previous.get("files") and previous.get("attempt") != attempt.id:
            stale = [self.at(p).path for p in previous["files"]]
            for path in stale:  # best effort: an orphan is invisible to readers
                try:
                    self.fs.delete_file(path)
                except OSError:
                    pass
        return record

    def record_dataframe_write(
        self, chain: int, maxit: int, rows: int, model: str | None = None
    ) -> None:
        """The record of a chain a format wrote from a DataFrame itself (Spark's Delta)."""
        previous = self.record(chain) or {}
        self._write_json(
            self.meta(DONE_DIR, f"chain_{chain}.json"),
            {
                "chain": chain,
                "maxit": maxit,
                "attempt": None,
                "format": self.output().name,
                "rows": rows,
                "writes": previous.get("writes", 0) + 1,
                "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
                **({"model": model} if model else {}),
            },
        )
        self._drop_stale_model(previous, model)

    # -- the chains' final models (impute-new; sparkmice.models) ----------------------------
    def new_model_file(self, chain: int) -> tuple[str, str]:
        """A name of its own for the models one run of chain `chain` writes (relative to
        the model folder) and its URI; its commit record names it when the chain commits."""
        name = f"chain_{chain}-{uuid.uuid4().hex[:12]}.npz"
        return name, self.meta(MODEL_DIR, name).uri

    def write_model_plan(self, plan_json: bytes, levels_ipc: bytes) -> None:
        """The plan the chains' models belong to (`models.plan_bytes`)."""
        write_atomic(self.fs, self.meta(MODEL_DIR, MODEL_PLAN).path, plan_json)
        write_atomic(self.fs, self.meta(MODEL_DIR, MODEL_LEVELS).path, levels_ipc)

    def read_model_plan(self) -> tuple[bytes, bytes]:
        """The bytes `write_model_plan` wrote; FileNotFoundError if the run has none."""
        return self._read_bytes(MODEL_PLAN), self._read_bytes(MODEL_LEVELS)

    def model_chains(self) -> dict[int, str]:
        """Committed chains that have models: chain -> model file name."""
        found = {}
        for k in self.chains():
            name = (self.record(k) or {}).get("model")
            if name:
                found[k] = name
        return found

    def read_chain_model(self, name: str) -> bytes:
        return self._read_bytes(name)

    def model_bytes(self) -> int:
        """Bytes of the plan files and the committed chains' model files."""
        names = [MODEL_PLAN, MODEL_LEVELS, *self.model_chains().values()]
        return sum(self.fs.get_file_info(self.meta(MODEL_DIR, n).path).size or 0 for n in names)

    def _read_bytes(self, name: str) -> bytes:
        loc = self.meta(MODEL_DIR, name)
        if self._type(loc) != pafs.FileType.File:
            raise FileNotFoundError(loc.uri)
        with self.fs.open_input_stream(loc.path) as f:
            return f.read()

    def _drop_stale_model(self, previous: dict[str, Any], model: str | None) -> None:
        """Delete the models of the chain's previous commit once another one is recorded."""
        old = previous.get("model")
        if old and old != model:
            try:
                self.fs.delete_file(self.meta(MODEL_DIR, old).path)
            except OSError:
                pass

    def write_table(self, attempt: Attempt, table: pa.Table) -> None:
        """Write one chain's completed rows (in-process) as the attempt's one file."""
        path = self.at(attempt.file(0)).path
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(data_columns(table), path, filesystem=self.fs)

    def stage_dataframe(self, attempt: Attempt, df: Any) -> None:
        """Write a chain's Spark DataFrame as the attempt's files: Spark writes them into the
        attempt's staging folder, then they move to their names (a copy on object stores)."""
        staging = self.meta(STAGING_DIR, attempt.id)
        df.drop(IMPUTATION).write.parquet(staging.uri)
        parts = sorted(
            info.path
            for info in self._list(staging)
            if info.is_file
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith(("_", "."))
        )
        self.fs.create_dir(self.at(f"{IMPUTATION}={attempt.chain}").path, recursive=True)
        for i, path in enumerate(parts):
            self.fs.move(path, self.at(attempt.file(i)).path)
        self.fs.delete_dir(staging.path)

    # -- reading ------------------------------------------------------------------------------
    def chain_files(self, chain: int) -> list[Location]:
        """Chain `chain`'s committed data files (Parquet runs): from its record, or for a
        plain partitioned table every data file in its folder."""
        if self.versioned():
            record = self.record(chain) or {}
            return [self.at(p) for p in record.get("files", [])]
        return [
            self.at(f"{IMPUTATION}={chain}", info.base_name)
            for info in sorted(self._list(self.at(f"{IMPUTATION}={chain}")), key=lambda i: i.path)
            if info.is_file and not info.base_name.startswith(("_", "."))
        ]

    def read(self, spark: Any = None, imputation: int | None = None) -> Any:
        """The imputed long table (pandas, or a Spark DataFrame if `spark`), one imputation
        if given; only committed data, by the run's format."""
        if not self.entries():
            raise FileNotFoundError(f"{self.root} not found (or empty): no imputed table there.")
        return self.output().read(self, spark, imputation)


@dataclass
class ChainSink:
    """Where an engine hands each finished chain of one run: every write is a new attempt,
    checked (rows: the input's `n_rows` and what the tasks reported) and committed all or
    nothing; a failed attempt removes only its own files. Engines call the one write that
    fits what they hold: files their tasks write, an Arrow table, or a Spark DataFrame.
    One sink serves one run in one Spark session."""

    run: RunFolder
    n_rows: int
    maxit: int
    run_id: str
    models: dict[int, str] = field(default_factory=dict)  # chain -> its task's model file
    _by_dataframe: bool | None = field(default=None, init=False, repr=False)

    def write_files(self, chain: int, write: Callable[[Attempt], int | None]) -> None:
        """`write(attempt)` writes the attempt's files and returns the rows its tasks
        reported (or None); then the attempt is committed as chain `chain`."""
        attempt = self.run.new_attempt(chain)
        try:
            returned = write(attempt)
            self.run.commit(
                attempt, maxit=self.maxit, n_rows=self.n_rows, returned_rows=returned,
                run_id=self.run_id, model=self.models.get(chain),
            )  # fmt: skip
        except BaseException:
            self.run.discard(attempt)
            raise

    def write_table(self, chain: int, table: pa.Table) -> None:
        self.write_files(chain, lambda attempt: self.run.write_table(attempt, table))

    def writes_dataframes(self, spark: Any) -> bool:
        """Whether the format writes DataFrames itself (Spark's own Delta writer): then
        the engine hands over rows, not files. Asked once per sink (the Delta probe is a
        round trip to Spark)."""
        if self._by_dataframe is None:
            self._by_dataframe = self.run.output().writes_dataframes(spark)
        return self._by_dataframe

    def write_dataframe(self, chain: int, df: Any, spark: Any) -> None:
        """A chain as a Spark DataFrame: the format's own writer (atomic by its log; rows
        checked after the write) or Spark-written attempt files."""
        if not self.writes_dataframes(spark):
            self.write_files(chain, lambda attempt: self.run.stage_dataframe(attempt, df))
            return
        self.run.output().write_dataframe(self.run, chain, df, spark)
        rows = self.run.read(spark, chain).count()
        if rows != self.n_rows:
            raise ChainCommitError(
                f"chain {chain}: the Delta table holds {rows} rows of it, but the input has "
                f"{self.n_rows}; rerun the chain (--chains {chain})."
            )
        self.run.record_dataframe_write(chain, self.maxit, rows, self.models.get(chain))


def read_imputed(root: str, spark: Any = None, *, imputation: int | None = None) -> Any:
    """The imputed long table in DIR: pandas sorted by `_imputation`, `_row_id` (or a Spark
    DataFrame if `spark` is given), one imputation if given. Reads only committed chains
    (Parquet: the files each chain's record lists; Delta: the files its log lists)."""
    return RunFolder(root).read(spark, imputation)


def read_reports(uri: str, chains: list[int] | None = None) -> list[dict[str, Any]]:
    """All sweep reports in the progress folder `uri` (optionally of some chains), in order."""
    location = resolve(uri)
    fs = location.filesystem
    try:
        infos = fs.get_file_info(pafs.FileSelector(location.path, allow_not_found=True))
    except FileNotFoundError:
        return []
    reports = []
    for info in infos:
        if info.base_name.endswith(".json"):
            with fs.open_input_stream(info.path) as f:
                report = json.loads(f.read())
            if chains is None or report["chain"] in chains:
                reports.append(report)
    return sorted(reports, key=lambda r: (r["chain"], r["iteration"]))


def read_parquet_chains(run: RunFolder, files: dict[int, list[Location]], spark: Any = None) -> Any:
    """The long table of the given chains' Parquet files, `_imputation` added per chain."""
    files = {k: f for k, f in sorted(files.items()) if f}
    if not files:
        raise FileNotFoundError(f"{run.root} holds no committed imputation.")
    if spark is None:
        tables = []
        for k, locs in files.items():
            t = ds.dataset([loc.path for loc in locs], filesystem=run.fs, format="parquet")
            t = t.to_table()
            tables.append(t.append_column(IMPUTATION, pa.array(np.full(t.num_rows, k, np.int32))))
        df = pa.concat_tables(tables, promote_options="default").to_pandas()
        return df.sort_values([IMPUTATION, ROW_ID], kind="stable").reset_index(drop=True)
    from pyspark.sql import functions as F

    schema = spark.read.parquet(*[loc.uri for loc in files[min(files)]]).schema
    parts = [
        spark.read.schema(schema)
        .parquet(*[loc.uri for loc in locs])
        .withColumn(IMPUTATION, F.lit(k).cast("int"))
        for k, locs in files.items()
    ]
    return reduce(lambda a, b: a.unionByName(b), parts)


def tables_of(reports: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """trace, events and timings from sweep reports (as dicts)."""
    rows: dict[str, list[Any]] = {
        "trace": [row for r in reports for row in r["trace"]],
        "events": [e for r in reports for e in r["events"]],
        "timings": [{k: r[k] for k in TABLE_COLUMNS["timings"]} for r in reports],
    }
    return {name: pd.DataFrame(rows[name], columns=cols) for name, cols in TABLE_COLUMNS.items()}


def data_columns(table: pa.Table) -> pa.Table:
    """A chain's rows as stored: `_imputation` lives in the folder name (or Delta's log)."""
    if IMPUTATION in table.column_names:
        return table.drop_columns([IMPUTATION])
    return table
