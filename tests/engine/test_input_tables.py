"""Input that real tables have, in-process (pandas): any column name, string and integer row
keys, int64 beyond 2^53, infinities, dates and timestamps, identifiers, damaged resume state.
The same cases through the CLI on Spark: test_input_cli.py."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sparkmice
from sparkmice import state
from sparkmice.blocks import key_row_ids
from sparkmice.config import ConfigError
from sparkmice.plan import InputError

N = 40
NAMES = ["Solar.R", "Ozone Level", "a`b", "temp°C", "__keep", "__v0", "__task", "__c0"]


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N)})
    d.loc[::4, "y"] = np.nan
    return d


def observed_equal(done: pd.Series, given: pd.Series) -> bool:
    """Observed cells bitwise unchanged (same values, same bits for floats)."""
    seen = given.notna().to_numpy()
    a, b = done.to_numpy()[seen], given.to_numpy()[seen]
    if a.dtype.kind == "f":
        return a.tobytes() == b.tobytes()
    return bool((a == b).all())


def named(seed: int = 0) -> pd.DataFrame:
    """Columns whose names R, SQL and the engines find awkward; two of them incomplete."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({n: rng.normal(size=N) for n in NAMES})
    d.loc[::3, "Solar.R"] = np.nan
    d.loc[1::5, "__v0"] = np.nan
    return d


def test_any_column_name_is_kept_and_imputed():
    d = named()
    done = sparkmice.mice(d, m=1, maxit=2).complete(1)
    assert list(done.columns) == NAMES + ["_row_id"]
    for n in NAMES:
        assert observed_equal(done[n], d[n]), n
    assert done[NAMES].notna().all().all()


def test_string_id_column_is_a_hashed_row_id():
    d = frame().assign(pid=[f"p{i}" for i in range(N)])
    done = sparkmice.mice(d, m=1, maxit=1, id_column="pid").complete(1)
    # the row id is the key's first 60 bits of SHA-256 (UTF-8), whatever the other rows
    sha = [int(hashlib.sha256(k.encode()).hexdigest()[:15], 16) for k in done["pid"]]
    assert done["_row_id"].tolist() == sha
    assert key_row_ids(pa.array(["p1"])).tolist() == [sha[list(done["pid"]).index("p1")]]
    assert len(set(done["_row_id"])) == N


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (pd.array([1] * N, dtype="Int64"), r"id_column 'pid' has repeated values \(39 row"),
        (pd.array([None, *range(1, N)], dtype="Int64"), r"id_column 'pid' is missing in 1 row"),
        (np.arange(N) + 0.5, r"id_column 'pid' has type double; a row id must be an integer"),
        ([f"p{i % 3}" for i in range(N)], r"id_column 'pid' has repeated values"),
    ],
)
def test_bad_id_column_is_refused(key, message):
    with pytest.raises(InputError, match=message):
        sparkmice.mice(frame().assign(pid=key), m=1, maxit=1, id_column="pid")


def test_int64_beyond_2_53_is_carried_bitwise():
    d = frame()
    d["ts"] = np.int64(1_700_000_000_000_000_001) + np.arange(N, dtype=np.int64) * 7
    d["hashed"] = pd.array(np.int64(2**62 + 1) - np.arange(N, dtype=np.int64), dtype="Int64")
    d.loc[::6, "hashed"] = None
    done = sparkmice.mice(d, m=1, maxit=2).complete(1)
    assert (done["ts"].to_numpy() == d["ts"].to_numpy()).all()
    seen = d["hashed"].notna().to_numpy()
    assert (done["hashed"].to_numpy()[seen] == d["hashed"].to_numpy()[seen]).all()
    # imputed: observed values (pmm donors), exact integers
    assert set(done["hashed"][~seen]) <= set(d["hashed"][seen])


