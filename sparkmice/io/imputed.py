"""The completed data of a run in R's shapes (`complete()`), and which cells were imputed.

R mice's `complete(imp, action, include)`: an imputation k (1..m) or the original data
(0); "long" (stacked, `_imputation`, with `_imputation = 0` the original if `include`);
"all" (a list of frames); "broad" (one row per row id, the columns of imputation 1 as
`<col>.1`, then those of imputation 2, ...) and "repeated" (the same columns grouped by
column: `<col>.1`, `<col>.2`, ...). R's `where` is read from the run's record of its
imputed cells (`sparkmice.where`, checked against config.json's missing counts), so the
original data (observed cells, the imputed ones missing again) and the indicator
`<col>_imputed` need nothing but the run. pandas here; the same shapes as Spark
DataFrames when a session is given (joins on `_row_id`, nothing collected).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkmice.io.paths import write_atomic
from sparkmice.io.run import RunFolder
from sparkmice.names import IMPUTATION, IMPUTED_SUFFIX, ROW_ID, WHERE_DIR

if TYPE_CHECKING:
    import pandas as pd

SHAPES = ("long", "all", "broad", "repeated")
PANDAS_ROWS = 2_000_000  # imputed rows (m × n) above which the commands read with Spark


OBSERVED_KEY = b"sparkmice.where_observed"  # JSON {column: observed cells marked by `where`}


class NoWhereError(FileNotFoundError):
    """The run folder holds no (whole) record of its imputed cells."""


@dataclass(frozen=True)
class Completed:
    """A run's completed data however it is held (in memory, or a run folder read with
    pandas or Spark), in R's shapes. `imputation_of(k)`: imputation k (1..m) with
    `_row_id`, without `_imputation` (pandas: by `_row_id`); `long_of()`: all of them
    stacked, by `_imputation` then `_row_id`; `where_of()`: the record of imputed cells
    (Arrow, or a Spark DataFrame when `spark`); `where_option`: the columns config `where`
    imputed observed cells of (their input values are not in the run: no original data)."""

    m: int
    chains: list[int]
    imputation_of: Callable[[int], Any]
    long_of: Callable[[], Any]
    where_of: Callable[[], Any]
    spark: bool = False
    where_option: tuple[str, ...] = ()

    def complete(self, action: int | str = 1, include: bool = False, indicator: bool = False):
        """R's complete(imp, action, include) (see the module docstring); `indicator`
        adds `<col>_imputed` for each column the run fills."""
        m = self.m
        if not (action in SHAPES or (isinstance(action, int) and 0 <= action <= m)):
            raise ValueError(
                f"action must be an imputation in 1..{m}, 0 (the original data) or one of "
                f"{list(SHAPES)}; got {action!r}."
            )
        if include and not isinstance(action, str):
            raise ValueError(
                "include applies to the actions 'long', 'all', 'broad' and 'repeated'; the "
                "original data alone are complete(0)."
            )
        if action == "long" and not include and not indicator:
            return self.long_of()
        keys = [action] if isinstance(action, int) else list(range(0 if include else 1, m + 1))
        frames = {k: self.imputation(k) for k in keys}
        columns = [c for c in next(iter(frames.values())).columns if c not in (ROW_ID, IMPUTATION)]
        if indicator:
            mark = spark_with_indicator if self.spark else with_indicator
            flags = self.where_of()
            frames = {k: mark(f, flags) for k, f in frames.items()}
        return (spark_shaped if self.spark else shaped)(frames, action, columns)

    def imputation(self, k: int) -> Any:
        """Imputation k; k = 0: the original data, from the first imputation with the
        imputed cells missing again."""
        if k != 0:
            return self.imputation_of(k)
        if self.where_option:
            raise ValueError(
                f"the original data (complete 0) are not in a run with config `where` (for "
                f"{list(self.where_option)}): its marked observed cells were replaced by "
                f"imputations; read the input itself, or use where() for the imputed cells."
            )
        first = self.imputation_of(self.chains[0])
        return (spark_original if self.spark else original_frame)(first, self.where_of())

    def where(self) -> Any:
        """R's `where`: `_row_id` and a boolean per filled column, every row."""
        rows = self.imputation_of(self.chains[0])
        if self.spark:
            return spark_where(self.where_of(), rows)
        return where_frame(self.where_of(), rows[ROW_ID].to_numpy())


