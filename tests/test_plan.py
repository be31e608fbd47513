"""sparkmice/plan.py: from a small frame's schema and summaries to the resolved plan (kinds,
levels, collapsed levels, methods, predictors, visit sequence, config.json's view of it),
and every refusal naming its column and the fix. Pure pandas/Arrow, no Spark."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from small_plans import plan_of

from sparkmice import privacy
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.names import IMPUTATION, ROW_ID
from sparkmice.plan import InputError, block_count, check_id_counts, check_schema

N = 40


def frame(**extra) -> pd.DataFrame:
    """Columns of each kind, a few cells missing in each but `full`."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=N),  # continuous
            "b": rng.integers(0, 2, N).astype(float),  # two values: binary
            "s": rng.choice(["lo", "mid", "hi"], N),  # strings: nominal
            "o": pd.Categorical(
                rng.choice(["mild", "moderate", "severe"], N),
                categories=["mild", "moderate", "severe"],
                ordered=True,
            ),
            "full": rng.normal(size=N),
        }
    )
    for i, name in enumerate(["x", "b", "s", "o"]):
        df[name] = df[name].astype(object).where(np.arange(N) % 7 != i, None)
    df["x"] = df["x"].astype(float)
    df["b"] = df["b"].astype(float)
    df["o"] = pd.Categorical(df["o"], categories=["mild", "moderate", "severe"], ordered=True)
    return df.assign(**extra)


def test_kinds_levels_and_default_methods_are_detected():
    plan, _ = plan_of(frame())
    kinds = {v.name: v.kind for v in plan.variables}
    assert kinds == {
        "x": "continuous", "b": "binary", "s": "nominal", "o": "ordered", "full": "continuous",
    }  # fmt: skip
    assert plan.method == {"x": "pmm", "b": "logreg", "s": "polyreg", "o": "polr", "full": ""}
    assert plan.variable("s").levels == ("hi", "lo", "mid")  # sorted distinct values
    assert plan.variable("o").levels == ("mild", "moderate", "severe")  # the category order
    assert plan.variable("b").levels == (0.0, 1.0)
    assert plan.variable("x").levels is None
    missing = {v.name: v.n_missing for v in plan.variables}
    assert missing == {"x": 6, "b": 6, "s": 6, "o": 6, "full": 0}
    counts = plan.variable("s").counts
    assert counts is not None and sum(counts) == N - 6