def test_an_id_near_2_60_as_predictor_is_dropped_not_a_numerical_failure():
    """Ids 2^60 + 1e6·i are the intercept to working precision (R's QR tolerance): every
    model drops them with a logged event, and no step falls back to a simpler model."""
    d = frame()
    d["pid"] = np.int64(2**60) + np.arange(N, dtype=np.int64) * 1_000_000
    events = sparkmice.mice(d, m=1, maxit=2).logged_events
    assert "numerical fallback" not in set(events["event"])
    dropped = events[events["event"] == "predictor dropped"]["detail"]
    assert (dropped == "pid: collinear with the intercept").any()


def test_infinite_values_are_refused_or_missing():
    d = frame()
    d.loc[1, "x"], d.loc[2, "x"] = np.inf, -np.inf
    with pytest.raises(InputError, match=r"column 'x' holds 2 infinite value\(s\).*inf_as_missing"):
        sparkmice.mice(d, m=1, maxit=1)
    d["raw"] = np.where(np.arange(N) % 2, np.inf, 1.0)  # excluded: carried as it is
    done = sparkmice.mice(d, m=1, maxit=1, inf_as_missing=True, exclude=["raw"]).complete(1)
    assert np.isfinite(done["x"]).all()
    assert done["raw"].to_numpy().tobytes() == d["raw"].to_numpy().tobytes()
    assert observed_equal(done["x"], d["x"].replace([np.inf, -np.inf], np.nan))


def test_nan_in_an_arrow_table_is_missing_as_in_pandas():
    """NaN in a floating column counts as missing whatever the input: an Arrow table with
    NaN (not null) gives the imputations of the same data from pandas (where NaN is null
    already). Before, the Arrow table's NaN cells were taken as observed: not imputed. An
    excluded column's NaN is missing too, as pandas' and Spark's are."""
    d = frame().assign(raw=np.where(np.arange(N) % 3, 1.0, np.nan))
    table = pa.table({c: pa.array(d[c].to_numpy(), from_pandas=False) for c in d})
    assert table.column("y").null_count == 0  # NaN, not null
    from_arrow = sparkmice.mice(table, m=1, maxit=2, seed=4, exclude=["raw"])
    from_pandas = sparkmice.mice(d, m=1, maxit=2, seed=4, exclude=["raw"])
    assert from_arrow.method == from_pandas.method and from_arrow.method["y"] == "pmm"
    pd.testing.assert_frame_equal(from_arrow.complete(1), from_pandas.complete(1))


def test_timestamps_beyond_the_year_9999_are_carried_through():
    """Nanoseconds labelled microseconds (a wrong unit) put timestamps near the year 55,000,
    beyond Python's dates: the column is carried through as it is, where its summary ended
    the run with a traceback (OverflowError)."""
    ticks = pa.array(1_700_000_000 * 10**9 + np.arange(N) * 10**12, pa.int64())
    table = pa.table(frame()).append_column("stamp", ticks.cast(pa.timestamp("us")))
    imp = sparkmice.mice(table, m=1, maxit=1)
    assert "stamp" not in imp.method
    assert set(imp.logged_events.loc[lambda e: e.event == "carried through", "variable"]) == {
        "stamp"
    }


def dated() -> pd.DataFrame:
    d = frame()
    rng = np.random.default_rng(3)
    d["seen"] = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, N), "h")
    d.loc[::5, "seen"] = pd.NaT
    d["born"] = [pd.Timestamp("1950-01-01").date() + pd.Timedelta(days=int(k)) for k in range(N)]
    d.loc[2::7, "born"] = None
    return d


def test_dates_are_carried_through_and_logged():
    d = dated()
    imp = sparkmice.mice(d, m=1, maxit=1)
    done = imp.complete(1)
    assert done["seen"].isna().sum() == d["seen"].isna().sum()
    assert (done["seen"].dropna().to_numpy() == d["seen"].dropna().to_numpy()).all()
    assert list(done["born"]) == list(d["born"])
    ev = imp.logged_events
    assert set(ev.loc[ev.event == "carried through", "variable"]) == {"seen", "born"}
    assert imp.predictor_matrix.columns.tolist() == ["x", "y"]


