"""The imputed long table on disk, and the run's files beside it.

Layout of DIR:
    DIR/_imputation=k/*.parquet   completed data of chain k (all input columns + `_row_id`)
    DIR/_sparkmice/config.json    the resolved run (plan, options, engine)
    DIR/_sparkmice/trace.csv      chain, iteration, variable, mean, sd of the imputed values
    DIR/_sparkmice/events.csv     logged events (dropped predictors, ...)
    DIR/_sparkmice/timings.csv    chain, iteration, seconds, exchanges
    DIR/_sparkmice/progress/      one JSON per finished sweep (the source of the three above)
    DIR/_sparkmice/staging/       data files of a chain being written (barrier engine)
Spark reads DIR with `spark.read.parquet(DIR)` (it skips `_sparkmice`, keeps `_imputation=k`).
pyarrow skips names starting with `_` by default, so `read_imputed` passes its own prefixes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkmice.blocks import IMPUTATION
from sparkmice.progress import read_reports

META = "_sparkmice"
IGNORE_PREFIXES = [
    ".",
    "_SUCCESS",
    "_sparkmice",
    "_temporary",
    "_delta_log",
    "_committed",
    "_started",
    ".spark-staging",
]


def meta_uri(root: str, name: str = "") -> str:
    return f"{root.rstrip('/')}/{META}" + (f"/{name}" if name else "")


def staging_uri(root: str, chain: int) -> str:
    """A fresh folder for chain `chain`'s data files until they are committed."""
    return meta_uri(root, f"staging/chain_{chain}_{uuid.uuid4().hex}")


def write_part(uri: str, part: int, tables: list[pa.Table]) -> int:
    """One task's completed rows as `uri`/part-<part>.parquet, without `_imputation` (its
    folder's name carries it, as in Spark's partitioned tables); returns the row count."""
    if not tables:
        return 0
    table = pa.concat_tables(tables).drop_columns([IMPUTATION])
    fs, path = pafs.FileSystem.from_uri(uri)
    fs.create_dir(path, recursive=True)
    pq.write_table(table, f"{path}/part-{part:05d}.parquet", filesystem=fs)
    return table.num_rows


def commit_chain(root: str, chain: int, staged: str) -> None:
    """Make the staged files DIR/_imputation=k, replacing what was there (as Spark's dynamic
    partition overwrite does: readers see the old chain until this moment), and delete the
    chain's staging folders, including any a failed run left."""
    fs, staged_path = pafs.FileSystem.from_uri(staged)
    target = pafs.FileSystem.from_uri(f"{root.rstrip('/')}/{IMPUTATION}={chain}")[1]
    files = fs.get_file_info(pafs.FileSelector(staged_path, allow_not_found=True))
    if fs.get_file_info(target).type != pafs.FileType.NotFound:
        fs.delete_dir(target)
    fs.create_dir(target, recursive=True)
    for info in files:
        fs.move(info.path, f"{target}/{info.base_name}")
    staging = pafs.FileSystem.from_uri(meta_uri(root, "staging"))[1]
    for info in fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True)):
        if info.base_name.startswith(f"chain_{chain}_"):
            fs.delete_dir(info.path)


def imputed_dataset(root: str) -> ds.Dataset:
    """The long table as a pyarrow dataset, `_imputation` restored from the folder names."""
    return ds.dataset(
        root,
        format="parquet",
        partitioning=ds.HivePartitioning.discover(infer_dictionary=False),
        ignore_prefixes=IGNORE_PREFIXES,
    )


def read_imputed(root: str, imputation: int | None = None) -> pd.DataFrame:
    """The imputed long table in DIR as pandas (one imputation if given), by `_imputation`
    then `_row_id`. The pyarrow equivalent: `pyarrow.dataset.dataset(DIR, format="parquet",
    partitioning="hive", ignore_prefixes=sparkmice.io.parquet.IGNORE_PREFIXES)`."""
    dataset = imputed_dataset(root)
    flt = ds.field(IMPUTATION) == imputation if imputation is not None else None
    table = dataset.to_table(filter=flt)
    df = table.to_pandas()
    df[IMPUTATION] = df[IMPUTATION].astype("int32")
    return df.sort_values([IMPUTATION, "_row_id"], kind="stable").reset_index(drop=True)


def write_long_table(table: pa.Table, root: str) -> None:
    """Write chains in-process, replacing only the partitions of the chains present."""
    pq.write_to_dataset(
        table,
        root,
        partition_cols=[IMPUTATION],
        existing_data_behavior="delete_matching",
        basename_template="part-{i}.parquet",
    )


def write_json(uri: str, obj: Any) -> None:
    fs, path = pafs.FileSystem.from_uri(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(json.dumps(obj, indent=2, default=str).encode())


def read_json(uri: str) -> Any:
    fs, path = pafs.FileSystem.from_uri(uri)
    with fs.open_input_stream(path) as f:
        return json.loads(f.read())


def write_csv(uri: str, frame: pd.DataFrame) -> None:
    fs, path = pafs.FileSystem.from_uri(uri)
    with fs.open_output_stream(path) as f:
        f.write(frame.to_csv(index=False).encode())


def run_tables(root: str) -> dict[str, pd.DataFrame]:
    """trace, events and timings of every chain found in DIR's progress reports."""
    return tables_of(read_reports(meta_uri(root, "progress")))


def tables_of(reports: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """trace, events and timings from sweep reports (as dicts)."""
    trace = [row for r in reports for row in r["trace"]]
    events = [e for r in reports for e in r["events"]]
    timings = [{k: r[k] for k in ("chain", "iteration", "seconds", "exchanges")} for r in reports]
    return {
        "trace": pd.DataFrame(trace, columns=["chain", "iteration", "variable", "mean", "sd"]),
        "events": pd.DataFrame(
            events, columns=["chain", "iteration", "variable", "event", "detail"]
        ),
        "timings": pd.DataFrame(timings, columns=["chain", "iteration", "seconds", "exchanges"]),
    }


def write_run_tables(root: str) -> dict[str, pd.DataFrame]:
    tables = run_tables(root)
    for name, frame in tables.items():
        write_csv(meta_uri(root, f"{name}.csv"), frame)
    return tables


def _done_record(root: str, chain: int) -> dict[str, Any] | None:
    uri = meta_uri(root, f"done/chain_{chain}.json")
    fs, path = pafs.FileSystem.from_uri(uri)
    return read_json(uri) if fs.get_file_info(path).type == pafs.FileType.File else None


def mark_done(root: str, chain: int, maxit: int) -> None:
    """Record that chain `chain` is written after `maxit` sweeps; counts rewrites (retries)."""
    record = _done_record(root, chain) or {}
    write_json(
        meta_uri(root, f"done/chain_{chain}.json"),
        {
            "chain": chain,
            "maxit": maxit,
            "writes": record.get("writes", 0) + 1,
            "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
        },
    )


def chain_done(root: str, chain: int) -> int | None:
    """The maxit at which chain `chain` was last written, or None if it never was."""
    record = _done_record(root, chain)
    return None if record is None else int(record["maxit"])


def clear_progress(root: str, chain: int) -> None:
    """Forget chain `chain`'s earlier sweeps before it runs again."""
    fs, path = pafs.FileSystem.from_uri(meta_uri(root, "progress"))
    for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if info.base_name.startswith(f"chain_{chain}_sweep_"):
            fs.delete_file(info.path)
