"""sparkmice/predictors.py: `sparkmice.quickpred` against R's rule computed naively with
pandas (exact selection), its arguments, the `quickpred` option of a run (explicit, automatic
for wide tables, off), and Spark equal to in-process."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sparkmice
from sparkmice.blocks import block_of
from sparkmice.config import ConfigError
from sparkmice.kernels.quickpred import AUTO_ABOVE
from sparkmice.names import ROW_ID
from sparkmice.predictors import (
    block_moments,
    decode_moments,
    encode_moments,
    merge_in_order,
    moments_of_table,
    owners,
)


def small_frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    """Mixed columns with MAR holes: a (large mean, to test precision), b and c related to
    it, d binary, e nominal (4 string levels), f rounded, g noise, h constant."""
    rng = np.random.default_rng(seed)
    a = 1e6 + rng.normal(size=n)
    b = (a - 1e6) * 0.5 + rng.normal(size=n)
    c = 0.15 * b + rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-(a - 1e6)))).astype(float)
    e = np.array(["p", "q", "r", "s"])[np.clip((b + 2).astype(int), 0, 3)]
    f = np.clip(np.round(c + 2), 0, 4)
    g = rng.normal(size=n)
    df = pd.DataFrame({"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": 7.0})
    for col, driver in [("b", "a"), ("c", "g"), ("d", "b"), ("e", "a"), ("f", None)]:
        z = df[driver] - df[driver].mean() if driver else 0
        hole = rng.random(n) < 1 / (1 + np.exp(-(z - 0.8)))
        df.loc[hole, col] = None
    df.loc[rng.random(n) < 0.2, "a"] = np.nan
    return df


def columns_of(df: pd.DataFrame, name: str) -> list[pd.Series]:
    """What a variable is correlated as: a nominal (string) one as its 0/1 level columns."""
    s = df[name]
    if s.dtype == object:
        levels = sorted(s.dropna().unique())
        return [(s == level).astype(float).where(s.notna()) for level in levels]
    return [s.astype(float)]


def naive_quickpred(df, mincor=0.1, minpuc=0.0, include=(), exclude=()) -> pd.DataFrame:
    """R's quickpred, pair by pair with pandas (pairwise-complete correlations)."""
    names = list(df.columns)
    out = pd.DataFrame(0, index=names, columns=names)
    for y in names:
        r = df[y].notna().astype(float)
        for x in names:
            with np.errstate(invalid="ignore", divide="ignore"):  # a constant: NaN, as R's NA
                cors = [abs(yc.corr(xc)) for yc in columns_of(df, y) for xc in columns_of(df, x)]
                cors += [abs(r.corr(xc)) for xc in columns_of(df, x)]
            strength = max(0.0 if np.isnan(v) else v for v in cors)
            missing_y = df[y].isna()
            puc = (df[x].notna() & missing_y).sum() / missing_y.sum() if missing_y.any() else 1
            out.loc[y, x] = int(strength > mincor and not puc < minpuc)
    out[list(exclude)] = 0
    out[list(include)] = 1
    for y in names:
        out.loc[y, y] = 0
        if df[y].notna().all():
            out.loc[y] = 0
    return out


@pytest.mark.parametrize("mincor", [0.05, 0.1, 0.3, 0.5])
def test_selection_is_r_rule_computed_naively(mincor):
    df = small_frame()
    got = sparkmice.quickpred(df, mincor=mincor)
    pd.testing.assert_frame_equal(got, naive_quickpred(df, mincor), check_dtype=False)
    assert got.loc["b"].sum() > 0 and got.loc["a", "h"] == 0  # h is constant: never picked


def test_minpuc_include_exclude_as_r():
    df = small_frame()
    opts = {"mincor": 0.2, "minpuc": 0.6, "include": ["g"], "exclude": ["a", "g"]}
    got = sparkmice.quickpred(df, **opts)
    pd.testing.assert_frame_equal(got, naive_quickpred(df, **opts), check_dtype=False)
    assert (got["g"] == [1, 1, 1, 1, 1, 1, 0, 0]).all()  # include wins; not itself, not complete
    assert not got["a"].any()
    # the same without minpuc selects more: minpuc did remove some
    assert sparkmice.quickpred(df, mincor=0.2).values.sum() > got.values.sum() - got["g"].sum()


