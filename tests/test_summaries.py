"""sparkmice.summaries: column summaries of an Arrow table, their merge, and the typed
encoding in which Spark tasks send them to the driver (no pickle)."""

from __future__ import annotations

import datetime
import pickle

import pandas as pd
import pyarrow as pa
import pytest

from sparkmice.summaries import (
    decode_summaries,
    encode_summaries,
    merge_summaries,
    summarize_arrow,
)


@pytest.fixture
def table() -> pa.Table:
    frame = pd.DataFrame(
        {
            "x": [1.5, None, 2.5, 2.5, float("inf")],
            "big": pd.array([2**62 + 1, 2**62 + 2, None, 2**62 + 2, 7], dtype="Int64"),
            "s": ["b", "a", None, "b", "c"],
            "sev": pd.Categorical(
                ["lo", "hi", "lo", None, "hi"], ["lo", "mid", "hi"], ordered=True
            ),
            "flag": [True, False, None, True, True],
            "day": [datetime.date(2020, 1, d) for d in (1, 2, 2, 3, 1)],
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_summaries_round_trip_through_the_encoding(table):
    """Every field, and values of every type (strings, 62-bit integers, dates, ordered
    categories), come back equal; with few max_levels the distinct values are dropped."""
    for max_levels in (500, 2):
        summaries = summarize_arrow(table, max_levels, set())
        assert decode_summaries(encode_summaries(summaries), table.schema) == summaries
    by_name = {s.name: s for s in summarize_arrow(table, 500, set())}
    assert by_name["big"].distinct == (7, 2**62 + 1, 2**62 + 2)
    assert by_name["sev"].distinct == ("lo", "mid", "hi") and by_name["sev"].ordered
    assert by_name["x"].n_infinite == 1 and by_name["s"].counts == (1, 2, 1)


def test_merge_of_halves_equals_the_whole(table):
    whole = summarize_arrow(table.drop_columns(["sev"]), 500, set())
    halves = [summarize_arrow(t.drop_columns(["sev"]), 500, set())
              for t in (table.slice(0, 2), table.slice(2))]  # fmt: skip
    merged = [merge_summaries(a, b, 500) for a, b in zip(*halves, strict=True)]
    assert merged == whole


def test_a_pickle_is_refused_not_loaded(tmp_path, table):
    """What a task sends is parsed as Arrow IPC; a pickle (which would run code when
    loaded) is an error, and its code does not run."""
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(pa.ArrowInvalid):
        decode_summaries(pickle.dumps(Exploit()), table.schema)
    assert not marker.exists()


def test_values_of_another_type_are_refused(table):
    summaries = summarize_arrow(table.select(["s"]), 500, set())
    wrong = pa.schema([pa.field("s", pa.int64())])
    with pytest.raises(ValueError, match="values of another type"):
        decode_summaries(encode_summaries(summaries), wrong)


def test_many_valued_float_columns_are_told_from_their_first_rows():
    """A floating column with more than max_levels values among its first PREFIX_ROWS is
    continuous without hashing the rest; one with few values there is still counted whole
    (its later rows decide), and so are other types."""
    import numpy as np

    from sparkmice.summaries import PREFIX_ROWS

    n = 3 * PREFIX_ROWS
    few_then_many = np.r_[np.zeros(PREFIX_ROWS), np.arange(n - PREFIX_ROWS, dtype=float)]
    t = pa.table({
        "cont": np.arange(n, dtype=float), "three": np.arange(n) % 3 * 1.5,
        "late": few_then_many, "ints": np.arange(n),
    })  # fmt: skip
    s = {c.name: c for c in summarize_arrow(t, 20, set())}
    assert s["cont"].distinct is None and 20 < s["cont"].n_distinct <= PREFIX_ROWS
    assert s["three"].distinct == (0.0, 1.5, 3.0) and s["three"].counts == (n // 3,) * 3
    assert s["late"].distinct is None and s["late"].n_distinct == n - PREFIX_ROWS
    assert s["ints"].n_distinct == n
    assert all(c.n == n and c.n_missing == 0 for c in s.values())
