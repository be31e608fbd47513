"""Parquet output: a chain is the files its record (`done/chain_k.json`) lists.

The barrier tasks write their rows themselves (`write_part`, plain pyarrow, no Spark);
the in-process engine and Spark's writer go through `RunFolder.write_table` and
`RunFolder.stage_dataframe`. Committing is the run folder's one atomic write of the record;
this module only says which files a chain is. The layout is a Hive-partitioned table, so
`spark.read.parquet(DIR)` and pyarrow (`ignore_prefixes=IGNORE_PREFIXES`: pyarrow skips
names starting with `_` by default, `_imputation=k` included) read it directly too, but see
them only when no attempt is in flight or orphaned; `sparkmice.read_imputed(DIR)` always
reads exactly the committed chains.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sparkmice.io.paths import resolve
from sparkmice.io.run import Attempt, DataFile, RunFolder, data_columns, read_parquet_chains
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


def write_part(root: str, attempt: Attempt, part: int, tables: list[pa.Table]) -> int:
    """One task's completed rows as data file `part` of `attempt` in DIR `root` (without
    `_imputation`: the folder's name carries it); returns the row count."""
    if not tables:
        return 0
    table = data_columns(pa.concat_tables(tables))
    location = resolve(root).join(attempt.file(part))
    location.filesystem.create_dir(location.path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(table, location.path, filesystem=location.filesystem)
    return table.num_rows


class ParquetOutput:
    """A chain's data: the files its commit record lists (see sparkmice.io.run)."""

    name = "parquet"

    def commit(self, run: RunFolder, attempt: Attempt, files: list[DataFile]) -> dict[str, Any]:
        return {"files": [d.path for d in files]}  # the record, written next, is the switch

    def chains(self, run: RunFolder) -> list[int]:
        if not run.versioned():
            return run.chain_folders()
        return [k for k in run.chain_folders() if (run.record(k) or {}).get("files")]

    def read(self, run: RunFolder, spark: Any, imputation: int | None) -> Any:
        chains = self.chains(run) if imputation is None else [imputation]
        return read_parquet_chains(run, {k: run.chain_files(k) for k in chains}, spark)

    def writes_dataframes(self, spark: Any) -> bool:
        return False

    def write_dataframe(self, run: RunFolder, chain: int, df: Any, spark: Any) -> None:
        raise NotImplementedError("Parquet chains are written as files")


OUTPUT = ParquetOutput()
