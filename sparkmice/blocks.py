"""Row blocks: the unit of data every engine moves, and the codes the kernels work on.

A block holds some rows' current values as a float matrix of codes (numbers as they are;
a binary or nominal variable as its level index 0..K-1) and their missingness. Rows are
assigned to blocks by a hash of their row id and sorted by row id within a block, so the
blocks, and with the seed the imputations, do not depend on how Spark partitions the data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice.expression import row_predicate
from sparkmice.names import BLOCK, IMPUTATION, ROW_ID
from sparkmice.plan import InputError, Plan, Variable

REPEATED_ROWS = "rows read more than once"  # starts the InputError a task raises for them


@dataclass
class Block:
    index: int
    row_id: np.ndarray
    values: np.ndarray  # (rows, variables) float64 codes, column-major; NaN until filled
    missing: np.ndarray  # (rows, variables) bool, column-major: the cells imputed
    source: pa.Table | None = None  # the original columns, for writing the completed rows
    cache: dict = field(default_factory=dict)
    ignored: np.ndarray | None = None  # (rows,) bool: rows not fitted on (config `ignore`)
    # (rows, variables) bool: the observed input cells config `where` marks (imputed too)
    where_observed: np.ndarray | None = None
    # binned designs' bin codes of numbers, by variable, with their cuts (`Design.build`)
    bin_codes: dict[int, tuple[tuple[float, ...], np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )


def key_row_ids(keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Row ids of an id column: an integer key as it is; a string key hashed, the first 60
    bits of the SHA-256 of its UTF-8 bytes (as `io.spark.key_row_id` computes it in Spark),
    so that a row's id depends on its key alone, as an integer key's does."""
    if pa.types.is_integer(keys.type):
        return pc.cast(keys, pa.int64()).to_numpy(zero_copy_only=False)
    return np.array(
        [int(hashlib.sha256(k.encode("utf-8")).hexdigest()[:15], 16) for k in keys.to_pylist()],
        dtype=np.int64,
    )


def block_of(row_id: np.ndarray, n_blocks: int) -> np.ndarray:
    """splitmix64(row_id) mod n_blocks: a well-mixed, platform-independent assignment."""
    z = row_id.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_blocks)).astype(np.int32)


def _ticks(t: pa.DataType) -> pa.DataType:
    """The integer type under a date or timestamp (days or time units since the epoch)."""
    return pa.int32() if pa.types.is_date32(t) else pa.int64()


def encode_column(column: pa.ChunkedArray | pa.Array, var: Variable) -> np.ndarray:
    """Codes of one column: floats for continuous, level index for categorical, NaN missing.

    A date or timestamp imputed as a number is its days or time units since the epoch. An
    integer beyond 2^53 becomes the nearest float: fine for a predictor, and observed
    cells are never written back from codes, nor is a pmm donor's value
    (`decode_column`)."""
    if var.kind == "continuous":
        if pa.types.is_temporal(column.type):
            column = pc.cast(column, _ticks(column.type))
        return pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    levels = pa.array(list(var.known_levels()), type=column.type)
    idx = pc.index_in(column, value_set=levels)
    return pc.cast(idx, pa.float64()).to_numpy(zero_copy_only=False)


def decode_column(column: pa.ChunkedArray, codes: np.ndarray, var: Variable) -> pa.ChunkedArray:
    """The column with its missing cells filled from `codes`; observed cells untouched."""
    if column.null_count == 0:
        return column
    if var.kind == "continuous" and pa.types.is_temporal(column.type):
        ticks = _observed_or_rounded(pc.cast(column, _ticks(column.type)), codes)
        return pc.cast(ticks, column.type)  # a valid date / timestamp of the column's type
    if var.kind == "continuous" and _exact_type(column.type):
        return _observed_or_rounded(column, codes)
    elif var.kind == "continuous":
        imputed = pc.cast(pa.array(codes), column.type)
    elif pa.types.is_dictionary(column.type):
        # a categorical keeps its categories, used or not, in their order (an ordered one
        # its meaning), then any level only the configuration declared: every cell is
        # re-indexed into them, observed cells to the level they hold
        known = pa.array(list(var.known_levels()), type=column.type.value_type)
        own = column.unify_dictionaries().chunk(0).dictionary if column.num_chunks else known
        levels = pa.concat_arrays([own, known.filter(pc.invert(pc.is_in(known, own)))])
        at = pc.index_in(known, value_set=levels).to_numpy(zero_copy_only=False)
        indices = pc.cast(pa.array(at[codes.astype(np.int64)]), column.type.index_type)
        return pa.chunked_array(
            [pa.DictionaryArray.from_arrays(indices, levels, ordered=column.type.ordered)]
        )
    else:
        levels = pa.array(list(var.known_levels()), type=column.type)
        imputed = levels.take(pa.array(codes.astype(np.int64)))
    return pc.if_else(pc.is_null(column), imputed, column)


def _exact_type(t: pa.DataType) -> bool:
    """Integers and decimals: types whose values a float code may hold only approximately."""
    return pa.types.is_integer(t) or pa.types.is_decimal(t)


