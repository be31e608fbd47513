"""How the barrier engine ships input rows to its tasks: packed per block as Arrow IPC
values (sparkmice.engines.barrier.pack_function / unpack_function), without Spark."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice.blocks import BLOCK, ROW_ID, block_of
from sparkmice.engines import barrier
from sparkmice.summaries import merge_encoded, summarised, summarize_arrow, table_summaries


def _input(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "x": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.3),
            "g": pa.array(rng.choice(["a", "b", None], n)),
            ROW_ID: pa.array(rng.permutation(10 * n)[:n], pa.int64()),
        }
    )


def test_packed_rows_unpack_to_the_input_with_blocks_and_task_keys():
    """Every row arrives once, with its block; each value holds one block's rows, keyed for
    the block's task (round robin), and no value is over the size limit (set small here, so
    blocks are split over several values)."""
    table = _input(5000)
    keys = np.array([11, 7, 3], dtype=np.int32)
    pack, schema = barrier.pack_function(table.schema, 6, keys, 20_000)
    packed = pa.Table.from_batches(list(pack(table.to_batches(max_chunksize=700))), schema)

    assert packed.num_rows > 6  # several values per block
    # the limit sets rows per value from the mean row size; IPC framing (schema and batch
    # headers) adds under 2 KB
    assert max(len(v.as_buffer()) for v in packed.column("__rows")) <= 20_000 + 2048
    keys_and_values = zip(packed.column("__task").to_pylist(), packed.column("__rows"), strict=True)
    for key, value in keys_and_values:
        part = pa.ipc.open_stream(value.as_buffer()).read_all()
        blocks = set(part.column(BLOCK).to_pylist())
        assert len(blocks) == 1 and key == keys[blocks.pop() % len(keys)]

    block_schema = table.schema.append(pa.field(BLOCK, pa.int32()))
    back = barrier.unpack_function(block_schema)(packed.to_batches()).sort_by(ROW_ID)
    want = table.sort_by(ROW_ID)
    assert back.schema == block_schema
    assert back.select(table.column_names).equals(want)
    np.testing.assert_array_equal(
        back.column(BLOCK).to_numpy(), block_of(want.column(ROW_ID).to_numpy(), 6)
    )


def test_a_batch_of_packed_values_stays_under_arrow_binary_limit():
    """Spark puts up to maxRecordsPerBatch values in one Arrow batch: that many values of
    the chosen size plus their IPC framing (measured here, x3 for wider schemas) fit in
    a binary array (< 2 GiB), for the default and up to 10^5 records per batch."""
    table = _input(50)
    pack, schema = barrier.pack_function(table.schema, 1, np.array([0], dtype=np.int32), 1)
    values = pa.Table.from_batches(list(pack(table.to_batches())), schema).column("__rows")
    framing = max(len(v.as_buffer()) for v in values)  # one row per value: all framing
    for records in (1, 1_000, 10_000, 100_000):
        assert records * (barrier.packed_value_bytes(records) + 3 * framing) < 2**31 - 1
    assert barrier.packed_value_bytes(1) == 64 << 20


def test_an_empty_partition_packs_to_nothing_and_unpacks_to_an_empty_table():
    table = _input(10).slice(0, 0)
    pack, _ = barrier.pack_function(table.schema, 3, np.array([0], dtype=np.int32), 1 << 20)
    assert list(pack(iter([]))) == []
    block_schema = table.schema.append(pa.field(BLOCK, pa.int32()))
    assert barrier.unpack_function(block_schema)(iter([])).num_rows == 0


def test_batches_whose_timestamp_zone_is_labelled_otherwise_pack_as_the_schema():
    """Spark reports a pandas-made DataFrame's timestamps as UTC but hands its batches over
    labelled Etc/UTC: they are the same instants, packed under the reported schema (this
    failed with "Schema at index 0 was different" before)."""
    when = pa.array(np.arange(4, dtype="int64") * 86_400_000_000, pa.timestamp("us", "UTC"))
    table = pa.table({"when": when, ROW_ID: pa.array([3, 1, 2, 0], pa.int64())})
    labelled = table.cast(pa.schema([pa.field("when", pa.timestamp("us", "Etc/UTC")),
                                     pa.field(ROW_ID, pa.int64())]))  # fmt: skip
    pack, schema = barrier.pack_function(table.schema, 2, np.array([0], np.int32), 1 << 20)
    packed = pa.Table.from_batches(list(pack(labelled.to_batches())), schema)
    block_schema = table.schema.append(pa.field(BLOCK, pa.int32()))
    back = barrier.unpack_function(block_schema)(packed.to_batches()).sort_by(ROW_ID)
    assert back.select(table.column_names).equals(table.sort_by(ROW_ID))


def test_the_packing_pass_summarises_its_rows_in_one_value_that_unpack_skips():
    """With `summarize`, an input partition also yields one `__summary` value: its column
    summaries, which merged over the partitions equal the summaries of all rows (but the
    number of distinct values of a column with too many: a lower bound); the chains'
    unpack skips it."""
    table = _input(3000)
    keys = np.array([5, 2], dtype=np.int32)
    summarize = partial(table_summaries, max_levels=50, skip={ROW_ID})
    pack, schema = barrier.pack_function(table.schema, 4, keys, 1 << 20, summarize=summarize)
    halves = [table.slice(0, 1000), table.slice(1000)]  # two input partitions
    packed = pa.Table.from_batches(
        [b for half in halves for b in pack(half.to_batches(max_chunksize=400))], schema
    )

    summaries = packed.filter(pc.is_valid(packed.column("__summary")))
    assert summaries.num_rows == 2 and summaries.column("__rows").null_count == 2
    merged = merge_encoded(
        summaries.column("__summary").to_pylist(), summarised(table.schema, {ROW_ID}), 50
    )
    whole = summarize_arrow(table, 50, {ROW_ID})
    assert [s.name for s in merged] == ["x", "g"] and merged[1] == whole[1]
    assert merged[0].n_distinct > 50 and replace(merged[0], n_distinct=0) == replace(
        whole[0], n_distinct=0
    )
    block_schema = table.schema.append(pa.field(BLOCK, pa.int32()))
    back = barrier.unpack_function(block_schema)(packed.to_batches()).sort_by(ROW_ID)
    assert back.select(table.column_names).equals(table.sort_by(ROW_ID))
