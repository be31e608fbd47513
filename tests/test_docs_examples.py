"""The worked examples of docs/architecture.md run through the whole package: a method
added as one module and one registry line (docs/examples/weighted_pmm.py), and an output
format added the same way (docs/examples/csv_output.py); the config and the command line
accept what is registered at run time. The README's daily job (docs/examples/daily_pipeline.sh:
impute, impute-new on the next day's rows, pool) runs end to end on the shipped data."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.datasets import load_nhanes
from sparkmice.impute_job import add_arguments
from sparkmice.io.run import FORMATS, RunFolder, read_imputed
from sparkmice.kernels import METHODS
from sparkmice.kernels.contract import BlockView
from sparkmice.kernels.norm import NormDraw
from sparkmice.names import IMPUTATION, ROW_ID

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "weighted_pmm.py"
DAILY = ROOT / "docs" / "examples" / "daily_pipeline.sh"
CSV_MODULE = "docs.examples.csv_output"  # importable from the checkout (also by Spark workers)


def load_example():
    spec = importlib.util.spec_from_file_location("weighted_pmm", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def registered(monkeypatch):
    """The registry line `"weighted_pmm": weighted_pmm.METHOD` in kernels/__init__.py, and
    nothing else: the config's method rule reads the registry when it checks."""
    module = load_example()
    monkeypatch.setitem(METHODS, "weighted_pmm", module.METHOD)
    return module