def test_a_string_column_with_two_values_is_binary_and_declared_kinds_win():
    df = frame(yes=["y", "n"] * (N // 2))
    df.loc[3, "yes"] = None
    plan, _ = plan_of(df, kind={"x": "continuous", "b": "nominal"})
    assert plan.variable("yes").kind == "binary" and plan.method["yes"] == "logreg"
    assert plan.variable("b").kind == "nominal" and plan.method["b"] == "polyreg"


def test_declared_levels_set_the_order_and_must_hold_every_observed_value():
    plan, _ = plan_of(frame(), kind={"s": "ordered"}, levels={"s": ["lo", "mid", "hi"]})
    assert plan.variable("s").levels == ("lo", "mid", "hi") and plan.method["s"] == "polr"
    with pytest.raises(ConfigError, match=r"column 's' miss the observed value\(s\) \['mid'\]"):
        plan_of(frame(), levels={"s": ["lo", "hi"]})


def test_rare_levels_collapse_into_one_model_category_and_are_logged():
    s = ["a"] * 20 + ["b"] * 15 + ["c", "c", "d", "e", "e"]
    plan, _ = plan_of(frame(s=s), collapse_below=3)
    v = plan.variable("s")
    assert v.levels == ("a", "b", "c", "d", "e")
    assert v.groups == (0, 1, 2, 2, 2) and v.n_categories == 3 and v.n_levels == 5
    event = next(e for e in plan.events if e["event"] == "levels collapsed")
    assert event["variable"] == "s"
    assert event["detail"].startswith("c (<5), d (<5), e (<5): fewer than collapse_below=3")
    # one rare level alone is not collapsed
    plan, _ = plan_of(frame(s=["a"] * 20 + ["b"] * 19 + ["c"]), collapse_below=3)
    assert plan.variable("s").groups is None
    assert not [e for e in plan.events if e["event"] == "levels collapsed"]


def test_collapse_of_a_private_column_names_levels_by_code():
    s = ["a"] * 20 + ["b"] * 15 + ["c", "c", "d", "e", "e"]
    plan, _ = plan_of(frame(s=s), collapse_below=3, private=["s"])
    detail = next(e["detail"] for e in plan.events if e["event"] == "levels collapsed")
    codes = ", ".join(f"{privacy.level_code(i, 5)} (<5)" for i in (2, 3, 4))
    assert detail == f"{codes}: fewer than collapse_below=3 rows, one model category"


def test_predictors_default_to_every_other_variable_and_follow_the_config():
    plan, _ = plan_of(frame(), predictors={"x": ["full", "b"]})
    assert plan.predictors["x"] == ("full", "b")
    assert plan.predictors["b"] == ("x", "s", "o", "full")
    assert "full" not in plan.predictors  # complete: not imputed, so no model


def test_an_incomplete_unimputed_column_is_no_predictor_and_is_logged():
    plan, _ = plan_of(frame(), method={"s": ""})
    assert "s" not in plan.visit_sequence
    assert all("s" not in preds for preds in plan.predictors.values())
    removed = [e for e in plan.events if e["event"] == "predictor removed"]
    assert {e["variable"] for e in removed} == {"x", "b", "o"}
    assert all(e["detail"] == "s: incomplete and not imputed" for e in removed)


def test_excluded_and_id_columns_pass_through_and_predict_nothing():
    df = frame(key=np.arange(N) * 10, note=["n"] * N)
    plan, _ = plan_of(df, exclude=["note"], id_column="key")
    assert plan.passthrough == ("key", "note")
    assert {v.name for v in plan.variables} == {"x", "b", "s", "o", "full"}
    assert all(p not in ("key", "note") for ps in plan.predictors.values() for p in ps)


def test_a_passive_column_does_not_predict_its_own_inputs():
    plan, _ = plan_of(frame(), passive={"x2": "x * full"})
    assert plan.method["x2"] == "passive" and plan.variable("x2").derived
    assert "x2" not in plan.predictors["x"]  # x2 is derived from x
    assert "x2" in plan.predictors["b"]
    detail = {e["detail"] for e in plan.events if e["variable"] == "x"}
    assert "x2: passive, derived from x" in detail


def test_the_visit_sequence_is_the_incomplete_columns_or_the_configs_order():
    plan, _ = plan_of(frame())
    assert plan.visit_sequence == ("x", "b", "s", "o")
    plan, _ = plan_of(frame(), visit_sequence=["o", "full", "x"])
    assert plan.visit_sequence == ("o", "x")  # complete columns are never visited


def test_the_number_of_blocks_follows_row_blocks_or_rows_per_block():
    assert block_count(MiceConfig(row_blocks=4), 10) == 4
    assert block_count(MiceConfig(rows_per_block=30), 61) == 3
    assert block_count(MiceConfig(), 0) == 1
    plan, blocks = plan_of(frame(), row_blocks=3)
    assert plan.n_blocks == 3 and len(blocks) == 3 and plan.n_rows == N


def test_config_json_keeps_a_private_columns_levels_as_a_digest_only():
    plan, _ = plan_of(frame(), private=["s"])
    entries = {v["name"]: v for v in plan.to_dict()["variables"]}
    assert entries["o"]["levels"] == ["mild", "moderate", "severe"]
    assert entries["s"]["levels"] is None and entries["s"]["private"] is True
    assert entries["s"]["n_levels"] == 3
    assert entries["s"]["levels_sha256"] == privacy.levels_digest(("hi", "lo", "mid"))
    assert "'lo'" not in repr(plan.to_dict())


# (frame change, options, error type, message): each names the column and the fix
REFUSED = [
    ({}, {"method": {"zz": "pmm"}}, ConfigError, "method names column 'zz', which is not in"),
    ({"e": np.nan}, {}, InputError, "column 'e' has no observed value; drop it or list it"),
    (
        {"many": [f"v{i % 30}" for i in range(N)]},
        {"max_levels": 20},
        InputError,
        "column 'many' has 30 or more levels, more than max_levels=20",
    ),
    (
        {"ident": [f"p{i}" for i in range(N)]},
        {},
        InputError,
        "column 'ident' has a different value in each of its 40 observed rows; it looks like "
        "an identifier",
    ),
    ({}, {"method": {"s": "norm"}}, ConfigError, "method 'norm' for column 's' does not fit"),
    ({}, {"kind": {"s": "binary"}}, ConfigError, "kind for column 's' is 'binary' but it has 3"),
    ({}, {"kind": {"s": "continuous"}}, ConfigError, "kind for column 's' is 'continuous' but"),
    (
        {},
        {"separation": {"x": "ridge"}},
        ConfigError,
        "separation is set for column 'x', whose method is 'pmm'",
    ),
    (
        {},
        {"predictors": {"x": []}},
        ConfigError,
        "column 'x' has no predictors left for method 'pmm'; add predictors",
    ),
    ({"inf": [np.inf] + [1.0] * (N - 1)}, {}, InputError, "column 'inf' holds 1 infinite value"),
    (
        {"when": pd.date_range("2020-01-01", periods=N)},
        {"kind": {"when": "nominal"}},
        ConfigError,
        "kind for column 'when' is 'nominal' but it holds timestamp",
    ),
    ({}, {"passive": {"p": "x + nope"}}, ConfigError, "passive formula for 'p' reads 'nope'"),
    ({}, {"passive": {"p": "x + s"}}, ConfigError, "reads the categorical column 's'"),
]


@pytest.mark.parametrize(("extra", "options", "error", "message"), REFUSED)
def test_bad_input_is_refused_naming_the_column(extra, options, error, message):
    with pytest.raises(error, match=re.escape(message)):
        plan_of(frame(**extra), **options)


@pytest.mark.parametrize("name", [ROW_ID, IMPUTATION])
def test_a_reserved_column_name_is_refused(name):
    schema = pa.schema([("x", pa.float64()), (name, pa.int64())])
    with pytest.raises(InputError, match=f"input column '{name}' uses a name sparkmice reserves"):
        check_schema(schema, MiceConfig())


def test_a_date_column_is_carried_through_unless_declared_continuous():
    df = frame(when=pd.date_range("2020-01-01", periods=N))
    plan, _ = plan_of(df)
    assert "when" in plan.passthrough and "when" not in plan.index
    assert any(e["event"] == "carried through" and e["variable"] == "when" for e in plan.events)
    plan, _ = plan_of(df, kind={"when": "continuous"})
    assert plan.variable("when").kind == "continuous" and "when" not in plan.passthrough


def test_id_columns_must_be_integer_or_string_keys_without_gaps_or_repeats():
    schema = pa.schema([("key", pa.float64()), ("x", pa.float64())])
    with pytest.raises(InputError, match="id_column 'key' has type double"):
        check_schema(schema, MiceConfig(id_column="key"))
    with pytest.raises(InputError, match=r"id_column 'k' is missing in 2 row\(s\)"):
        check_id_counts("k", 10, 2, 8, 8)
    with pytest.raises(InputError, match=r"id_column 'k' has repeated values \(3 row\(s\)"):
        check_id_counts("k", 10, 0, 7, 7)
    with pytest.raises(InputError, match="id_column 'k': two string keys give the same"):
        check_id_counts("k", 10, 0, 10, 9)
    check_id_counts("k", 10, 0, 10, 10)
