"""The run folder as the user meets it, in-process (no Spark): the same-run check of fan-out
tasks and resumes, --overwrite removing the old run entirely, outputs that cannot be used,
and the pool job's check of the chains against the run's m."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sparkmice
from sparkmice.cli import main
from sparkmice.datasets import load_nhanes
from sparkmice.io.paths import PathError
from sparkmice.io.run import RunFolder
from sparkmice.pooling.job import pool_directory


@pytest.fixture(scope="module")
def nhanes() -> pd.DataFrame:
    return load_nhanes()


def test_a_fan_out_task_with_other_options_is_refused_and_config_kept(nhanes, tmp_path):
    out = str(tmp_path / "fan")
    sparkmice.mice(nhanes, m=2, maxit=2, seed=1, output=out, chains=[1])
    config = Path(out, "_sparkmice", "config.json").read_bytes()
    with pytest.raises(
        sparkmice.OutputExistsError, match=r"differs in: donors \(5 there, 3 here\)"
    ):
        sparkmice.mice(nhanes, m=2, maxit=2, seed=1, output=out, chains=[2], donors=3)
    assert Path(out, "_sparkmice", "config.json").read_bytes() == config
    assert RunFolder(out).chains() == [1]
    # options that change only speed or layout may differ
    sparkmice.mice(nhanes, m=2, maxit=2, seed=1, output=out, chains=[2], rows_per_task=10)
    assert RunFolder(out).chains() == [1, 2]
    assert Path(out, "_sparkmice", "config.json").read_bytes() == config


def test_resume_on_other_input_is_refused_naming_it(nhanes, tmp_path):
    out = str(tmp_path / "res")
    sparkmice.mice(nhanes, m=2, maxit=1, seed=1, output=out)
    with pytest.raises(sparkmice.OutputExistsError, match=r"input rows \(25 there, 24 here\)"):
        sparkmice.mice(nhanes.iloc[:24], m=2, maxit=2, seed=1, output=out, resume=True)
    changed = nhanes.assign(chl=nhanes["chl"].fillna(200.0))
    with pytest.raises(sparkmice.OutputExistsError, match=r"input column\(s\) \['chl'\]"):
        sparkmice.mice(changed, m=2, maxit=2, seed=1, output=out, resume=True)


def test_overwrite_onto_a_larger_m_removes_the_old_run_entirely(nhanes, tmp_path):
    out = tmp_path / "over"
    sparkmice.mice(nhanes, m=5, maxit=2, seed=1, output=str(out))
    new = sparkmice.mice(nhanes, m=2, maxit=2, seed=7, output=str(out), overwrite=True)
    run = RunFolder(str(out))
    assert run.chains() == [1, 2]
    assert sorted(p.name for p in out.glob("_imputation=*")) == ["_imputation=1", "_imputation=2"]
    meta = out / "_sparkmice"
    assert sorted(p.name for p in (meta / "done").iterdir()) == ["chain_1.json", "chain_2.json"]
    assert {p.name.split("_sweep_")[0] for p in (meta / "progress").iterdir()} == {
        "chain_1",
        "chain_2",
    }
    assert sorted(pd.read_csv(meta / "trace.csv")["chain"].unique()) == [1, 2]
    pd.testing.assert_frame_equal(sparkmice.read_imputed(str(out)), new.complete("long"))


def test_outputs_that_cannot_be_used_get_one_line(nhanes, tmp_path):
    file = tmp_path / "file.parquet"
    file.write_text("x")
    with pytest.raises(PathError, match=rf"^output {file} is a file; choose a folder path\.$"):
        sparkmice.mice(nhanes, m=1, maxit=1, output=str(file))
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    with pytest.raises(PathError, match=r"holds files sparkmice did not write \(thesis.tex\)"):
        sparkmice.mice(nhanes, m=1, maxit=1, output=str(foreign), overwrite=True)
    assert (foreign / "thesis.tex").exists()


@pytest.mark.parametrize(
    "output, given",
    [("data", "data/nhanes.csv"), ("data/nhanes.csv", "data/nhanes.csv"), ("data/x", "data")],
    ids=["contains", "equal", "inside"],
)
def test_cli_refuses_output_at_the_input_before_spark(output, given, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    load_nhanes().to_csv(tmp_path / "data" / "nhanes.csv", index=False)

    def no_spark(**_):
        raise AssertionError("Spark started before the paths were checked")

    monkeypatch.setattr("sparkmice.session.get_spark", no_spark)
    assert main(["impute", "--input", given, "--output", output, "--m", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sparkmice impute: error: output {output} ") and err.count("\n") == 1
    assert "the input" in err


def test_pool_refuses_missing_and_extra_chains_naming_them(nhanes, tmp_path):
    out = str(tmp_path / "part")
    sparkmice.mice(nhanes, m=3, maxit=1, seed=1, output=out, chains=[1, 3])
    with pytest.raises(
        ValueError, match=r"lacks chain\(s\) \[2\] of its run's m=3 .*--allow-partial"
    ):
        pool_directory(None, out, "chl ~ age")  # refused before Spark is needed
    run = RunFolder(out)
    config = run.read_config()
    run.write_config({**config, "m": 2})  # as if chain 3 came from another run
    with pytest.raises(ValueError, match=r"holds chain\(s\) \[3\] beyond its run's m=2"):
        pool_directory(None, out, "chl ~ age", allow_partial=True)


def test_in_process_delta_run_commits_through_the_log(nhanes, tmp_path):
    from deltalake import DeltaTable

    out = str(tmp_path / "delta")
    first = sparkmice.mice(nhanes, m=2, maxit=2, seed=1, output=out, format="delta")
    sparkmice.mice(nhanes, m=2, maxit=2, seed=1, output=out, format="delta", chains=[1])
    assert len(DeltaTable(out).to_pandas()) == 2 * len(nhanes)
    pd.testing.assert_frame_equal(sparkmice.read_imputed(out), first.complete("long"))
    assert RunFolder(out).record(1)["writes"] == 2 and "delta_version" in RunFolder(out).record(1)


def test_result_write_copies_the_run_and_refuses_an_existing_one(nhanes, tmp_path):
    result = sparkmice.mice(nhanes, m=2, maxit=2, seed=1)
    out = str(tmp_path / "copy")
    result.write(out)
    pd.testing.assert_frame_equal(sparkmice.read_imputed(out), result.complete("long"))
    assert RunFolder(out).chains() == [1, 2]
    with pytest.raises(sparkmice.OutputExistsError, match="already exists"):
        result.write(out)
    result.write(out, overwrite=True)
    assert [RunFolder(out).record(k)["writes"] for k in (1, 2)] == [1, 1]
