"""The run folder's chain commits (sparkmice.io.run), without Spark: attempts write files of
their own, a commit checks the rows and switches with one atomic write of the chain's record,
readers follow the records only, and racing or stale attempts leave one whole chain."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkmice.io.paths import PathError
from sparkmice.io.run import Attempt, ChainCommitError, RunFolder, read_imputed, write_part
from sparkmice.names import IMPUTATION, ROW_ID

N = 5
REPO = Path(__file__).resolve().parents[2]


def _rows(chain: int, ids: range, shift: float) -> pa.Table:
    return pa.table(
        {
            "x": pa.array([i + shift for i in ids]),
            ROW_ID: pa.array(list(ids), pa.int64()),
            IMPUTATION: pa.array([chain] * len(ids), pa.int32()),
        }
    )


def _run(tmp_path: Path, m: int = 2) -> RunFolder:
    run = RunFolder(str(tmp_path / "out"))
    run.write_config({"m": m, "config": {"format": "parquet"}, "run_id": "r1"})
    return run


def _write(run: RunFolder, chain: int, shift: float, parts: list[range] | None = None):
    """A new attempt of `chain` whose tasks wrote `parts`; returns it and the rows reported."""
    attempt = run.new_attempt(chain)
    parts = parts or [range(0, 3), range(3, N)]
    rows = sum(
        write_part(run.root, attempt, i, [_rows(chain, p, shift)]) for i, p in enumerate(parts)
    )
    return attempt, rows


def _commit(run: RunFolder, chain: int, shift: float, parts: list[range] | None = None):
    attempt, rows = _write(run, chain, shift, parts)
    run.commit(attempt, maxit=2, n_rows=N, returned_rows=rows, run_id="r1")
    return attempt


def _chain_x(run: RunFolder, chain: int) -> list[float]:
    got = read_imputed(run.root, imputation=chain)
    return got["x"].tolist()


def _files_on_disk(run: RunFolder, chain: int) -> list[str]:
    folder = Path(run.location.path) / f"{IMPUTATION}={chain}"
    return sorted(f"{IMPUTATION}={chain}/{p.name}" for p in folder.iterdir())


def test_commit_replaces_only_its_chain_and_deletes_the_previous_files(tmp_path):
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    _commit(run, 2, 100.0)
    latest = _commit(run, 1, 50.0, [range(0, 2), range(2, 4), range(4, 5)])

    got = read_imputed(run.root)
    assert got[IMPUTATION].tolist() == [1] * N + [2] * N
    assert got[ROW_ID].tolist() == list(range(N)) * 2
    assert _chain_x(run, 1) == [i + 50.0 for i in range(N)]
    assert _chain_x(run, 2) == [i + 100.0 for i in range(N)]
    record = run.record(1)
    assert record["attempt"] == latest.id and record["rows"] == N and record["writes"] == 2
    assert record["files"] == [latest.file(i) for i in range(3)]
    assert _files_on_disk(run, 1) == record["files"]  # the first attempt's files are gone
    assert run.chains() == [1, 2]


def test_an_uncommitted_attempt_is_invisible_and_survives_other_commits(tmp_path):
    """A run that dies after its tasks wrote changes nothing readers see; a later commit of
    the same chain deletes only its own predecessor's files, never an attempt in flight."""
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    in_flight, _ = _write(run, 1, 7.0)
    assert _chain_x(run, 1) == [float(i) for i in range(N)]
    latest = _commit(run, 1, 50.0)
    assert _chain_x(run, 1) == [i + 50.0 for i in range(N)]
    assert set(_files_on_disk(run, 1)) == {
        *run.record(1)["files"],
        *(d.path for d in run.attempt_files(in_flight)),
    }
    run.discard(in_flight)  # an attempt removes its own files only
    assert _files_on_disk(run, 1) == [latest.file(0), latest.file(1)]


@pytest.mark.parametrize("reported, n_rows", [(N + 1, N), (N, N + 1)], ids=["tasks", "input"])
def test_a_row_count_mismatch_fails_the_chain_and_keeps_the_previous_one(
    tmp_path, reported, n_rows
):
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    before = run.record(1)
    attempt, _ = _write(run, 1, 9.0)
    with pytest.raises(
        ChainCommitError, match=r"chain 1: attempt .* wrote 5 rows .* not committed"
    ):
        run.commit(attempt, maxit=2, n_rows=n_rows, returned_rows=reported, run_id="r1")
    assert run.record(1) == before
    assert _chain_x(run, 1) == [float(i) for i in range(N)]
    assert run.attempt_files(attempt) == []  # its own files removed


def test_a_commit_into_a_folder_another_run_took_over_is_refused(tmp_path):
    run = _run(tmp_path)
    attempt, rows = _write(run, 1, 0.0)
    run.write_config({"m": 2, "config": {"format": "parquet"}, "run_id": "r2"})  # --overwrite
    with pytest.raises(ChainCommitError, match="another run"):
        run.commit(attempt, maxit=2, n_rows=N, returned_rows=rows, run_id="r1")
    assert run.record(1) is None and run.chains() == []


