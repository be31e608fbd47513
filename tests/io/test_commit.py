"""Chain output written by the barrier tasks themselves: staged, then committed as
DIR/_imputation=k (sparkmice.io.parquet.write_part / commit_chain), without Spark."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from sparkmice.blocks import IMPUTATION, ROW_ID
from sparkmice.io import parquet as store


def _rows(chain: int, ids: range) -> pa.Table:
    return pa.table(
        {
            "x": pa.array([float(i) for i in ids]),
            ROW_ID: pa.array(list(ids), pa.int64()),
            IMPUTATION: pa.array([chain] * len(ids), pa.int32()),
        }
    )


def _stage(root: str, chain: int, parts: list[range]) -> str:
    staged = store.staging_uri(root, chain)
    for i, ids in enumerate(parts):
        assert store.write_part(staged, i, [_rows(chain, ids)]) == len(ids)
    return staged


def test_commit_replaces_only_its_chain_and_reads_back(tmp_path: Path):
    """Chain 1 written twice (the second time from two tasks) and chain 2 once: the table
    holds the second chain-1 rows and the chain-2 rows, `_imputation` from the folders."""
    root = str(tmp_path / "out")
    store.commit_chain(root, 1, _stage(root, 1, [range(0, 5)]))
    store.commit_chain(root, 2, _stage(root, 2, [range(0, 5)]))
    store.commit_chain(root, 1, _stage(root, 1, [range(10, 13), range(13, 15)]))

    got = store.read_imputed(root)
    assert got[got[IMPUTATION] == 1][ROW_ID].tolist() == list(range(10, 15))
    assert got[got[IMPUTATION] == 2][ROW_ID].tolist() == list(range(0, 5))
    assert sorted(p.name for p in (tmp_path / "out" / f"{IMPUTATION}=1").iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]


def test_staged_but_uncommitted_files_leave_the_old_chain_and_are_cleared_later(
    tmp_path: Path,
):
    """A run that fails after its tasks wrote (nothing committed) changes nothing readers
    see; the next commit of that chain deletes the leftover, not other chains' staging."""
    root = str(tmp_path / "out")
    store.commit_chain(root, 1, _stage(root, 1, [range(0, 3)]))
    _stage(root, 1, [range(100, 200)])  # a failed rewrite of chain 1
    other = _stage(root, 2, [range(0, 2)])  # chain 2 still running
    assert store.read_imputed(root)[ROW_ID].tolist() == [0, 1, 2]

    store.commit_chain(root, 1, _stage(root, 1, [range(5, 7)]))
    staging = tmp_path / "out" / "_sparkmice" / "staging"
    assert [p.name for p in staging.iterdir()] == [Path(other).name]
    assert store.read_imputed(root)[ROW_ID].tolist() == [5, 6]
