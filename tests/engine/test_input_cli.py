"""Input that real tables have, through the CLI on Spark (barrier and per-step engines), as the
user meets it: awkward names, row keys, int64 beyond 2^53, dates, and every bad input as one
line `sparkmice <cmd>: error: ...` with exit code 2 and nothing written. One Spark session
(the suite's fixture) serves all of them; the data are tiny."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sparkmice
from sparkmice.cli import main

N = 40
NAMES = ["Solar.R", "Ozone Level", "a`b", "temp°C", "__keep", "__v0", "__task", "__c0"]


def write(path, frame: pd.DataFrame, **options) -> str:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, **options)
    return str(path)


def base(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N)})
    d.loc[::4, "y"] = np.nan
    return d


def impute(source: str, out, *options: str) -> int:
    argv = ["impute", "--input", source, "--output", str(out), "--m", "1", "--maxit", "2"]
    return main(argv + list(options))


def one_error(capsys, command: str = "impute") -> str:
    """The single error line on stderr (no traceback), without its prefix."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, err
    prefix = f"sparkmice {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]


def observed_equal(done: pd.Series, given: pd.Series) -> bool:
    seen = given.notna().to_numpy()
    a, b = done.to_numpy()[seen], given.to_numpy()[seen]
    return a.tobytes() == b.tobytes() if a.dtype.kind == "f" else bool((a == b).all())


@pytest.mark.parametrize("engine", ["barrier", "perstep"])
def test_awkward_names_kept_on_spark(spark, tmp_path, engine):
    rng = np.random.default_rng(1)
    d = pd.DataFrame({n: rng.normal(size=N) for n in NAMES})
    d.loc[::3, "Solar.R"] = np.nan
    d.loc[1::5, "__v0"] = np.nan
    source = write(tmp_path / "names.parquet", d)
    assert impute(source, tmp_path / "out", "--engine", engine) == 0
    done = sparkmice.read_imputed(str(tmp_path / "out"), imputation=1)
    done = done.sort_values("_row_id").reset_index(drop=True)
    assert [c for c in done.columns if c not in ("_row_id", "_imputation")] == NAMES
    for n in NAMES:
        assert observed_equal(done[n], d[n]), n
    assert done[NAMES].notna().all().all()


def test_keys_big_ints_and_dates_on_spark(spark, tmp_path):
    """A string key is the same hashed row id as in-process; int64 beyond 2^53 and a date
    carried bitwise (barrier); a timestamp imputed as a number when asked (per-step)."""
    rng = np.random.default_rng(2)
    d = base().assign(
        pid=[f"p{i}" for i in range(N)],
        ts=np.int64(1_700_000_000_000_000_001) + np.arange(N, dtype=np.int64),
        born=[pd.Timestamp("1950-01-01").date() + pd.Timedelta(days=k) for k in range(N)],
        seen=pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, N), "h"),
    )
    d.loc[::5, "seen"] = pd.NaT
    d.loc[1, "x"] = -np.inf  # missing by inf_as_missing; in an excluded column, kept
    d["raw"] = np.where(np.arange(N) % 2, np.inf, 1.0)
    source = write(tmp_path / "d.parquet", d, coerce_timestamps="us")
    conf = tmp_path / "c.yaml"
    conf.write_text("id_column: pid\ninf_as_missing: true\nexclude: [raw]\n")
    assert impute(source, tmp_path / "b", "--config", str(conf), "--engine", "barrier") == 0
    done = sparkmice.read_imputed(str(tmp_path / "b"), imputation=1).set_index("pid").loc[d.pid]
    sha = [int(hashlib.sha256(k.encode()).hexdigest()[:15], 16) for k in d.pid]
    assert done["_row_id"].tolist() == sha
    assert (done["ts"].to_numpy() == d["ts"].to_numpy()).all()
    assert list(done["born"]) == list(d["born"])
    assert done["seen"].isna().sum() == d["seen"].isna().sum()  # carried through, unimputed
    assert (
        np.isfinite(done["x"]).all()
        and done["raw"].to_numpy().tobytes() == d.raw.to_numpy().tobytes()
    )
    config = json.loads((tmp_path / "b" / "_sparkmice" / "config.json").read_text())
    assert {"born", "seen"} <= set(config["passthrough"])

    conf.write_text(
        "id_column: pid\ninf_as_missing: true\nexclude: [raw]\nkind: {seen: continuous}\n"
    )
    assert impute(source, tmp_path / "p", "--config", str(conf), "--engine", "perstep") == 0
    done = sparkmice.read_imputed(str(tmp_path / "p"), imputation=1).set_index("pid").loc[d.pid]
    seen = done["seen"].dt.tz_localize(None) if done["seen"].dt.tz else done["seen"]
    assert seen.notna().all()
    observed = d["seen"].notna().to_numpy()
    assert (seen.to_numpy()[observed] == d["seen"].to_numpy()[observed]).all()
    assert set(seen[~observed]) <= set(d["seen"][observed])  # pmm: observed timestamps