def of_folder(run: RunFolder, spark: Any = None) -> Completed:
    """The completed data of the run in `run` (pandas, or Spark DataFrames if `spark`)."""
    config = run.read_config()
    if config is None:
        raise FileNotFoundError(f"{run.root} is not the output of a sparkmice run (no config).")

    def imputation_of(k: int) -> Any:
        df = run.read(spark, k)
        return df.drop(IMPUTATION) if spark is not None else df.drop(columns=[IMPUTATION])

    return Completed(
        int(config["m"]), run.chains(), imputation_of, lambda: run.read(spark),
        lambda: read_where(run, spark), spark is not None, where_option_of(config),
    )  # fmt: skip


def where_option_of(config: dict[str, Any]) -> tuple[str, ...]:
    """The columns config `where` marks cells of, in a run's config.json."""
    return tuple(config.get("config", {}).get("where") or {})


def read_where(run: RunFolder, spark: Any = None) -> Any:
    """The run's imputed cells: `_row_id` and a boolean per filled column, for the rows
    with an imputed cell (Arrow, sorted by `_row_id`; a Spark DataFrame if `spark`);
    refused (NoWhereError) unless each column's cells add up to its missing count in
    config.json plus the observed cells config `where` marked (the files' metadata)."""
    files = [
        info
        for info in run.fs.get_file_info(
            pafs.FileSelector(run.meta(WHERE_DIR).path, allow_not_found=True)
        )
        if info.is_file and info.base_name.endswith(".parquet")
    ]
    if not files:
        raise NoWhereError(
            f"{run.root} holds no record of which cells were imputed (a run of an older "
            f"sparkmice, or one that never started a chain): give the original data "
            f"(original=..., --original), or rerun the imputation."
        )
    paths = sorted(info.path for info in files)
    schemas = [pq.read_schema(p, filesystem=run.fs) for p in paths]
    names = schemas[0].names
    observed = {c: sum(observed_counts(s).get(c, 0) for s in schemas) for c in names[1:]}
    if spark is None:
        import pyarrow.dataset as ds  # here: it imports pandas, which Spark's workers skip

        table = ds.dataset(paths, filesystem=run.fs, format="parquet").to_table()
        counts = [int(np.count_nonzero(table.column(c).to_numpy())) for c in names[1:]]
    else:
        from pyspark.sql import functions as F

        uris = sorted(run.meta(WHERE_DIR, info.base_name).uri for info in files)
        table = spark.read.parquet(*uris).toDF(*names)
        sums = [F.sum(F.col(_q(c)).cast("long")) for c in names[1:]]
        counts = [int(n or 0) for n in table.agg(*sums).first()] if sums else []
    config = run.read_config() or {}
    expected = {v["name"]: v.get("n_missing", 0) for v in config.get("variables", [])}
    wrong = [
        c
        for c, n in zip(names[1:], counts, strict=True)
        if c not in expected or n != expected[c] + observed[c]
    ]
    if wrong:
        raise NoWhereError(
            f"{run.root}: the record of imputed cells does not match config.json for "
            f"column(s) {wrong} (a chain still starting, or files of another run); rerun "
            f"the imputation with --overwrite."
        )
    if spark is not None:
        return table
    return with_observed_counts(table.sort_by(ROW_ID), observed)


def with_observed_counts(table: pa.Table, counts: dict[str, int]) -> pa.Table:
    """`table` with the counts of its observed-in-the-input True cells in its metadata."""
    return table.replace_schema_metadata({OBSERVED_KEY: json.dumps(counts).encode()})


def observed_counts(schema: pa.Schema) -> dict[str, int]:
    """The counts `with_observed_counts` recorded (none: a run without `where`)."""
    raw = (schema.metadata or {}).get(OBSERVED_KEY)
    return {str(k): int(n) for k, n in json.loads(raw).items()} if raw else {}