def test_a_stale_attempt_finishing_last_wins_whole(tmp_path):
    """Attempt A starts, B starts later and commits first, then A commits: the chain is A's,
    complete, B's files are deleted and the record names A."""
    run = _run(tmp_path)
    old, old_rows = _write(run, 1, 1.0)
    new, new_rows = _write(run, 1, 2.0)
    run.commit(new, maxit=2, n_rows=N, returned_rows=new_rows, run_id="r1")
    run.commit(old, maxit=2, n_rows=N, returned_rows=old_rows, run_id="r1")
    assert _chain_x(run, 1) == [i + 1.0 for i in range(N)]
    assert run.record(1)["attempt"] == old.id
    assert _files_on_disk(run, 1) == run.record(1)["files"]


def _assert_one_whole_chain(run: RunFolder, shifts: set[float]) -> None:
    record = run.record(1)
    x = _chain_x(run, 1)
    assert len(x) == N and record["rows"] == N
    shift = x[0]
    assert shift in shifts and x == [i + shift for i in range(N)]  # one attempt's rows, all
    names = {d.path for d in run.attempt_files(Attempt(1, record["attempt"]))}
    assert set(record["files"]) == names  # the record agrees with the chain read


def _race(run: RunFolder, shifts: tuple[float, ...]) -> list[Exception]:
    """Attempts of chain 1, one per thread, that write and then commit at the same moment."""
    start = threading.Barrier(len(shifts))
    errors: list[Exception] = []

    def attempt(shift: float) -> None:
        try:
            a, rows = _write(run, 1, shift)
            start.wait()
            run.commit(a, maxit=2, n_rows=N, returned_rows=rows, run_id="r1")
        except Exception as err:  # reported by the caller's assertion
            errors.append(err)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in shifts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_threads_committing_the_same_chain_leave_one_whole_chain(tmp_path):
    for trial in range(5):
        run = RunFolder(str(tmp_path / f"t{trial}"))
        run.write_config({"m": 2, "config": {"format": "parquet"}, "run_id": "r1"})
        _commit(run, 1, 0.0)
        assert _race(run, (10.0, 20.0)) == []
        _assert_one_whole_chain(run, {10.0, 20.0})
        assert run.record(1)["writes"] in (2, 3)


_COMMIT_IN_OTHER_PROCESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pyarrow as pa
    from sparkmice.io.run import write_part
    from sparkmice.io.run import RunFolder

    root, shift, barrier = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    run = RunFolder(root)
    attempt = run.new_attempt(1)
    rows = write_part(root, attempt, 0, [pa.table({
        "x": pa.array([i + shift for i in range(5)]),
        "_row_id": pa.array(range(5), pa.int64()),
    })])
    (barrier / f"ready-{shift}").touch()
    while len(list(barrier.glob("ready-*"))) < 2:
        time.sleep(0.001)
    run.commit(attempt, maxit=2, n_rows=5, returned_rows=rows, run_id="r1")
    """
)


def test_two_processes_committing_the_same_chain_leave_one_whole_chain(tmp_path):
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COMMIT_IN_OTHER_PROCESS, run.root, str(s), str(barrier)],
            cwd=REPO,
        )
        for s in (10.0, 20.0)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    _assert_one_whole_chain(run, {10.0, 20.0})


def test_a_plain_partitioned_table_reads_every_file_of_its_folders(tmp_path):
    """A folder no versioned run wrote (no records): its `_imputation=k` folders are the
    chains, as Spark's partitioned writer leaves them."""
    for k in (1, 2):
        folder = tmp_path / "plain" / f"{IMPUTATION}={k}"
        folder.mkdir(parents=True)
        pq.write_table(_rows(k, range(N), k).drop_columns([IMPUTATION]), folder / "part-0.parquet")
        (folder / "_SUCCESS").touch()
    run = RunFolder(str(tmp_path / "plain"))
    assert not run.versioned() and run.chains() == [1, 2]
    assert len(read_imputed(run.root)) == 2 * N


def test_wipe_removes_a_run_entirely_and_refuses_foreign_files(tmp_path):
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    run.wipe()
    assert run.entries() == []
    run.write_config({"m": 2, "config": {"format": "parquet"}, "run_id": "r1"})
    _commit(run, 1, 0.0)
    (Path(run.location.path) / "notes.txt").write_text("mine")
    with pytest.raises(PathError, match=r"holds files sparkmice did not write \(notes.txt\)"):
        run.wipe()
    assert (Path(run.location.path) / "notes.txt").exists() and run.chains() == [1]


def test_records_and_config_are_json_written_atomically(tmp_path):
    run = _run(tmp_path)
    _commit(run, 1, 0.0)
    meta = Path(run.location.path) / "_sparkmice"
    leftovers = [p for p in meta.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert json.loads((meta / "done" / "chain_1.json").read_text())["chain"] == 1
    assert json.loads((meta / "config.json").read_text())["format_version"] == 2