def bad_inputs(tmp_path) -> dict[str, tuple[list[str], str]]:
    """Each bad input: its CLI options and the message the user must see."""
    conf = {}
    for name, text in {
        "dup": "id_column: pid\n",
        "syntax": "m: [1, 2\nmaxit: 2\n",
        "tag": "m: !!python/object/apply:os.system ['echo hi']\n",
    }.items():
        conf[name] = tmp_path / f"{name}.yaml"
        conf[name].write_text(text)
    d = base()
    ok = write(tmp_path / "ok.parquet", d)
    (tmp_path / "ragged.csv").write_text("x,y\n1,2\n3,4,5\n6\n7,8\n9,10\n")
    (tmp_path / "quote.csv").write_text('x,y\n1,2\n"3,4\n5,6\n7,8\n')
    null_key = d.assign(pid=pd.array([None, *range(1, N)], "Int64"))
    stamps = d.assign(day=pd.to_datetime("2020-01-01") + pd.to_timedelta(np.arange(N), "D"))
    return {
        "missing path": ([str(tmp_path / "nope.parquet")], r"nope.parquet does not exist"),
        "ragged csv": ([str(tmp_path / "ragged.csv")], r"ragged.csv is not a well-formed CSV"),
        "stray quote": ([str(tmp_path / "quote.csv")], r"quote.csv is not a well-formed CSV"),
        "nanoseconds": (
            [write(tmp_path / "ns.parquet", stamps)],
            r"column\(s\) \['day'\] stored as Parquet TIMESTAMP\(NANOS\).*coerce_timestamps='us'",
        ),
        "identifier": (
            [write(tmp_path / "id.parquet", d.assign(code=[f"c{i}" for i in range(N)]))],
            r"column 'code' has a different value in each of its 40 observed rows; it looks "
            r"like an identifier: list it under `exclude`, or set id_column",
        ),
        "infinity": (
            [write(tmp_path / "inf.parquet", d.assign(x=[np.inf, *d.x[1:]]))],
            r"column 'x' holds 1 infinite value\(s\)",
        ),
        "duplicate id": (
            [write(tmp_path / "dup.parquet", d.assign(pid=[1] * N)), "--config", str(conf["dup"])],
            r"id_column 'pid' has repeated values",
        ),
        "null id": (
            [
                write(tmp_path / "null.parquet", null_key),
                "--config",
                str(conf["dup"]),
            ],
            r"id_column 'pid' is missing in 1 row",
        ),
        "yaml syntax": ([ok, "--config", str(conf["syntax"])], r"is not valid YAML: line 2"),
        "yaml tag": ([ok, "--config", str(conf["tag"])], r"no tags"),
    }


@pytest.mark.parametrize("engine", ["barrier", "perstep"])
def test_bad_inputs_are_one_line_and_nothing_written(spark, tmp_path, capsys, engine):
    for case, (source, message) in bad_inputs(tmp_path).items():
        out = tmp_path / f"out_{case.replace(' ', '_')}"
        code = impute(source[0], out, *source[1:], "--engine", engine)
        line = one_error(capsys)
        assert code == 2, case
        assert pd.Series([line]).str.contains(message).all(), (case, line)
        assert not out.exists(), case


def test_resume_from_missing_state_is_one_line(spark, tmp_path, capsys):
    source = write(tmp_path / "d.parquet", base())
    out = tmp_path / "run"
    assert impute(source, out, "--engine", "barrier") == 0
    next((out / "_sparkmice" / "state" / "chain_1").glob("sweep_*/block_*.npy")).unlink()
    before = sorted(p.read_bytes() for p in out.rglob("*.parquet"))
    capsys.readouterr()
    argv = ["impute", "--input", source, "--output", str(out), "--m", "1", "--maxit", "3"]
    assert main(argv + ["--resume"]) == 2
    assert "cannot resume chain 1 after sweep 2" in one_error(capsys)
    assert sorted(p.read_bytes() for p in out.rglob("*.parquet")) == before


def test_every_subcommand_has_the_same_error_exit(spark, tmp_path, capsys, monkeypatch):
    nowhere = str(tmp_path / "nowhere")
    assert main(["pool", "--imputed", nowhere, "--formula", "y ~ x", "--output", "p.txt"]) == 2
    assert "end the name in one of" in one_error(capsys, "pool")
    assert main(["report", "--imputed", nowhere, "--output", str(tmp_path / "r.html")]) == 2
    assert "not the output directory" in one_error(capsys, "report")
    assert main(["check-congeniality", "--imputed", nowhere, "--formula", "y ~ x"]) == 2
    assert "not the output directory" in one_error(capsys, "check-congeniality")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr("sparkmice.impute_job.mice", broken)
    source = write(tmp_path / "d.parquet", base())
    assert impute(source, tmp_path / "out") == 2
    assert one_error(capsys) == (
        "internal error (RuntimeError: a bug); rerun with --debug for the traceback, and "
        "please report it"
    )
    with pytest.raises(RuntimeError, match="a bug"):
        impute(source, tmp_path / "out", "--debug")