def write_where(run: RunFolder, table: pa.Table) -> None:
    """Write a whole `where` table (as `read_where` gives it) into `run` (a copied run)."""
    import io

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_atomic(run.fs, run.meta(WHERE_DIR, "block_all.parquet").path, buffer.getvalue())


def _indicator_names(columns: list[str], data_columns: list[str]) -> dict[str, str]:
    """`<col>_imputed` for each filled column; refused if the data hold that name."""
    names = {c: f"{c}{IMPUTED_SUFFIX}" for c in columns}
    taken = sorted(set(names.values()) & set(data_columns))
    if taken:
        raise ValueError(
            f"the data already have column(s) {taken}, the names of the imputed-cell "
            f"indicator; rename them, or use where() instead of indicator=True."
        )
    return names


# -- pandas (imported inside: Spark's workers import this module) ---------------------------------
def where_frame(where: pa.Table, row_ids: np.ndarray) -> pd.DataFrame:
    """R's `where` over rows `row_ids`: `_row_id` and a boolean per filled column, in
    the order of `row_ids`."""
    import pandas as pd

    imputed = where.to_pandas()
    rows = pd.Index(imputed[ROW_ID]).get_indexer(row_ids)
    found = rows >= 0
    out = {ROW_ID: np.asarray(row_ids, dtype=np.int64)}
    for c in imputed.columns.drop(ROW_ID):
        flags = np.zeros(len(row_ids), dtype=bool)
        flags[found] = imputed[c].to_numpy(dtype=bool)[rows[found]]
        out[c] = flags
    return pd.DataFrame(out)


def original_frame(imputation: pd.DataFrame, where: pa.Table) -> pd.DataFrame:
    """One completed imputation with its imputed cells missing again: the input data."""
    flags = where_frame(where, imputation[ROW_ID].to_numpy())
    out = imputation.copy()
    for c in flags.columns.drop(ROW_ID):
        if flags[c].any():
            out[c] = out[c].mask(flags[c].to_numpy())
    return out


def with_indicator(frame: pd.DataFrame, where: pa.Table) -> pd.DataFrame:
    """`frame` (rows with `_row_id`) and `<col>_imputed` for each filled column."""
    flags = where_frame(where, frame[ROW_ID].to_numpy())
    names = _indicator_names(list(flags.columns.drop(ROW_ID)), list(frame.columns))
    return frame.assign(**{names[c]: flags[c].to_numpy() for c in names})


def is_default_index(index: pd.Index) -> bool:
    """Whether a pandas index is the default one, 0, 1, ... without a name (no labels of
    the data's own)."""
    import pandas as pd

    return index.name is None and index.equals(pd.RangeIndex(len(index)))


def shaped(
    frames: dict[int, pd.DataFrame], shape: str | int, data_columns: list[str]
) -> Any:
    """Imputations `frames` (k -> frame of one imputation, 0 the original; each with
    `_row_id`, sorted by it) in R's `shape`; an int: that one frame."""
    import pandas as pd

    if isinstance(shape, int) or shape == "all":
        out = [f.drop(columns=[IMPUTATION], errors="ignore") for f in frames.values()]
        return out[0] if isinstance(shape, int) else out
    first = next(iter(frames.values()))
    own_index = not is_default_index(first.index)  # the input's own labels
    if shape == "long":
        parts = [f.drop(columns=[IMPUTATION], errors="ignore").assign(**{IMPUTATION: np.int32(k)})
                 for k, f in frames.items()]  # fmt: skip
        return pd.concat(parts, ignore_index=not own_index)
    wide = {k: f.set_index(ROW_ID)[data_columns] for k, f in frames.items()}
    pairs = [(c, k) for k in wide for c in data_columns]  # broad: by imputation
    if shape == "repeated":
        pairs = [(c, k) for c in data_columns for k in wide]
    out = pd.DataFrame({f"{c}.{k}": wide[k][c].to_numpy() for c, k in pairs})
    if own_index:
        out.index = first.index
    out.insert(0, ROW_ID, first[ROW_ID].to_numpy())
    extra = [c for c in first.columns if c not in data_columns and c not in (ROW_ID, IMPUTATION)]
    return out.assign(**{c: first[c].to_numpy() for c in extra})  # indicators, once