@pytest.fixture
def csv_format(monkeypatch):
    """The one line that registers the CSV format of docs/examples/csv_output.py."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setitem(FORMATS, "csv", CSV_MODULE)


def test_weighted_pmm_prefers_the_nearest_donor(registered):
    """One missing row at yhat 0.1, donors at yhat 0..4: the weights (d_min / d)^3 give the
    nearest (y = 10) probability p = 1 / sum(w); 20,000 draws land within 4 binomial SEs."""
    yhat_obs = np.arange(5.0)
    view = BlockView(
        x_obs=np.column_stack([np.ones(5), yhat_obs]),
        y_obs=np.array([10.0, 20, 30, 40, 50]),
        x_mis=np.tile([1.0, 0.1], (20_000, 1)),
    )
    params = NormDraw(coef=np.array([0.0, 1.0]), beta=np.array([0.0, 1.0]), sigma=1.0)
    got = registered.impute(view, params, np.random.default_rng(3), donors=5)
    distance = np.abs(0.1 - yhat_obs)
    w = (distance.min() / distance) ** registered.KAPPA
    p = w[0] / w.sum()
    share = np.mean(got == 10.0)
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(got)), (share, p)
    assert set(np.unique(got)) <= set(view.y_obs)


def test_weighted_pmm_imputes_through_mice(registered):
    nhanes = load_nhanes()
    imp = sparkmice.mice(nhanes, m=2, maxit=3, seed=4, method={"bmi": "weighted_pmm"})
    assert imp.method["bmi"] == "weighted_pmm"
    observed = set(nhanes["bmi"].dropna())
    for k in (1, 2):
        done = imp.complete(k)
        assert done["bmi"].notna().all()
        assert set(done["bmi"]) <= observed  # donors' observed values only
        kept = nhanes["bmi"].notna()
        assert (done.loc[kept, "bmi"].to_numpy() == nhanes.loc[kept, "bmi"].to_numpy()).all()


def test_an_unregistered_method_is_refused():
    with pytest.raises(sparkmice.config.ConfigError, match="'weighted_pmm'"):
        sparkmice.mice(load_nhanes(), m=1, maxit=1, method={"bmi": "weighted_pmm"})


def test_a_method_registered_at_run_time_is_an_option(monkeypatch):
    with pytest.raises(ConfigError, match="'weighted_pmm'"):
        MiceConfig(method={"bmi": "weighted_pmm"})
    monkeypatch.setitem(METHODS, "weighted_pmm", load_example().METHOD)
    MiceConfig(method={"bmi": "weighted_pmm"})
    assert "weighted_pmm" in MiceConfig.choices("method")
    with pytest.raises(ConfigError, match=r"must be one of \[.*'weighted_pmm'.*\] or ''"):
        MiceConfig(method={"bmi": "weighted"})  # the message lists it too


def test_a_format_registered_at_run_time_is_an_option_and_a_command_line_choice(monkeypatch):
    def parse_format(value: str) -> str:
        parser = argparse.ArgumentParser(exit_on_error=False)
        add_arguments(parser)
        return parser.parse_args(["--input", "x", "--output", "y", "--format", value]).format

    with pytest.raises(ConfigError, match=r"'format' option must be one of \['parquet', 'delta'\]"):
        MiceConfig(format="csv")
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'csv'"):
        parse_format("csv")
    monkeypatch.setitem(FORMATS, "csv", CSV_MODULE)
    assert MiceConfig(format="csv").format == "csv"
    assert parse_format("csv") == "csv"
    assert MiceConfig.choices("format") == ("parquet", "delta", "csv")


def _mixed() -> pd.DataFrame:
    """nhanes with a nominal string column (imputed by polyreg; one level holds a quote, a
    comma and a newline, one is empty), and a date and a timestamp column carried through
    with missing cells."""
    df = load_nhanes()
    sites = ["north", 'say "hi", then\nleave', "", "south"]
    df["site"] = [None if i % 6 == 1 else sites[i % 4] for i in range(len(df))]
    df["visit"] = [
        None if i % 5 == 0 else datetime.date(2020, 1, 1) + datetime.timedelta(days=i)
        for i in range(len(df))
    ]
    seen = pd.Timestamp("2021-03-04 05:06:07.123456")
    df["seen"] = [pd.NaT if i % 7 == 3 else seen + pd.Timedelta(hours=i) for i in range(len(df))]
    return df


def test_csv_output_holds_what_parquet_holds_in_process(csv_format, tmp_path):
    """The same run written as CSV and as Parquet: read_imputed (all chains, one chain) and
    pooling give the same values and types (same process: exact); the files are plain CSV."""
    data = _mixed()
    runs = {
        fmt: sparkmice.mice(data, m=2, maxit=2, seed=7, format=fmt, output=str(tmp_path / fmt))
        for fmt in ("parquet", "csv")
    }
    by_csv, by_parquet = (read_imputed(str(tmp_path / f)) for f in ("csv", "parquet"))
    pd.testing.assert_frame_equal(by_csv, by_parquet)
    assert by_csv["site"].isna().sum() == 0 and by_csv["visit"].isna().sum() == 2 * 5
    assert "" in set(by_csv["site"]) and 'say "hi", then\nleave' in set(by_csv["site"])

    run = RunFolder(str(tmp_path / "csv"))
    files = [f for k in (1, 2) for f in run.record(k)["files"]]
    assert files and all(f.endswith(".csv") for f in files)
    first = pd.read_csv(run.at(files[0]).path, keep_default_na=False)  # any CSV reader
    assert list(first.columns) == [*data.columns, ROW_ID] and len(first) == len(data)

    for k in (1, 2):
        chain = read_imputed(str(tmp_path / "csv"), imputation=k)
        pd.testing.assert_frame_equal(chain, read_imputed(str(tmp_path / "parquet"), imputation=k))
        kept = runs["csv"].complete(k).drop(columns=[ROW_ID])  # the run's own, in memory
        pd.testing.assert_frame_equal(chain.drop(columns=[IMPUTATION, ROW_ID]), kept)
    fits = {
        fmt: sparkmice.fit_imputations(read_imputed(str(tmp_path / fmt)), "chl ~ age + bmi")
        for fmt in runs
    }
    pd.testing.assert_frame_equal(sparkmice.pool(fits["csv"]), sparkmice.pool(fits["parquet"]))


def test_csv_output_on_spark_matches_parquet(csv_format, spark, tmp_path):
    """Barrier tasks write the CSV files themselves, and per-step chains are DataFrames
    written by their tasks: both read back (pandas, Spark, complete()) equal to the barrier
    engine's Parquet run (the engines give the same imputations)."""
    source = tmp_path / "input.parquet"
    _mixed().to_parquet(source, coerce_timestamps="us")  # Spark reads no nanoseconds
    df = spark.read.parquet(str(source))
    runs = {
        (engine, fmt): sparkmice.mice(
            df, m=2, maxit=1, seed=3, engine=engine, format=fmt,
            output=str(tmp_path / f"{engine}-{fmt}"),
        )  # fmt: skip
        for engine, fmt in [("barrier", "parquet"), ("barrier", "csv"), ("perstep", "csv")]
    }

    def on_spark(imp: sparkmice.MiceResult) -> pd.DataFrame:
        table = read_imputed(imp.output, spark).toPandas()
        return table.sort_values([IMPUTATION, ROW_ID], kind="stable").reset_index(drop=True)

    def second(imp: sparkmice.MiceResult) -> pd.DataFrame:
        return imp.complete(2).toPandas().sort_values(ROW_ID).reset_index(drop=True)

    def zone_free(table: pd.DataFrame) -> pd.DataFrame:
        """The per-step engine hands Spark a timestamp without zone as one in the session's
        zone (UTC here): the same instants, another type, whichever the format."""
        seen = table["seen"]
        if isinstance(seen.dtype, pd.DatetimeTZDtype):
            table = table.assign(seen=seen.dt.tz_convert("UTC").dt.tz_localize(None))
        return table

    reference = runs["barrier", "parquet"]
    for key in [("barrier", "csv"), ("perstep", "csv")]:
        imp = runs[key]
        same = (lambda t: t) if key[0] == "barrier" else zone_free
        want = read_imputed(reference.output)
        pd.testing.assert_frame_equal(same(read_imputed(imp.output)), want)
        pd.testing.assert_frame_equal(same(on_spark(imp)), on_spark(reference))
        pd.testing.assert_frame_equal(same(second(imp)), second(reference))
        assert len(on_spark(imp)) == 2 * len(_mixed())


