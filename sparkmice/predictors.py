"""R mice's `quickpred`: the predictor matrix chosen by correlations, for a run's plan
(`MiceConfig.quickpred`) and as the function `sparkmice.quickpred(data, ...)`.

The statistics are `kernels.quickpred` (sums that add up, R's rule). This module encodes the
data with the plan's variables and sums them in one pass: in-process over an Arrow table's
batches, on Spark as one `mapInArrow` job whose tasks send their sums to the driver as
typed Arrow (no row leaves its task, nothing received is unpickled).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sparkmice.blocks import block_of, encode_column
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.kernels import quickpred as kernel
from sparkmice.names import BLOCK, ROW_ID
from sparkmice.plan import Variable, resolve
from sparkmice.summaries import summarize_arrow

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("sparkmice")

CELLS_PER_BATCH = 2**22  # codes at once: 32 MiB a matrix


def _columns(variables: Sequence[Variable]) -> list[Variable]:
    """The variables in the data (a derived passive column is computed during the run)."""
    return [v for v in variables if not v.derived]


def _categories(v: Variable) -> int:
    """How many 0/1 columns `v` is correlated as: its model categories if nominal, else 0."""
    return v.n_categories if v.kind == "nominal" else 0


def encode(table: pa.Table, variables: Sequence[Variable]) -> np.ndarray:
    """The codes of the data's variables in `table` (NaN missing), a nominal variable's
    as its model category (collapsed levels share one)."""
    columns = _columns(variables)
    codes = np.empty((table.num_rows, len(columns)))
    for j, v in enumerate(columns):
        codes[:, j] = encode_column(table.column(v.name), v)
        if v.groups is not None:
            seen = ~np.isnan(codes[:, j])
            codes[seen, j] = np.asarray(v.groups, dtype=float)[codes[seen, j].astype(int)]
    return codes


def owners(variables: Sequence[Variable]) -> np.ndarray:
    """The variable (an index into the data's variables) of each encoded column."""
    return kernel.owners([_categories(v) for v in _columns(variables)])


def moments_of_table(table: pa.Table, variables: Sequence[Variable]) -> kernel.PairMoments:
    """The pair moments of an Arrow table, summed batch by batch in row order (a batch of
    about CELLS_PER_BATCH codes)."""
    from threadpoolctl import threadpool_limits

    categories = [_categories(v) for v in _columns(variables)]
    total = kernel.PairMoments.empty(len(kernel.owners(categories)))
    rows = max(1_000, CELLS_PER_BATCH // max(len(categories), 1))
    with threadpool_limits(1):  # tall, thin products: BLAS threads only contend (measured)
        for batch in table.to_batches(max_chunksize=rows):
            codes = encode(pa.Table.from_batches([batch]), variables)
            total = kernel.merge_moments(total, kernel.local_moments(codes, categories))
    return total


def block_moments(
    table: pa.Table, variables: Sequence[Variable], n_blocks: int
) -> list[tuple[int, kernel.PairMoments]]:
    """The moments of each row block of `table` (rows with `_row_id`, and `_block` or the
    blocks `blocks.block_of` hashes), a block's rows in row-id order: the same sums however
    Spark partitioned the rows, and in-process."""
    row_id = table.column(ROW_ID).to_numpy()
    if BLOCK in table.column_names:
        block = table.column(BLOCK).to_numpy()
    else:
        block = block_of(row_id, n_blocks)
    order = np.lexsort((row_id, block))
    table, block = table.take(pa.array(order)), block[order]
    bounds = [*np.flatnonzero(np.r_[True, block[1:] != block[:-1]]), len(block)]
    return [
        (int(block[a]), moments_of_table(table.slice(a, b - a), variables))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b > a
    ]


def merge_in_order(
    parts: Iterable[tuple[int, kernel.PairMoments]], width: int
) -> kernel.PairMoments:
    """The moments of all parts, merged in the order of their keys (block numbers)."""
    return functools.reduce(
        kernel.merge_moments,
        (m for _, m in sorted(parts, key=lambda part: part[0])),
        kernel.PairMoments.empty(width),
    )


_MATRICES = ("n", "mean", "m2", "comoment")
_MOMENTS_SCHEMA = pa.schema([(name, pa.float64()) for name in ("shift", *_MATRICES)])


def encode_moments(m: kernel.PairMoments) -> bytes:
    """The moments as one Arrow IPC stream of float64 columns: each matrix flattened by
    rows, and shift[a] on each row of a."""
    width = len(m.shift)
    columns = {"shift": np.repeat(m.shift, width)}
    columns.update({name: getattr(m, name).ravel() for name in _MATRICES})
    table = pa.table(columns, schema=_MOMENTS_SCHEMA)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_moments(rows: int, data: bytes, width: int) -> kernel.PairMoments:
    """The inverse of `encode_moments`, its layout and size checked."""
    table = pa.ipc.open_stream(data).read_all()
    if not table.schema.equals(_MOMENTS_SCHEMA) or table.num_rows != width * width:
        raise ValueError("a task's quickpred sums are not in the expected layout")
    shift, *matrices = (
        table.column(n).to_numpy().reshape(width, width) for n in _MOMENTS_SCHEMA.names
    )
    return kernel.PairMoments(rows, shift[:, 0].copy(), *matrices)


def moments_of_spark(
    df: Any,
    variables: Sequence[Variable],
    unpack: Callable[[Iterator[pa.RecordBatch]], pa.Table] | None = None,
) -> kernel.PairMoments:
    """One Spark job whose tasks send their sums to the driver, which merges them. With
    `unpack` (the engines' cache of rows with row ids and blocks: the function that makes
    a partition's batches a table of rows, as `summaries.summarize_spark`), sums per
    block, merged in block order (`block_moments`); else per partition, in partition order."""
    from sparkmice.io.spark import column

    names = [v.name for v in _columns(variables)]
    width = len(owners(variables))
    layout = pa.schema([("block", pa.int64()), ("rows", pa.int64()), ("moments", pa.binary())])

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if unpack is None:
            tables = (pa.Table.from_batches([b]) for b in batches)
            sums = (moments_of_table(t, variables) for t in tables)
            parts = [
                (0, functools.reduce(kernel.merge_moments, sums, kernel.PairMoments.empty(width)))
            ]
        else:
            parts = block_moments(unpack(batches).select([*names, ROW_ID, BLOCK]), variables, 1)
        yield pa.RecordBatch.from_pydict(
            {
                "block": [k for k, _ in parts],
                "rows": [m.rows for _, m in parts],
                "moments": [encode_moments(m) for _, m in parts],
            },
            schema=layout,
        )

    source = df if unpack is not None else df.select(*[column(n) for n in names])
    rows = source.mapInArrow(task, "block long, rows long, moments binary").collect()
    return merge_in_order(
        ((int(r["block"]), decode_moments(int(r["rows"]), r["moments"], width)) for r in rows),
        width,
    )


def association(
    moments: Callable[[Sequence[Variable]], kernel.PairMoments], variables: Sequence[Variable]
) -> kernel.Association:
    """R's correlations per pair of the data's variables (in their order), from one pass
    of `moments` (in-process or Spark), logged with its time."""
    t0 = time.perf_counter()
    found = kernel.association(moments(variables), owners(variables))
    seconds = time.perf_counter() - t0
    log.info(f"quickpred: correlations from one pass over the data in {seconds:.1f} s")
    return found


def correlate_table(
    table: pa.Table, n_blocks: int | None = None
) -> Callable[[Sequence[Variable]], kernel.Association]:
    """For `plan.resolve`: the association of the variables in an Arrow table; with
    `n_blocks` (a table with `_row_id`), summed by block as on Spark (`block_moments`)."""

    def moments(variables: Sequence[Variable]) -> kernel.PairMoments:
        if n_blocks is None:
            return moments_of_table(table, variables)
        return merge_in_order(block_moments(table, variables, n_blocks), len(owners(variables)))

    return functools.partial(association, moments)


def correlate_spark(
    df: Any, unpack: Callable[[Iterator[pa.RecordBatch]], pa.Table] | None = None
) -> Callable[[Sequence[Variable]], kernel.Association]:
    """For `plan.resolve`: the association of the variables in a Spark DataFrame."""
    return functools.partial(association, functools.partial(moments_of_spark, df, unpack=unpack))


def quickpred(
    data: Any,
    mincor: float = 0.1,
    minpuc: float = 0.0,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    method: str = "pearson",
    config: MiceConfig | None = None,
) -> pd.DataFrame:
    """R's `quickpred(data, mincor, minpuc, include, exclude, method)`: the predictor
    matrix (pandas, 0/1; rows targets, columns predictors) over the data's variables.

    data: a pandas DataFrame, Arrow table, Spark DataFrame, or a path / table name as the
    command line's --input. `config`: other run options that shape the variables (kind,
    levels, exclude, collapse_below, max_levels, ...). Nominal variables with three or
    more categories are correlated through one 0/1 column per category (the largest
    correlation counts); R uses their integer codes."""
    import pandas as pd

    chosen = kernel.Options(mincor, minpuc, tuple(include), tuple(exclude), method)
    if not kernel.valid(dict(vars(chosen))):
        raise ConfigError(
            f"quickpred's arguments must be mincor and minpuc in [0, 1], include and exclude "
            f"lists of column names, method one of {list(kernel.METHODS)} (R's 'spearman' is "
            f"not built); got {vars(chosen)}."
        )
    cfg = MiceConfig.from_dict({**(config.to_dict() if config else {}), "quickpred": False})
    if isinstance(data, str):
        from sparkmice.io.spark import read_input
        from sparkmice.session import get_spark

        data = read_input(get_spark(), data)
    skip = set(cfg.excluded()) | ({cfg.id_column} if cfg.id_column else set())
    if isinstance(data, pd.DataFrame | pa.Table):
        table = data
        if isinstance(data, pd.DataFrame):
            table = pa.Table.from_pandas(data, preserve_index=False)
        plan = resolve(table.schema, summarize_arrow(table, cfg.max_levels, skip), cfg)
        correlate = correlate_table(table)
    else:
        from sparkmice.io.spark import arrow_schema, nan_to_null
        from sparkmice.summaries import summarize_spark

        df = nan_to_null(data)
        plan = resolve(arrow_schema(df.schema), summarize_spark(df, cfg.max_levels, skip), cfg)
        correlate = correlate_spark(df)
    names = [v.name for v in _columns(plan.variables)]
    for option, cols in (("include", chosen.include), ("exclude", chosen.exclude)):
        unknown = [c for c in cols if c not in names]
        if unknown:
            raise ConfigError(
                f"quickpred's {option} names {unknown}, not variables of the data; they are "
                f"{names}."
            )
    matrix = kernel.rule(correlate(plan.variables), names, chosen)
    return pd.DataFrame(matrix, index=names, columns=names)