def test_collapsed_levels_are_one_category():
    """With collapse_below, rare levels share a model category, and quickpred correlates
    that category (as the naive rule on the frame with those levels merged)."""
    df = small_frame()
    counts = df["e"].value_counts()
    rare = list(counts.index[counts < counts.iloc[1]])
    assert len(rare) >= 2
    got = sparkmice.quickpred(df, config=sparkmice.MiceConfig(collapse_below=int(counts.iloc[1])))
    merged = df.assign(e=df["e"].where(~df["e"].isin(rare), rare[0]))
    pd.testing.assert_frame_equal(got, naive_quickpred(merged), check_dtype=False)


def test_sums_travel_as_typed_arrow():
    """A task's sums reach the driver as Arrow IPC of float64 columns, read back bitwise;
    another layout or size is refused."""
    df = small_frame(100)
    plan = sparkmice.mice(df, m=1, maxit=1).plan
    table = pa.Table.from_pandas(df, preserve_index=False)
    m = moments_of_table(table, plan.variables)
    width = len(owners(plan.variables))
    back = decode_moments(m.rows, encode_moments(m), width)
    for name in ("shift", "n", "mean", "m2", "comoment"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    with pytest.raises(ValueError, match="not in the expected layout"):
        decode_moments(m.rows, encode_moments(m), width + 1)


def test_nhanes_as_r_mice():
    """R: quickpred(nhanes) (mice 3.x) selects age, hyp, chl for bmi; age, chl for hyp;
    age, bmi, hyp for chl."""
    nhanes = pd.read_csv(Path(__file__).resolve().parents[1] / "sparkmice" / "data" / "nhanes.csv")
    got = sparkmice.quickpred(nhanes)
    want = [[0, 0, 0, 0], [1, 0, 1, 1], [1, 0, 0, 1], [1, 1, 1, 0]]
    assert got.values.tolist() == want


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"method": "spearman"}, "quickpred's arguments must be mincor and minpuc in [0, 1]"),
        ({"mincor": 1.5}, "quickpred's arguments must be mincor and minpuc in [0, 1]"),
        ({"include": ["zz"]}, "quickpred's include names ['zz'], not variables of the data"),
    ],
)
def test_bad_arguments_one_line(arguments, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        sparkmice.quickpred(small_frame(50), **arguments)
    assert "\n" not in str(error.value)


def test_run_with_quickpred_option_uses_its_matrix_and_logs_it():
    df = small_frame(200)
    imp = sparkmice.mice(df, m=1, maxit=1, quickpred={"mincor": 0.3, "exclude": ["g"]},
                         predictors={"c": ["a", "g"]})  # fmt: skip
    want = sparkmice.quickpred(df, mincor=0.3, exclude=["g"])
    pm = imp.predictor_matrix
    for target in imp.visit_sequence:
        if target != "c":
            assert pm.loc[target].tolist() == want.loc[target].tolist(), target
    assert pm.loc["c"][pm.loc["c"] == 1].index.tolist() == ["a", "g"]  # explicit entry wins
    events = imp.logged_events
    selected = events[events["event"] == "predictors selected"]
    assert sorted(selected["variable"]) == sorted(t for t in imp.visit_sequence if t != "c")
    row = selected[selected["variable"] == "b"]["detail"].iloc[0]
    chosen = want.columns[want.loc["b"] == 1]
    assert row.endswith(", ".join(chosen)) and "mincor=0.3" in row


def wide_frame(n: int = 120, width: int = AUTO_ABOVE + 2) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    base = rng.normal(size=n)
    df = pd.DataFrame({f"x{i}": base * (i % 3 == 0) + rng.normal(size=n) for i in range(width)})
    df.loc[rng.random(n) < 0.3, "x0"] = np.nan
    return df


def test_wide_table_chooses_quickpred_by_default_and_says_how_to_turn_it_off():
    """The event also says how to keep the analysis model's variables in one another's
    models (the wide benchmark's pooled terms were biased toward zero without it)."""
    df = wide_frame()
    imp = sparkmice.mice(df, m=1, maxit=1)
    events = imp.logged_events
    auto = events[events["event"] == "quickpred chosen"]["detail"].tolist()
    assert len(auto) == 1 and "quickpred: false" in auto[0]
    assert "quickpred: {include: [...]}" in auto[0] and "check-congeniality" in auto[0]
    assert f"{df.shape[1] - 1} candidate predictors, more than {AUTO_ABOVE}" in auto[0]
    assert imp.predictor_matrix.loc["x0"].tolist() == sparkmice.quickpred(df).loc["x0"].tolist()
    assert 0 < imp.predictor_matrix.loc["x0"].sum() < df.shape[1] - 1
    off = sparkmice.mice(df, m=1, maxit=1, quickpred=False)
    assert off.predictor_matrix.loc["x0"].sum() == df.shape[1] - 1
    assert not (off.logged_events["event"].str.startswith("quickpred")).any()


def test_narrow_table_unchanged_by_default():
    df = wide_frame(width=AUTO_ABOVE + 1)  # AUTO_ABOVE candidates: not more
    imp = sparkmice.mice(df, m=1, maxit=1)
    assert imp.predictor_matrix.loc["x0"].sum() == AUTO_ABOVE
    assert not imp.logged_events["event"].isin(["quickpred chosen", "predictors selected"]).any()


def test_no_predictor_selected_imputes_from_the_intercept():
    df = wide_frame(width=4)
    imp = sparkmice.mice(df, m=1, maxit=1, quickpred={"mincor": 0.99})
    assert imp.predictor_matrix.loc["x0"].sum() == 0
    done = imp.complete(1)
    assert done["x0"].notna().all()
    detail = imp.logged_events.query("event == 'predictors selected'")["detail"].iloc[0]
    assert "none (intercept-only model)" in detail


def test_derived_passive_column_is_kept_but_not_for_its_inputs():
    """A new passive column is not in the data: quickpred keeps it as asked, except for the
    variables it is derived from (R mice's circularity rule)."""
    df = small_frame(200)
    imp = sparkmice.mice(df, m=1, maxit=1, quickpred={"mincor": 0.3}, passive={"ab": "a * b"})
    want = sparkmice.quickpred(df, mincor=0.3)
    chosen = list(want.columns[want.loc["c"] == 1])
    assert list(imp.plan.predictors["c"]) == [*chosen, "ab"]
    assert "ab" not in imp.plan.predictors["a"] and "ab" not in imp.plan.predictors["b"]


def test_config_include_must_name_a_column():
    with pytest.raises(ConfigError, match="quickpred names column 'zz', which is not in the"):
        sparkmice.mice(small_frame(50), m=1, maxit=1, quickpred={"include": ["zz"]})


def test_block_sums_do_not_depend_on_partitioning():
    """Blocks go whole to Spark tasks in any order, their rows shuffled: the sums merged
    in block order are bitwise those of the in-process table (same machine)."""
    df = small_frame(300)
    plan = sparkmice.mice(df, m=1, maxit=1, row_blocks=5).plan
    table = pa.Table.from_pandas(df).append_column(ROW_ID, pa.array(np.arange(300) * 7))
    whole = merge_in_order(block_moments(table, plan.variables, 5), len(owners(plan.variables)))
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(300)))
    block = block_of(shuffled.column(ROW_ID).to_numpy(), 5)
    tasks = [shuffled.filter(pa.array(np.isin(block, part))) for part in ([3, 0], [4, 1, 2])]
    parts = [p for t in tasks for p in block_moments(t, plan.variables, 5)][::-1]
    merged = merge_in_order(parts, len(owners(plan.variables)))
    for name in ("shift", "n", "mean", "m2", "comoment"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    assert merged.rows == whole.rows == 300


def test_spark_equals_inprocess(spark, tmp_path):
    """One Spark pass (mapInArrow, typed Arrow sums) selects as in-process: the function
    on a Spark DataFrame and on a path, and a Spark run's plan."""
    df = small_frame(300)
    sdf = spark.createDataFrame(df.astype({"e": object}))
    df.to_parquet(tmp_path / "frame.parquet", index=False)
    pd.testing.assert_frame_equal(
        sparkmice.quickpred(str(tmp_path / "frame.parquet")), sparkmice.quickpred(df)
    )
    pd.testing.assert_frame_equal(sparkmice.quickpred(sdf, mincor=0.2, minpuc=0.3),
                                  sparkmice.quickpred(df, mincor=0.2, minpuc=0.3))  # fmt: skip
    options = {"m": 1, "maxit": 1, "quickpred": {"mincor": 0.2}}
    on_spark = sparkmice.mice(sdf, **options)
    here = sparkmice.mice(df, **options)
    pd.testing.assert_frame_equal(on_spark.predictor_matrix, here.predictor_matrix)


def test_congeniality_fix_starts_from_the_predictors_quickpred_chose():
    """A quickpred run whose outcome g does not predict b (|r| < mincor): the check's fix is
    a `predictors` entry of b's chosen predictors plus g (not "b uses every column")."""
    from sparkmice.congeniality import check_congeniality

    df = small_frame(200)
    imp = sparkmice.mice(df, m=1, maxit=1, quickpred={"mincor": 0.3})
    chosen = list(imp.plan.predictors["b"])
    assert "g" not in chosen
    report = check_congeniality(imp, "g ~ a + b")
    assert report.changes["predictors"]["b"] == [*chosen, "g"]