@pytest.mark.spark
def test_the_readmes_daily_pipeline_runs_end_to_end(tmp_path):
    """The script the README's "In a pipeline" shows, with m = 2 and maxit = 1: day 1's run
    keeps its models, day 2 imputes the 1,000 new rows with them (observed cells kept, every
    cell filled), and the pooled table has the formula's terms."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "M": "2", "MAXIT": "1", "PYTHON": sys.executable, "PYTHONPATH": path}
    done = subprocess.run(["bash", str(DAILY), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    today = pd.read_parquet(tmp_path / "today.parquet")
    yesterday = pd.read_parquet(tmp_path / "yesterday.parquet")
    shipped = pd.read_parquet(Path(sparkmice.__file__).parent / "data" / "health_mar.parquet")
    pd.testing.assert_frame_equal(pd.concat([yesterday, today], ignore_index=True), shipped)
    assert len(today) == 1_000 and RunFolder(str(tmp_path / "day1")).model_chains()
    new = read_imputed(str(tmp_path / "day2"))
    assert sorted(new[IMPUTATION].unique()) == [1, 2] and len(new) == 2 * len(today)
    for k in (1, 2):
        one = new[new[IMPUTATION] == k].sort_values(ROW_ID).reset_index(drop=True)
        assert one[today.columns].notna().all().all()
        observed = today.notna()
        for c in today.columns:
            pd.testing.assert_series_equal(one.loc[observed[c], c], today.loc[observed[c], c])
    pooled = pd.read_csv(tmp_path / "pooled_day2.csv")
    assert list(pooled["term"]) == ["Intercept", "age", "bp", "smoke", "C(diet)[T.vegan]",
                                    "C(diet)[T.vegetarian]"]  # fmt: skip
    assert (pooled["m"] == 2).all() and pooled["std_error"].gt(0).all()