def _observed_or_rounded(column: pa.ChunkedArray, codes: np.ndarray) -> pa.Array:
    """An integer or decimal column with its missing cells filled from float `codes`. A
    code equal to an observed cell's code takes that cell's exact value: pmm's donors are
    the block's observed rows, so an integer beyond 2^53 or a decimal of more than 15
    digits is imputed as an observed value, every digit kept (with several observed values
    under one code, within a unit of the last place of each other, the first in row
    order). Any other code (norm, a donor from another block's pool) is rounded to the
    type's scale, within its range."""
    observed = pc.is_valid(column).to_numpy(zero_copy_only=False)
    exact = column.filter(observed).combine_chunks()
    seen, wanted = codes[observed], codes[~observed]
    order = np.argsort(seen, kind="stable")
    ranked = seen[order]
    at = np.minimum(np.searchsorted(ranked, wanted), max(len(ranked) - 1, 0))
    hit = ranked[at] == wanted if len(ranked) else np.zeros(len(wanted), dtype=bool)
    rounded = pc.cast(pa.array(_within_type(wanted, column.type)), column.type)
    chosen = np.where(hit, order[at] if len(ranked) else 0, len(exact) + np.arange(len(wanted)))
    imputed = pa.concat_arrays([exact, rounded]).take(pa.array(chosen))
    return pa.chunked_array([pc.replace_with_mask(column.combine_chunks(), ~observed, imputed)])


def _within_type(x: np.ndarray, t: pa.DataType) -> np.ndarray:
    """Floats rounded to an integer or decimal type's scale and clipped to its range, so
    that the cast neither fails nor wraps."""
    if pa.types.is_integer(t):
        info = np.iinfo(t.to_pandas_dtype())
        return np.clip(np.rint(x), _float_within(int(info.min)), _float_within(int(info.max)))
    top = _float_within(Decimal(10) ** (t.precision - t.scale) - Decimal(10) ** -t.scale)
    return np.clip(np.round(x, t.scale), -top, top)


def _float_within(bound: int | Decimal) -> float:
    """The float nearest to `bound` that is not beyond it (towards zero): 2^63 - 1 is
    2^63 as a float, which no int64 holds."""
    f = float(bound)
    return float(np.nextafter(f, 0.0)) if abs(Decimal(f)) > abs(Decimal(bound)) else f


def mask_of(table: pa.Table, column: str) -> np.ndarray:
    """A boolean column as a numpy mask (a missing cell is false)."""
    return pc.fill_null(table.column(column), False).to_numpy(zero_copy_only=False)


def split_blocks(table: pa.Table, plan: Plan) -> list[Block]:
    """Encode a table holding `_row_id` and `_block` into its blocks, in block order."""
    row_id = table.column(ROW_ID).to_numpy()
    block = (
        table.column(BLOCK).to_numpy()
        if BLOCK in table.column_names
        else block_of(row_id, plan.n_blocks)
    )
    later = (block[1:] > block[:-1]) | ((block[1:] == block[:-1]) & (row_id[1:] > row_id[:-1]))
    if not later.all():  # (packed rows of one input partition come in this order already)
        order = np.lexsort((row_id, block))
        table = table.take(pa.array(order))
        row_id, block = row_id[order], block[order]
    repeated = int(np.count_nonzero(row_id[1:] == row_id[:-1]))
    if repeated:  # a row id's rows are all in its block, so no repeat escapes this check
        raise InputError(
            f"{REPEATED_ROWS}: {repeated} row(s) of the input repeat another's position in "
            f"its file (a filter over a join or union that repeats rows?), so positions "
            f"cannot tell them apart; give a column that identifies each row "
            f"(`id_column`), or read each row once."
        )
    # codes column by column, each block's rows then copied column-major (designs read
    # whole columns)
    values = np.empty((len(row_id), len(plan.variables)), order="F")
    for i, v in enumerate(plan.variables):
        # a derived passive column is computed by the sampler
        values[:, i] = np.nan if v.derived else encode_column(table.column(v.name), v)
    missing = np.isnan(values)
    config = plan.config
    observed = np.zeros_like(missing) if config.where else None
    for name, column in config.where.items():  # cells to impute beyond the missing ones
        if name in plan.index and observed is not None:
            mask = mask_of(table, column)
            observed[:, plan.index[name]] = mask & ~missing[:, plan.index[name]]
            missing[mask, plan.index[name]] = True
            values[mask, plan.index[name]] = np.nan  # observed values stay out of the sweeps
    ignored = row_predicate(config.ignore).mask(table) if config.ignore else None
    starts: np.ndarray | list[int] = (
        np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if len(block) else []
    )
    bounds = list(starts) + [len(block)]
    return [
        Block(
            int(block[a]),
            row_id[a:b],
            values[a:b].copy(order="F"),
            missing[a:b].copy(order="F"),
            table.slice(a, b - a),
            ignored=None if ignored is None else ignored[a:b],
            where_observed=None if observed is None else observed[a:b].copy(order="F"),
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def completed_table(block: Block, plan: Plan, chain: int) -> pa.Table:
    """The block's original rows with missing cells filled, plus `_imputation` and `_row_id`."""
    src = block.source
    if src is None:
        raise ValueError(f"block {block.index} has no source columns to complete")
    columns, names = [], []
    for name in src.column_names:
        if name in (ROW_ID, BLOCK):
            continue
        col = src.column(name)
        if name in plan.index:
            v = plan.variable(name)
            if name in plan.config.where:  # cells `where` marks are imputed, observed or not
                mask = pa.array(mask_of(src, plan.config.where[name]))
                col = pc.if_else(mask, pa.scalar(None, col.type), col)
            col = decode_column(col, block.values[:, v.index], v)
        columns.append(col)
        names.append(name)
    columns += [
        pa.array(block.row_id, pa.int64()),
        pa.array(np.full(len(block.row_id), chain, dtype=np.int32)),
    ]
    names += [ROW_ID, IMPUTATION]
    return pa.table(columns, names=names)
