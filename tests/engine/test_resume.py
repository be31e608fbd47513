"""Resuming: a run that fails mid-way continues from its last finished sweep, and a finished
run continues to a larger maxit; both give exactly the unbroken run's imputations."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import sparkmice
from sparkmice.datasets import make_mar
from sparkmice.engines import inprocess


@pytest.fixture(scope="module")
def mar() -> pd.DataFrame:
    return make_mar(800, seed=4)


def test_extend_maxit_equals_running_all_at_once(mar, tmp_path):
    out = str(tmp_path / "ext")
    straight = sparkmice.mice(mar, m=2, maxit=4, seed=5).complete("long")
    sparkmice.mice(mar, m=2, maxit=2, seed=5, output=out)
    more = sparkmice.mice(mar, m=2, maxit=4, seed=5, output=out, resume=True)
    pd.testing.assert_frame_equal(more.complete("long"), straight, check_dtype=False)
    assert sorted(set(more.trace.iteration)) == [1, 2, 3, 4]
    assert len(more.trace) == 2 * 4 * 6


def test_failed_run_resumes_from_last_sweep(mar, tmp_path, monkeypatch):
    out = str(tmp_path / "fail")
    straight = sparkmice.mice(mar, m=2, maxit=4, seed=6).complete("long")
    real = inprocess.LocalBlocks.reduce
    calls = {"n": 0}

    def failing(self, fn, merge):  # the chain dies in sweep 3 of chain 2
        calls["n"] += 1
        if calls["n"] == 150:
            raise RuntimeError("executor lost")
        return real(self, fn, merge)

    monkeypatch.setattr(inprocess.LocalBlocks, "reduce", failing)
    with pytest.raises(RuntimeError, match="executor lost"):
        sparkmice.mice(mar, m=2, maxit=4, seed=6, output=out)
    monkeypatch.setattr(inprocess.LocalBlocks, "reduce", real)
    progress = sorted((tmp_path / "fail" / "_sparkmice" / "progress").glob("*.json"))
    assert 0 < len(progress) < 8  # it died part-way
    resumed = sparkmice.mice(mar, m=2, maxit=4, seed=6, output=out, resume=True)
    pd.testing.assert_frame_equal(resumed.complete("long"), straight, check_dtype=False)


def test_done_chains_are_skipped_and_rewrites_recorded(mar, tmp_path):
    out = tmp_path / "done"
    sparkmice.mice(mar, m=2, maxit=2, seed=1, output=str(out))
    again = sparkmice.mice(mar, m=2, maxit=2, seed=1, output=str(out), resume=True)
    assert again.timings.shape[0] == 4  # nothing re-ran: the earlier sweeps' timings only
    sparkmice.mice(mar, m=2, maxit=2, seed=1, output=str(out), chains=[2])
    record = json.loads((out / "_sparkmice" / "done" / "chain_2.json").read_text())
    assert record["writes"] == 2 and record["maxit"] == 2
    with pytest.raises(sparkmice.ConfigError, match="can be continued, not shortened"):
        sparkmice.mice(mar, m=2, maxit=1, seed=1, output=str(out), resume=True)
