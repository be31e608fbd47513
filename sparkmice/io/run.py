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
    DIR/_sparkmice/where/            which cells the run imputes (sparkmice.where)

A chain is committed all-or-nothing. Each attempt (a run of chain k: a retry, or the same
`--chains` task launched twice) writes its files under names of its own, so attempts never
touch each other's files. The commit checks that they hold the rows the tasks returned and
the input has, then switches with one small atomic write: for Parquet the record
`done/chain_k.json` listing the attempt's files (readers follow it and nothing else), for
Delta one log transaction (then the record). After the switch the previous attempt's files
are deleted (Parquet; Delta leaves them to `vacuum`). The last commit wins; it is always a
whole chain.

Every file is written by the format's `FileFormat` (Parquet unless the format says
otherwise: its suffix, its writer, its readers), from an Arrow table: in this process, or
inside the Spark tasks (`write_part`), which report the rows and the Arrow schema they wrote.
The chain's record keeps that schema, so a format whose files do not carry their types
(CSV) reads them back as they were. Files are written straight under their final names
(no rename, which on an object store is a copy): so a reader that lists `_imputation=k/`
itself (`spark.read.parquet(DIR)`, a bare pyarrow dataset) may see an attempt in flight or
one that died; readers that go through this module (`read_imputed`, `MiceResult.complete`,
pool, report) never do.

Output formats sit behind `OutputFormat`; a new one is a module and a line in `FORMATS`
(docs/examples/csv_output.py is one).
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
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
    STATE_DIR,
    WHERE_DIR,
)

if TYPE_CHECKING:
    import pandas as pd

# output formats: name -> module defining OUTPUT (an OutputFormat); imported when used, so
# that Parquet runs need neither deltalake nor pyspark. A format registered at run time (a
# line `FORMATS["csv"] = "mypackage.csv_output"`) is accepted by the config and the CLI.
FORMATS = {"parquet": "sparkmice.io.parquet", "delta": "sparkmice.io.delta"}
# what a Spark task that wrote an attempt's file returns: its rows and their Arrow schema
# (an IPC message, never a pickle; empty when the task had no rows)
WRITTEN_SCHEMA = pa.schema([("rows", pa.int64()), ("schema", pa.binary())])
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


class FileFormat(Protocol):
    """How an output format stores rows in one data file, and reads its files back.

    suffix: the files' name ending (".parquet"). write: `table` as the file at `path`.
    rows: the rows of a written file (the commit checks them). read: files as one Arrow
    table; spark_schema and read_spark: the same as a Spark DataFrame. `schema` is the
    Arrow schema the writer was given (from the chain's record; None for records of older
    runs): a format whose files carry their types may ignore it."""

    suffix: str

    def write(self, table: pa.Table, filesystem: pafs.FileSystem, path: str) -> None: ...

    def rows(self, filesystem: pafs.FileSystem, path: str, schema: pa.Schema | None) -> int: ...

    def read(
        self, filesystem: pafs.FileSystem, paths: list[str], schema: pa.Schema | None
    ) -> pa.Table: ...

    def spark_schema(self, spark: Any, uris: list[str], schema: pa.Schema | None) -> Any: ...

    def read_spark(self, spark: Any, uris: list[str], spark_schema: Any) -> Any: ...


class ParquetFiles:
    """Parquet data files (the Parquet and Delta formats): they carry their own schema."""

    suffix = ".parquet"

    def write(self, table: pa.Table, filesystem: pafs.FileSystem, path: str) -> None:
        pq.write_table(table, path, filesystem=filesystem)

    def rows(self, filesystem: pafs.FileSystem, path: str, schema: pa.Schema | None) -> int:
        with filesystem.open_input_file(path) as f:
            return pq.ParquetFile(f).metadata.num_rows

    def read(
        self, filesystem: pafs.FileSystem, paths: list[str], schema: pa.Schema | None
    ) -> pa.Table:
        import pyarrow.dataset as ds  # here: it imports pandas, which Spark's workers skip

        return ds.dataset(paths, filesystem=filesystem, format="parquet").to_table()

    def spark_schema(self, spark: Any, uris: list[str], schema: pa.Schema | None) -> Any:
        return spark.read.parquet(*uris).schema

    def read_spark(self, spark: Any, uris: list[str], spark_schema: Any) -> Any:
        return spark.read.schema(spark_schema).parquet(*uris)


PARQUET_FILES = ParquetFiles()


@dataclass(frozen=True)
class Attempt:
    """One attempt at writing chain `chain`; `id` is unique to it. Its files are written
    as `files` says (the run's format's file format)."""

    chain: int
    id: str
    files: FileFormat = PARQUET_FILES

    @property
    def prefix(self) -> str:
        """The attempt's data files, relative to DIR, begin with this."""
        return f"{IMPUTATION}={self.chain}/{self.id}-"

    def file(self, part: int) -> str:
        """Data file `part` of this attempt, relative to DIR."""
        return f"{self.prefix}part-{part:05d}{self.files.suffix}"


@dataclass(frozen=True)
class Written:
    """What an attempt's writers report: the rows (None: not counted apart from the
    files) and the Arrow schema of the rows (None: no rows, or not known)."""

    rows: int | None
    schema: pa.Schema | None