def test_the_plans_events_are_in_events_csv(tmp_path):
    """events.csv holds what imp.logged_events holds: the plan's events (a date carried
    through) before the sweeps' (before, only the sweeps' were written)."""
    imp = sparkmice.mice(dated(), m=1, maxit=1, output=str(tmp_path / "out"))
    written = pd.read_csv(tmp_path / "out" / "_sparkmice" / "events.csv")
    assert set(written.loc[written.event == "carried through", "variable"]) == {"seen", "born"}
    assert len(written) == len(imp.logged_events)


def test_dates_imputed_as_numbers_when_asked():
    d = dated()
    imp = sparkmice.mice(d, m=1, maxit=2, kind={"seen": "continuous", "born": "continuous"})
    done = imp.complete(1)
    assert done["seen"].dtype == d["seen"].dtype and done["seen"].notna().all()
    assert done["born"].notna().all()
    assert all(type(v) is type(d["born"][0]) for v in done["born"])
    assert done["seen"].between(d["seen"].min(), d["seen"].max()).all()  # pmm: observed values
    assert (done["seen"][d["seen"].notna()] == d["seen"].dropna()).all()
    with pytest.raises(ConfigError, match=r"kind for column 'seen' is 'nominal' but it holds"):
        sparkmice.mice(d, m=1, maxit=1, kind={"seen": "nominal"})


def test_a_level_per_row_is_an_identifier():
    d = frame().assign(code=[f"c{i}" for i in range(N)])
    with pytest.raises(InputError, match=r"column 'code' has a different value in each of its "
                       r"40 observed rows; it looks like an identifier"):  # fmt: skip
        sparkmice.mice(d, m=1, maxit=1)


# -- resume from damaged state -------------------------------------------------------------
def files_of(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_sparkmice" not in p.parts
    }


def damage_missing(chain_dir):
    next(chain_dir.glob("sweep_*/block_*.npy")).unlink()


def damage_truncated(chain_dir):
    f = next(chain_dir.glob("sweep_*/block_*.npy"))
    f.write_bytes(f.read_bytes()[:-8])


def damage_version(chain_dir):
    record = json.loads((chain_dir / "format.json").read_text())
    (chain_dir / "format.json").write_text(json.dumps({**record, "format": 0}))


def damage_record(chain_dir):
    (chain_dir / "format.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (damage_missing, r"is incomplete: it holds \d+ imputed cells, the input has \d+"),
        (damage_truncated, r"is damaged: block_\d+\.npy is truncated"),
        (damage_version, r"has format 0, this sparkmice version's is 1"),
        (damage_record, r"has no format record"),
    ],
)
def test_resume_from_damaged_state_is_refused(tmp_path, damage, message):
    out = tmp_path / "run"
    d = frame()
    sparkmice.mice(d, m=1, maxit=2, output=str(out), row_blocks=2)
    before = files_of(out)
    damage(out / "_sparkmice" / "state" / "chain_1")
    with pytest.raises(state.StateError, match="cannot resume chain 1 after sweep 2: .*" + message):
        sparkmice.mice(d, m=1, maxit=3, output=str(out), row_blocks=2, resume=True)
    assert files_of(out) == before


def test_resume_state_of_another_input_is_refused(tmp_path):
    out = tmp_path / "run"
    sparkmice.mice(frame(), m=1, maxit=2, output=str(out))
    other = frame().assign(y=frame()["y"].fillna(0.0))
    other.loc[::5, "y"] = np.nan  # other missing cells
    plan = sparkmice.mice(other, m=1, maxit=1).plan
    with pytest.raises(state.StateError, match="belongs to another input"):
        state.check_resumable(str(out / "_sparkmice" / "state"), 1, 2, plan)


def test_resume_with_damaged_progress_is_refused(tmp_path):
    out = tmp_path / "run"
    sparkmice.mice(frame(), m=1, maxit=2, output=str(out))
    before = files_of(out)
    report = out / "_sparkmice" / "progress" / "chain_1_sweep_00002.json"
    report.write_text(report.read_text()[:20])
    with pytest.raises(state.StateError, match="a progress record in .* is damaged"):
        sparkmice.mice(frame(), m=1, maxit=3, output=str(out), resume=True)
    assert files_of(out) == before
