"""Which cells a run imputes (R mice's `where`), written once per run beside the output.

Each block writes `DIR/_sparkmice/where/block_<b>.parquet`: `_row_id` and one boolean per
column the run fills (`Plan.imputed_columns`, by its name), True where the run imputes
(the input was missing, or config `where` marks the cell), for the block's rows with at
least one such cell (so the files grow with the imputed rows, not the table). How many of
a column's True cells were observed in the input (marked by `where`) is in the file's
metadata (`io.imputed.OBSERVED_KEY`): the readers' count check adds them to the missing
counts, and R's `complete(imp, 0)` is refused for such a run (those observed values were
replaced by imputations). Every chain that starts writes the blocks' files that are not
there yet (the same cells in every chain), so a fan-out task or a resumed run leaves them
whole. Readers (`sparkmice.io.imputed`) check them against the missing counts in
config.json; with them a run needs nothing but its folder to give back the original data
(R's `complete(imp, 0)`), an imputed-cell indicator, or the report's observed-vs-imputed
plots.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkmice.blocks import Block
from sparkmice.io.imputed import with_observed_counts
from sparkmice.io.paths import filesystem_path, write_atomic
from sparkmice.names import ROW_ID
from sparkmice.plan import Plan


def columns_of(plan: Plan) -> list[tuple[int, str]]:
    """(variable index, name) of the columns the run fills."""
    return [(v.index, v.name) for v in plan.imputed_columns]


def block_table(block: Block, columns: list[tuple[int, str]]) -> pa.Table:
    """The block's rows with a missing cell in `columns` ((variable index, name) pairs):
    `_row_id` and a boolean per column."""
    idx = [i for i, _ in columns]
    missing = block.missing[:, idx]
    rows = np.flatnonzero(missing.any(axis=1)) if idx else np.zeros(0, dtype=np.int64)
    arrays = [pa.array(block.row_id[rows], pa.int64())]
    arrays += [pa.array(missing[rows, i], pa.bool_()) for i in range(len(idx))]
    observed = block.where_observed
    counts = {n: int(observed[:, i].sum()) if observed is not None else 0 for i, n in columns}
    table = pa.table(arrays, names=[ROW_ID, *(name for _, name in columns)])
    return with_observed_counts(table, counts)


def save_block(block: Block, uri: str, columns: list[tuple[int, str]]) -> int:
    """Write the block's file unless it is there already (an earlier chain of the run
    wrote the same cells); returns 1 (summed over blocks by the engines' reduce)."""
    fs, path = filesystem_path(uri)
    name = f"{path.rstrip('/')}/block_{block.index}.parquet"
    if fs.get_file_info(name).type == pafs.FileType.File:
        return 1
    buffer = io.BytesIO()
    pq.write_table(block_table(block, columns), buffer)
    write_atomic(fs, name, buffer.getvalue())
    return 1


def table_of_input(table: pa.Table, plan: Plan) -> pa.Table:
    """The record of an input held in memory (with `_row_id`; in-process runs): the same
    cells the blocks see as missing (null, or NaN in a floating column) or config `where`
    marks, by `_row_id`."""
    names = [name for _, name in columns_of(plan)]
    nulls = [pc.is_null(table.column(n), nan_is_null=True) for n in names]
    marks = {n: pc.fill_null(table.column(c), False) for n, c in plan.config.where.items()}
    flags = [pc.or_(f, marks[n]) if n in marks else f for n, f in zip(names, nulls, strict=True)]
    counts = {
        n: (pc.sum(pc.and_(marks[n], pc.invert(f))).as_py() or 0) if n in marks else 0
        for n, f in zip(names, nulls, strict=True)
    }
    out = pa.table([table.column(ROW_ID), *flags], names=[ROW_ID, *names])
    if flags:
        out = out.filter(functools.reduce(pc.or_, flags))
    else:
        out = out.slice(0, 0)
    return with_observed_counts(out.sort_by(ROW_ID), counts)