@dataclass(frozen=True)
class DataFile:
    """A data file of a chain: its path relative to DIR, rows, bytes, mtime (ms)."""

    path: str
    rows: int
    size: int
    mtime_ms: int


class OutputFormat(Protocol):
    """What an output format does; the run folder does the rest (attempts, checks, records).

    files: how its data files are written and read (`FileFormat`). commit: make `files`
    (an attempt's checked data files, holding rows of Arrow `schema` if known) chain
    `attempt.chain`, at once; returns what the chain's record should add. chains: the
    committed chains. read: the table (pandas, or Spark if `spark`), one imputation if
    given. writes_dataframes: whether the format writes a Spark DataFrame itself (Spark's
    Delta writer) instead of files."""

    name: str
    files: FileFormat

    def commit(
        self, run: RunFolder, attempt: Attempt, files: list[DataFile], schema: pa.Schema | None
    ) -> dict[str, Any]: ...

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

    @property
    def where_uri(self) -> str:
        return self.meta(WHERE_DIR).uri

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
        import pandas as pd

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
        """A new attempt at chain `chain`, writing the run's format's files."""
        attempt_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        return Attempt(chain, attempt_id, self.output().files)

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

    def _attempt_infos(self, attempt: Attempt) -> list[pafs.FileInfo]:
        """The files attempt `attempt` has written, by name."""
        name_start = attempt.prefix.split("/", 1)[1]
        found = self._list(self.at(f"{IMPUTATION}={attempt.chain}"))
        return sorted(
            (i for i in found if i.is_file and i.base_name.startswith(name_start)),
            key=lambda i: i.base_name,
        )

    def attempt_files(self, attempt: Attempt, schema: pa.Schema | None = None) -> list[DataFile]:
        """The data files attempt `attempt` has written, with their rows (as its file
        format counts them: Parquet footers; others may need the rows' `schema`)."""
        return [
            DataFile(
                f"{IMPUTATION}={attempt.chain}/{info.base_name}",
                attempt.files.rows(self.fs, info.path, schema),
                info.size,
                int(info.mtime.timestamp() * 1000) if info.mtime else 0,
            )
            for info in self._attempt_infos(attempt)
        ]

    def discard(self, attempt: Attempt) -> None:
        """Delete attempt `attempt`'s own files, nothing else (best effort)."""
        try:
            for info in self._attempt_infos(attempt):
                self.fs.delete_file(info.path)
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
        schema: pa.Schema | None = None,
    ) -> dict[str, Any]:
        """Make the attempt's files chain `attempt.chain`, all or nothing.

        The files must hold exactly `n_rows` rows (the input's) and, if given, the
        `returned_rows` the tasks reported writing; DIR must still hold run `run_id` (a run
        that overwrote DIR meanwhile wins). Otherwise the attempt's files are deleted and
        ChainCommitError raised: the chain's previous data stay as they were. `schema`:
        the rows' Arrow schema, as the writers reported it (the format may record it)."""
        k = attempt.chain
        files = self.attempt_files(attempt, schema)
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
        extra = fmt.commit(self, attempt, files, schema)
        record = {
            "chain": k,
            "maxit": maxit,
            "attempt": attempt.id,
            "format": fmt.name,
            "rows": written,
            "writes": previous.get("writes", 0) + 1,
            "written_at": _now(),
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
                "written_at": _now(),
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

    def copy_models(self, source: RunFolder) -> dict[int, str]:
        """Copy `source`'s plan and committed chains' model files here (new names, as a
        run of each chain would write them); chain -> name, for this run's commit records.
        Nothing when `source` kept no models (an in-memory run, or an older version's)."""
        chains = source.model_chains()
        if not chains:
            return {}
        self.write_model_plan(*source.read_model_plan())
        names = {}
        for k, old in chains.items():
            name, _ = self.new_model_file(k)
            write_atomic(self.fs, self.meta(MODEL_DIR, name).path, source.read_chain_model(old))
            names[k] = name
        return names

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

    def write_table(self, attempt: Attempt, table: pa.Table) -> Written:
        """Write one chain's completed rows (in-process) as the attempt's one file."""
        table = data_columns(table)
        write_part(self.root, attempt, 0, [table])
        return Written(None, table.schema)

    def write_dataframe_files(self, attempt: Attempt, df: Any) -> Written:
        """Write a chain's Spark DataFrame as the attempt's files: each Spark task writes
        its partition's rows with the attempt's file format (`write_part`), as the barrier
        tasks do, and reports what it wrote. Spark sees the columns by position (any name
        works: dots, backticks); the files get the real names."""
        root, names = self.root, list(df.columns)

        def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from pyspark import TaskContext

            context = TaskContext.get()
            if context is None:
                raise RuntimeError("chain parts are written only inside a Spark task")
            tables = [pa.Table.from_batches([b]).rename_columns(names) for b in batches]
            yield written_batch(root, attempt, context.partitionId(), tables)

        positional = df.toDF(*[f"__c{i}" for i in range(len(names))])
        return written_by(positional.mapInArrow(write, "rows long, schema binary").collect())

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

    def write_files(self, chain: int, write: Callable[[Attempt], Written]) -> None:
        """`write(attempt)` writes the attempt's files (with `attempt.files`) and says what
        its writers reported; then the attempt is committed as chain `chain`."""
        attempt = self.run.new_attempt(chain)
        try:
            written = write(attempt)
            self.run.commit(
                attempt, maxit=self.maxit, n_rows=self.n_rows, returned_rows=written.rows,
                run_id=self.run_id, schema=written.schema, model=self.models.get(chain),
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
        checked after the write) or attempt files its Spark tasks write."""
        if not self.writes_dataframes(spark):
            self.write_files(chain, lambda attempt: self.run.write_dataframe_files(attempt, df))
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


def write_part(root: str, attempt: Attempt, part: int, tables: list[pa.Table]) -> int:
    """One writer's completed rows as data file `part` of `attempt` in DIR `root`, in the
    attempt's file format (without `_imputation`: the folder's name carries it); returns
    the row count. Runs in this process or inside a Spark task (no Spark needed)."""
    if not tables:
        return 0
    table = data_columns(pa.concat_tables(tables))
    location = resolve(root).join(attempt.file(part))
    location.filesystem.create_dir(location.path.rsplit("/", 1)[0], recursive=True)
    attempt.files.write(table, location.filesystem, location.path)
    return table.num_rows


def written_batch(root: str, attempt: Attempt, part: int, tables: list[pa.Table]) -> pa.RecordBatch:
    """A Spark task's `write_part`, and its report (`WRITTEN_SCHEMA`): rows and schema."""
    rows = write_part(root, attempt, part, tables)
    schema = data_columns(tables[0]).schema.serialize().to_pybytes() if rows else b""
    return pa.RecordBatch.from_pydict({"rows": [rows], "schema": [schema]}, schema=WRITTEN_SCHEMA)


