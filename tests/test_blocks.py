"""sparkmice/blocks.py: rows hashed to blocks, columns to codes and back.

Blocks depend on row ids only (splitmix64), hold every row once in row-id order, code a
categorical as its level index, and give back each observed cell unchanged.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from small_plans import plan_of, table_of

from sparkmice.blocks import (
    IMPUTATION,
    REPEATED_ROWS,
    ROW_ID,
    block_of,
    completed_table,
    decode_column,
    encode_column,
    split_blocks,
)
from sparkmice.plan import InputError, Variable

MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The reference splitmix64 finaliser in Python integers (Steele, Lea & Flood 2014)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_block_of_is_splitmix64_of_the_row_id():
    ids = np.array([0, 1, 2, 12345, 2**40 + 7, 2**62], dtype=np.int64)
    for n_blocks in (1, 3, 7):
        want = [splitmix64(int(i)) % n_blocks for i in ids]
        assert block_of(ids, n_blocks).tolist() == want


def test_blocks_are_filled_evenly():
    counts = np.bincount(block_of(np.arange(70_000), 7), minlength=7)
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, None, -2.0, 4.25, None, 0.0],
            "n": pd.array([3, None, 5, 5, 7, None], dtype="Int64"),
            "s": ["b", "a", None, "c", "a", "b"],
            "o": pd.Categorical(
                ["hi", None, "lo", "lo", "mid", "hi"], categories=["lo", "mid", "hi"], ordered=True
            ),
        }
    )


def test_split_blocks_keeps_every_row_once_in_row_id_order(frame):
    plan, blocks = plan_of(pd.concat([frame] * 50, ignore_index=True), row_blocks=4)
    assert [b.index for b in blocks] == sorted(b.index for b in blocks)
    ids = np.concatenate([b.row_id for b in blocks])
    assert sorted(ids.tolist()) == list(range(300))
    for b in blocks:
        assert np.all(np.diff(b.row_id) > 0)
        assert np.all(block_of(b.row_id, plan.n_blocks) == b.index)
        assert b.values.flags.f_contiguous and b.missing.flags.f_contiguous
        np.testing.assert_array_equal(b.missing, np.isnan(b.values))
        assert b.source.num_rows == len(b.row_id)
        np.testing.assert_array_equal(b.source.column(ROW_ID).to_numpy(), b.row_id)


def test_rows_already_in_block_and_row_id_order_give_the_same_blocks(frame):
    """The packed rows of one input partition arrive grouped by block in row id order:
    split without sorting them again, into the same blocks as rows in any order."""
    df = pd.concat([frame] * 50, ignore_index=True)
    plan, blocks = plan_of(df, row_blocks=4)
    table = table_of(df)
    block = block_of(table.column(ROW_ID).to_numpy(), plan.n_blocks)
    ordered = table.append_column("_block", pa.array(block.astype(np.int32)))
    ordered = ordered.take(pa.array(np.argsort(block, kind="stable")))
    for got, want in zip(split_blocks(ordered, plan), blocks, strict=True):
        assert got.index == want.index
        np.testing.assert_array_equal(got.row_id, want.row_id)
        np.testing.assert_array_equal(got.values, want.values)
        assert got.source.drop_columns(["_block"]).equals(want.source)


def test_rows_with_one_row_id_are_refused_naming_the_fix():
    """Two rows with one id (a repeated row that the row ids did not tell apart) would be
    imputed and written as one: refused, however many blocks (a row id's rows all hash to
    its block), with the count and the fix, not the rows' values."""
    df = pd.DataFrame({"x": [1.0, None, 3.0, 4.0, 5.0], "z": [0.0, 1.0, 2.0, 3.0, 4.0]})
    for blocks in (1, 3):
        plan, _ = plan_of(df, row_blocks=blocks)
        table = table_of(df)
        ids = pa.array([0, 1, 2, 1, 2], pa.int64())
        table = table.set_column(table.schema.get_field_index(ROW_ID), ROW_ID, ids)
        with pytest.raises(InputError, match=f"^{REPEATED_ROWS}: 2 row") as raised:
            split_blocks(table, plan)
        assert "id_column" in str(raised.value) and "4.0" not in str(raised.value)


def test_codes_are_values_and_level_indices(frame):
    plan, (block,) = plan_of(frame)
    ix = plan.index
    assert plan.variable("s").levels == ("a", "b", "c")
    assert plan.variable("o").levels == ("lo", "mid", "hi")
    np.testing.assert_array_equal(block.values[:, ix["x"]], frame.x.to_numpy())
    np.testing.assert_array_equal(block.values[:, ix["n"]], [3, np.nan, 5, 5, 7, np.nan])
    np.testing.assert_array_equal(block.values[:, ix["s"]], [1, 0, np.nan, 2, 0, 1])
    np.testing.assert_array_equal(block.values[:, ix["o"]], [2, np.nan, 0, 0, 1, 2])


