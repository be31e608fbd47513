"""Parquet output: a chain is the files its record (`done/chain_k.json`) lists.

Every writer (the barrier tasks, the in-process engine, the tasks of a Spark DataFrame)
writes an attempt's files through `sparkmice.io.run.write_part`, in the format's file
format. Committing is the run folder's one atomic write of the record; `ListedFiles` only
says which files a chain is, and keeps the rows' Arrow schema in the record, so any file
format can be read back with its column types (`docs/examples/csv_output.py` is one). The
layout is a Hive-partitioned table, so `spark.read.parquet(DIR)` and pyarrow
(`ignore_prefixes=IGNORE_PREFIXES`: pyarrow skips names starting with `_` by default,
`_imputation=k` included) read it directly too, but see them only when no attempt is in
flight or orphaned; `sparkmice.read_imputed(DIR)` always reads exactly the committed chains.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sparkmice.io.run import (
    PARQUET_FILES,
    Attempt,
    DataFile,
    FileFormat,
    RunFolder,
    decode_schema,
    encode_schema,
    read_chain_files,
)
from sparkmice.names import DELTA_LOG, META

IGNORE_PREFIXES = [
    ".",
    "_SUCCESS",
    META,
    "_temporary",
    DELTA_LOG,
    "_committed",
    "_started",
    ".spark-staging",
]


class ListedFiles:
    """An output format whose chain is the data files its commit record lists (see
    sparkmice.io.run), written and read by `files`; the record also keeps the rows'
    Arrow schema, for file formats that do not carry their types."""

    def __init__(self, name: str, files: FileFormat):
        self.name, self.files = name, files

    def commit(
        self, run: RunFolder, attempt: Attempt, files: list[DataFile], schema: pa.Schema | None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {"files": [d.path for d in files]}
        if schema is not None:
            record["schema"] = encode_schema(schema)
        return record  # the record, written next, is the switch

    def chains(self, run: RunFolder) -> list[int]:
        if not run.versioned():
            return run.chain_folders()
        return [k for k in run.chain_folders() if (run.record(k) or {}).get("files")]

    def read(self, run: RunFolder, spark: Any, imputation: int | None) -> Any:
        chains = self.chains(run) if imputation is None else [imputation]
        records = [run.record(k) or {} for k in chains]
        schema = next((decode_schema(r["schema"]) for r in records if r.get("schema")), None)
        files = {k: run.chain_files(k) for k in chains}
        return read_chain_files(run, files, spark, self.files, schema)

    def writes_dataframes(self, spark: Any) -> bool:
        return False

    def write_dataframe(self, run: RunFolder, chain: int, df: Any, spark: Any) -> None:
        raise NotImplementedError(f"{self.name} chains are written as files")


OUTPUT = ListedFiles("parquet", PARQUET_FILES)