def written_by(reports: list[Any]) -> Written:
    """What the tasks' reports (Spark rows of `WRITTEN_SCHEMA`) say: the rows they wrote in
    all, and the schema of the first that wrote any."""
    schemas = [bytes(r["schema"]) for r in reports if r["rows"]]
    schema = pa.ipc.read_schema(pa.py_buffer(schemas[0])) if schemas else None
    return Written(sum(int(r["rows"]) for r in reports), schema)


def encode_schema(schema: pa.Schema) -> str:
    """An Arrow schema as text for a JSON record (base64 of its IPC message)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str | None) -> pa.Schema | None:
    return None if text is None else pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def read_chain_files(
    run: RunFolder,
    files: dict[int, list[Location]],
    spark: Any = None,
    formats: FileFormat = PARQUET_FILES,
    schema: pa.Schema | None = None,
) -> Any:
    """The long table of the given chains' data files (in file format `formats`, rows of
    Arrow `schema` if known), `_imputation` added per chain."""
    files = {k: f for k, f in sorted(files.items()) if f}
    if not files:
        raise FileNotFoundError(f"{run.root} holds no committed imputation.")
    if spark is None:
        tables = []
        for k, locs in files.items():
            t = formats.read(run.fs, [loc.path for loc in locs], schema)
            tables.append(t.append_column(IMPUTATION, pa.array(np.full(t.num_rows, k, np.int32))))
        df = pa.concat_tables(tables, promote_options="default").to_pandas()
        return df.sort_values([IMPUTATION, ROW_ID], kind="stable").reset_index(drop=True)
    from pyspark.sql import functions as F

    spark_schema = formats.spark_schema(spark, [loc.uri for loc in files[min(files)]], schema)
    chain_of = {loc.path.rsplit("/", 1)[-1]: k for k, locs in files.items() for loc in locs}
    if len(chain_of) == sum(map(len, files.values())) and "_metadata" not in spark_schema.names:
        # one scan of every file (Spark packs small files into a few tasks), each row's
        # chain looked up by its file's name (attempt ids make the names unique)
        uris = [loc.uri for locs in files.values() for loc in locs]
        pairs = [F.lit(x) for name, k in sorted(chain_of.items()) for x in (name, k)]
        chain = F.create_map(*pairs)[F.col("_metadata.file_name")].cast("int")
        return formats.read_spark(spark, uris, spark_schema).withColumn(IMPUTATION, chain)
    parts = [
        formats.read_spark(spark, [loc.uri for loc in locs], spark_schema).withColumn(
            IMPUTATION, F.lit(k).cast("int")
        )
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
    import pandas as pd

    return {name: pd.DataFrame(rows[name], columns=cols) for name, cols in TABLE_COLUMNS.items()}


def _now() -> str:
    """The time of a commit record (pandas is imported here: Spark's workers import this
    module and should not pay for pandas)."""
    import pandas as pd

    return pd.Timestamp.now(tz="UTC").isoformat()


def data_columns(table: pa.Table) -> pa.Table:
    """A chain's rows as stored: `_imputation` lives in the folder name (or Delta's log)."""
    if IMPUTATION in table.column_names:
        return table.drop_columns([IMPUTATION])
    return table