def test_decode_fills_only_missing_cells_in_the_columns_type(frame):
    plan, (block,) = plan_of(frame)
    table = table_of(frame)
    out = {}
    for name, fill in {"x": 9.0, "n": 4.6, "s": 2.0, "o": 1.0}.items():
        j = plan.index[name]
        codes = np.where(block.missing[:, j], fill, block.values[:, j])  # every cell's code
        out[name] = decode_column(table.column(name), codes, plan.variable(name))
    assert out["x"].to_pylist() == [1.5, 9.0, -2.0, 4.25, 9.0, 0.0]
    assert out["n"].type == pa.int64() and out["n"].to_pylist() == [3, 5, 5, 5, 7, 5]  # rounded
    assert out["s"].to_pylist() == ["b", "a", "c", "c", "a", "b"]
    assert out["o"].type == table.column("o").type  # ordered dictionary, same levels
    assert out["o"].to_pylist() == ["hi", "mid", "lo", "lo", "mid", "hi"]


def _continuous(name: str, t: pa.DataType) -> Variable:
    return Variable(name, 0, "continuous", t, None, 1)


def test_integers_beyond_two_to_the_53_are_imputed_as_the_donors_exact_values():
    """pmm's code for a missing cell is a donor's code, and float codes of integers near
    2^63 collide (a unit of the last place is 1024 there): the cell takes the observed
    value under that code, every digit kept; 2^63 - 1 itself, whose code is 2^63, is no
    longer cast out of int64's range (it crashed the run)."""
    top = 2**63 - 1
    observed = [top, 2**62 + 12345, -(2**63), 7]
    column = pa.chunked_array([pa.array([*observed, None, None, None, None], pa.int64())])
    codes = np.array([float(v) for v in observed] * 2)  # each missing cell a donor's code
    out = decode_column(column, codes, _continuous("big", pa.int64()))
    assert out.type == pa.int64() and out.to_pylist() == observed * 2
    # codes of no observed cell (norm's draws) round into the type's range, not past it
    codes[4:] = [1e30, -1e30, 2.0**62 + 0.4, 3.6]
    out = decode_column(column, codes, _continuous("big", pa.int64()))
    assert out.to_pylist()[4:] == [2**63 - 1024, -(2**63), 2**62, 4]
    small = pa.chunked_array([pa.array([1, None, None], pa.int8())])
    out = decode_column(small, np.array([1.0, 300.7, -1e9]), _continuous("b", pa.int8()))
    assert out.to_pylist() == [1, 127, -128]


def test_decimals_of_more_digits_than_a_float_are_imputed_as_the_donors_values():
    """A decimal(38, 10) of 22 significant digits: its float code keeps 16, so the donor's
    exact value must come from the observed cells; other codes round to the scale and
    stay within the precision."""
    observed = [Decimal("1000000063478.0285644531"), Decimal("999999936521.9714355469")]
    t = pa.decimal128(38, 10)
    column = pa.chunked_array([pa.array([*observed, None, None], t)])
    codes = np.array([float(observed[0]), float(observed[1]), float(observed[1]), 1.0 / 3.0])
    out = decode_column(column, codes, _continuous("d", t)).to_pylist()
    assert out == [*observed, observed[1], Decimal("0.3333333333")]
    narrow = pa.chunked_array([pa.array([Decimal("1.50"), None], pa.decimal128(4, 2))])
    out = decode_column(narrow, np.array([1.5, 1e9]), _continuous("d", pa.decimal128(4, 2)))
    assert out.to_pylist() == [Decimal("1.50"), Decimal("99.99")]


def test_a_complete_column_is_returned_as_it_is(frame):
    plan, _ = plan_of(frame.fillna({"x": 0.0}))
    column = table_of(frame.fillna({"x": 0.0})).column("x")
    assert decode_column(column, np.zeros(6), plan.variable("x")) is column


def test_encode_matches_levels_of_a_dictionary_column(frame):
    plan, _ = plan_of(frame)
    column = table_of(frame).column("o")
    assert pa.types.is_dictionary(column.type)
    np.testing.assert_array_equal(
        encode_column(column, plan.variable("o")), [2, np.nan, 0, 0, 1, 2]
    )


def test_completed_table_has_every_input_column_row_id_and_imputation(frame):
    plan, (block,) = plan_of(frame)
    block.values[block.missing] = 0.0  # "imputed": level 0 / the value 0
    out = completed_table(block, plan, chain=3)
    assert out.column_names == ["x", "n", "s", "o", ROW_ID, IMPUTATION]
    assert out.column(IMPUTATION).to_pylist() == [3] * 6
    assert out.column(ROW_ID).to_pylist() == list(range(6))
    assert out.column("s").to_pylist() == ["b", "a", "a", "c", "a", "b"]
    assert out.column("x").to_pylist() == [1.5, 0.0, -2.0, 4.25, 0.0, 0.0]


def test_split_blocks_reads_a_given_block_column():
    df = pd.DataFrame({"x": [1.0, None, 3.0, 4.0], "z": [0.0, 1.0, 2.0, 3.0]})
    plan, _ = plan_of(df, row_blocks=2)
    table = table_of(df)
    table = table.append_column("_block", pa.array([1, 0, 1, 0], pa.int32()))
    blocks = split_blocks(table, plan)
    assert [(b.index, b.row_id.tolist()) for b in blocks] == [(0, [1, 3]), (1, [0, 2])]