# -- Spark ----------------------------------------------------------------------------------------
def _q(name: str) -> str:
    """A column name for Spark's parser (dots, spaces and backticks kept as they are)."""
    return "`" + name.replace("`", "``") + "`"


def spark_where(where: Any, rows: Any) -> Any:
    """R's `where` over the Spark DataFrame `rows` (holding `_row_id`) from the record
    `where` (`read_where(run, spark)`): `_row_id` and a boolean per filled column."""
    from pyspark.sql import functions as F

    names = where.columns[1:]
    marks = [f"__sparkmice_imputed_{i}" for i in range(len(names))]
    joined = rows.select(ROW_ID).join(where.toDF(ROW_ID, *marks), on=ROW_ID, how="left")
    flags = [F.coalesce(F.col(m), F.lit(False)).alias(c) for c, m in zip(names, marks, strict=True)]
    return joined.select(ROW_ID, *flags)


def spark_original(imputation: Any, where: Any) -> Any:
    """One imputation (Spark) with its imputed cells null again: the input data."""
    from pyspark.sql import functions as F

    names = where.columns[1:]
    marks = {c: f"__sparkmice_imputed_{i}" for i, c in enumerate(names)}
    joined = imputation.join(where.toDF(ROW_ID, *marks.values()), on=ROW_ID, how="left")
    return joined.select(
        *(
            F.when(F.coalesce(F.col(marks[c]), F.lit(False)), F.lit(None))
            .otherwise(F.col(_q(c)))
            .alias(c)
            if c in marks
            else F.col(_q(c))
            for c in imputation.columns
        )
    )


def spark_with_indicator(frame: Any, where: Any) -> Any:
    """`frame` and `<col>_imputed` for each filled column (Spark)."""
    from pyspark.sql import functions as F

    names = _indicator_names(where.columns[1:], list(frame.columns))
    joined = frame.join(where.toDF(ROW_ID, *names.values()), on=ROW_ID, how="left")
    return joined.select(
        *(F.col(_q(c)) for c in frame.columns),
        *(F.coalesce(F.col(_q(n)), F.lit(False)).alias(n) for n in names.values()),
    )


def spark_shaped(frames: dict[int, Any], shape: str | int, data_columns: list[str]) -> Any:
    """`shaped` for Spark DataFrames (broad and repeated: one join per imputation)."""
    from pyspark.sql import functions as F

    if isinstance(shape, int) or shape == "all":
        out = [f.drop(IMPUTATION) if IMPUTATION in f.columns else f for f in frames.values()]
        return out[0] if isinstance(shape, int) else out
    if shape == "long":
        parts = [
            (f.drop(IMPUTATION) if IMPUTATION in f.columns else f).withColumn(
                IMPUTATION, F.lit(k).cast("int")
            )
            for k, f in frames.items()
        ]
        return reduce(lambda a, b: a.unionByName(b), parts)
    first = next(iter(frames.values()))
    extra = [c for c in first.columns if c not in data_columns and c not in (ROW_ID, IMPUTATION)]
    wide = [
        f.select(ROW_ID, *(F.col(_q(c)).alias(f"{c}.{k}") for c in data_columns))
        for k, f in frames.items()
    ]
    joined = reduce(lambda a, b: a.join(b, on=ROW_ID), wide)
    if extra:
        joined = joined.join(first.select(ROW_ID, *(F.col(_q(c)) for c in extra)), on=ROW_ID)
    keys = list(frames)
    pairs = [(c, k) for k in keys for c in data_columns]
    if shape == "repeated":
        pairs = [(c, k) for c in data_columns for k in keys]
    return joined.select(
        ROW_ID, *(F.col(_q(f"{c}.{k}")) for c, k in pairs), *(F.col(_q(c)) for c in extra)
    )
