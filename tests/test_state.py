"""sparkmice/state.py: a chain's imputed cells saved per sweep and block, put back exactly,
old sweeps deleted, and a resume refused (StateError, one message naming the chain, the
sweep and the fix) when the state is missing, foreign, of another input or damaged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from small_plans import plan_of

from sparkmice import state
from sparkmice.state import StateError

N = 30


def small(**changes):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N), "z": rng.normal(size=N)})
    df.loc[::4, "x"] = np.nan
    df.loc[1::5, "y"] = np.nan
    for name, rows in changes.items():
        df.loc[rows, name] = np.nan
    return plan_of(df, row_blocks=3)


def visited(plan) -> list[int]:
    return [plan.index[n] for n in plan.visit_sequence]


def fill(blocks, value: float) -> None:
    """Impute every missing cell with `value` plus its position (distinct per cell)."""
    for b in blocks:
        values = b.values.copy()
        values[b.missing] = value + np.arange(b.missing.sum())
        b.values[:] = values


def save_sweep(blocks, uri: str, chain: int, iteration: int, js: list[int]) -> None:
    for b in blocks:
        assert state.save_block(b, uri, chain, iteration, js) == 1


def state_uri(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def test_saved_cells_are_put_back_exactly_and_observed_cells_stay(tmp_path):
    plan, blocks = small()
    js, uri = visited(plan), state_uri(tmp_path)
    fill(blocks, 100.0)
    saved = [b.values.copy() for b in blocks]
    save_sweep(blocks, uri, 1, 1, js)
    fresh = [copy.copy(b) for b in blocks]
    for b in fresh:
        b.values = np.where(b.missing, np.nan, b.values)
        b.cache = {"stale": 1}
    for b in fresh:
        state.load_block(b, uri, 1, 1, js)
    for b, want in zip(fresh, saved, strict=True):
        np.testing.assert_array_equal(b.values, want)  # bitwise, this machine
        assert b.cache == {}


def test_only_the_imputed_cells_are_written(tmp_path):
    plan, blocks = small()
    js, uri = visited(plan), state_uri(tmp_path)
    fill(blocks, 5.0)
    save_sweep(blocks, uri, 2, 1, js)
    sweep = Path(uri) / "chain_2" / "sweep_00001"
    sizes = {p.name: np.load(p).size for p in sweep.glob("*.npy")}
    assert sizes == {f"block_{b.index}.npy": int(b.missing[:, js].sum()) for b in blocks}


def test_a_sweeps_files_go_when_the_sweep_two_later_is_saved(tmp_path):
    plan, blocks = small()
    js, uri = visited(plan), state_uri(tmp_path)
    for it in (1, 2, 3):
        save_sweep(blocks, uri, 1, it, js)
    sweeps = Path(uri) / "chain_1"
    assert not list((sweeps / "sweep_00001").glob("*.npy"))
    # the sweep before stays until the last one's report marks it complete
    assert len(list((sweeps / "sweep_00002").glob("*.npy"))) == len(blocks)
    assert len(list((sweeps / "sweep_00003").glob("*.npy"))) == len(blocks)


def test_a_whole_state_of_this_input_may_resume(tmp_path):
    plan, blocks = small()
    js, uri = visited(plan), state_uri(tmp_path)
    state.start(uri, 1, plan)
    record = json.loads((Path(uri) / "chain_1" / "format.json").read_text())
    missing = {"x": 8, "y": 6}
    assert record == {"format": state.FORMAT, "n_rows": N, "n_blocks": 3, "missing": missing}
    save_sweep(blocks, uri, 1, 2, js)
    state.check_resumable(uri, 1, 2, plan)


def test_start_and_forget_remove_an_earlier_state(tmp_path):
    plan, blocks = small()
    js, uri = visited(plan), state_uri(tmp_path)
    save_sweep(blocks, uri, 1, 1, js)
    state.start(uri, 1, plan)
    assert [p.name for p in (Path(uri) / "chain_1").iterdir()] == ["format.json"]
    state.forget(uri, 1)
    assert not (Path(uri) / "chain_1").exists()
    state.forget(uri, 1)  # nothing there: no error


def _resumable(tmp_path: Path):
    plan, blocks = small()
    uri = state_uri(tmp_path)
    state.start(uri, 1, plan)
    save_sweep(blocks, uri, 1, 2, visited(plan))
    return plan, uri, Path(uri) / "chain_1"


def refused(plan, uri: str, problem: str) -> None:
    with pytest.raises(StateError, match=problem) as err:
        state.check_resumable(uri, 1, 2, plan)
    text = str(err.value)
    assert text.startswith("cannot resume chain 1 after sweep 2: its saved state (")
    assert text.endswith("rerun with overwrite (--overwrite) instead of resume to start it "
                         "afresh (the imputed table is untouched).")  # fmt: skip


def test_no_state_at_all_is_refused(tmp_path):
    plan, _ = small()
    refused(plan, state_uri(tmp_path), "has no format record")


def test_a_damaged_or_foreign_format_record_is_refused(tmp_path):
    plan, uri, chain = _resumable(tmp_path)
    (chain / "format.json").write_text("{not json")
    refused(plan, uri, "has a damaged format record")
    (chain / "format.json").write_text(json.dumps({"format": 99}))
    refused(plan, uri, "has format 99, this sparkmice version's is 1")


def test_the_state_of_another_input_is_refused(tmp_path):
    _, uri, _ = _resumable(tmp_path)
    other, _ = small(z=[0, 1])  # z now incomplete: other missing cells
    refused(other, uri, r"belongs to another input \(other rows, blocks or missing cells\)")


def test_a_truncated_block_file_is_refused(tmp_path):
    plan, uri, chain = _resumable(tmp_path)
    block = chain / "sweep_00002" / "block_0.npy"
    block.write_bytes(block.read_bytes()[:-8])
    refused(plan, uri, "is damaged: block_0.npy is truncated or not an array")


def test_a_block_file_of_another_type_is_refused(tmp_path):
    plan, uri, chain = _resumable(tmp_path)
    block = chain / "sweep_00002" / "block_1.npy"
    np.save(block, np.load(block).astype(np.float32))
    refused(plan, uri, "is damaged: block_1.npy")


def test_a_missing_block_file_is_refused(tmp_path):
    plan, uri, chain = _resumable(tmp_path)
    (chain / "sweep_00002" / "block_2.npy").unlink()
    refused(plan, uri, r"is incomplete: it holds \d+ imputed cells, the input has 14")
