"""sparkmice/config.py: the one table of option rules, its one message form, YAML and dict
loading, and the choices the command line takes from it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sparkmice.config import (
    ENGINES,
    FORMATS,
    KINDS,
    RULES,
    ConfigError,
    MiceConfig,
    RenamedOptionWarning,
)
from sparkmice.impute_job import add_arguments
from sparkmice.kernels import METHODS
from sparkmice.kernels.logreg import SEPARATIONS

# one bad value of every option, and the message it must give (the whole message)
BAD = [
    ("m", 0, "The 'm' option must be an integer >= 1; got 0."),
    ("m", True, "The 'm' option must be an integer >= 1; got True."),
    ("maxit", 2.5, "The 'maxit' option must be an integer >= 1; got 2.5."),
    ("seed", -1, "The 'seed' option must be an integer >= 0; got -1."),
    (
        "method",
        "pmm",
        "The 'method' option must be a mapping of column name to one of "
        f"{sorted(METHODS)} or '' (do not impute), e.g. {{'bp': 'pmm'}}; got 'pmm'.",
    ),
    (
        "method",
        {"x": "forest"},
        f"The 'method' option for column 'x' must be one of {sorted(METHODS)} or '' "
        "(do not impute); got 'forest'.",
    ),
    ("kind", {"x": "date"}, f"The 'kind' option for column 'x' must be one of {list(KINDS)}"),
    ("levels", {"x": "abc"}, "The 'levels' option for column 'x' must be a list of its levels"),
    ("separation", {"b": "lasso"}, "The 'separation' option for column 'b' must be one of"),
    ("passive", {"bmi": 3}, "The 'passive' option for column 'bmi' must be a formula"),
    (
        "predictors",
        {"a": "b"},
        "The 'predictors' option for column 'a' must be a list of column names; got 'b'.",
    ),
    ("predictors", ["a"], "The 'predictors' option must be a mapping of column name to a list"),
    (
        "quickpred",
        {"mincor": 0.1, "method": "spearman"},
        "The 'quickpred' option must be true, false, null (automatic above 25 candidate "
        "predictors) or a mapping of mincor and minpuc (numbers in [0, 1]), include and "
        "exclude (lists of column names) and method ('pearson'; R's 'spearman' is not "
        "built); got {'mincor': 0.1, "
        "'method': 'spearman'}.",
    ),
    ("quickpred", {"mincor": 2}, "The 'quickpred' option must be true, false, null"),
    ("quickpred", {"minpuc": "0.2"}, "The 'quickpred' option must be true, false, null"),
    ("quickpred", {"include": "age"}, "The 'quickpred' option must be true, false, null"),
    ("quickpred", {"mincr": 0.1}, "The 'quickpred' option must be true, false, null"),
    ("quickpred", "yes", "The 'quickpred' option must be true, false, null"),
    ("visit_sequence", "ab", "The 'visit_sequence' option must be a list of column names or null"),
    (
        "visit_sequence",
        "Monotone",
        "or null, or one of ['roman', 'arabic', 'monotone', 'revmonotone']; got 'Monotone'.",
    ),
    ("post", ["chl"], "The 'post' option must be a mapping of column name to a mapping of"),
    (
        "post",
        {"chl": {"squeeze": [300, 100]}},
        "The 'post' option for column 'chl' must be a mapping of 'round' (decimals, an integer) "
        "and/or 'squeeze' ([lo, hi], lo <= hi); got {'squeeze': [300, 100]}.",
    ),
    ("post", {"chl": {"round": 0.5}}, "The 'post' option for column 'chl' must be a mapping"),
    ("post", {"chl": {"squeeze": [0, "x"]}}, "The 'post' option for column 'chl' must be"),
    ("post", {"chl": "squeeze(100, 300)"}, "The 'post' option for column 'chl' must be"),
    ("post", {"chl": {"clip": [0, 1]}}, "The 'post' option for column 'chl' must be"),
    ("post", {"chl": {}}, "The 'post' option for column 'chl' must be"),
    ("exclude", "a", "The 'exclude' option must be a list of column names; got 'a'."),
    ("donors", 0, "The 'donors' option must be an integer >= 1; got 0."),
    ("minbucket", 0, "The 'minbucket' option must be an integer >= 1; got 0."),
    ("cp", -0.1, "The 'cp' option must be a number >= 0; got -0.1."),
    ("cp", "0.01", "The 'cp' option must be a number >= 0; got '0.01'."),
    ("ntree", 2.0, "The 'ntree' option must be an integer >= 1; got 2.0."),
    (
        "polyreg_prior",
        "ridge",
        "The 'polyreg_prior' option must be one of ['auto', 'none', 'hierarchical']; got 'ridge'.",
    ),
    ("max_levels", -3, "The 'max_levels' option must be an integer >= 1"),
    ("row_blocks", 0, "The 'row_blocks' option must be an integer >= 1 or null; got 0."),
    ("rows_per_block", "1e5", "The 'rows_per_block' option must be an integer >= 1"),
    ("rows_per_task", 0, "The 'rows_per_task' option must be an integer >= 1"),
    ("collapse_below", 0.5, "The 'collapse_below' option must be an integer >= 1 or null"),
    ("max_dummies", 0, "The 'max_dummies' option must be an integer >= 1 or null; got 0."),
    ("engine", "spark", f"The 'engine' option must be one of {list(ENGINES)}; got 'spark'."),
    ("concurrency", 0, "The 'concurrency' option must be an integer >= 1 or null"),
    ("format", "csv", f"The 'format' option must be one of {list(FORMATS)}; got 'csv'."),
    ("id_column", 3, "The 'id_column' option must be a column name or null; got 3."),
    ("chains", [0], "The 'chains' option must be a non-empty list of chain numbers in 1..m=5"),
    ("chains", [], "The 'chains' option must be a non-empty list of chain numbers"),
    ("chains", [6], "in 1..m=5 or null; got [6]."),
    ("exchange_timeout", -1, "The 'exchange_timeout' option must be a number of seconds > 0"),
    ("exchange_timeout", float("inf"), "The 'exchange_timeout' option must be a number"),
    ("exchange_timeout", "60", "The 'exchange_timeout' option must be a number"),
    ("private", "name", "The 'private' option must be a list of column names; got 'name'."),
    ("private", [3], "The 'private' option must be a list of column names; got [3]."),
    ("private_levels_above", 0, "The 'private_levels_above' option must be an integer >= 1 or"),
    ("min_cell_count", 0, "The 'min_cell_count' option must be an integer >= 1; got 0."),
    ("inf_as_missing", "yes", "The 'inf_as_missing' option must be true or false; got 'yes'."),
    ("ignore", ["test"], "The 'ignore' option must be a boolean column's name or a row predicate"),
    ("ignore", "", "The 'ignore' option must be a boolean column's name"),
    (
        "where",
        "bp_where",
        "The 'where' option must be a mapping of column name to a boolean column's name (its "
        "true cells are imputed), e.g. {'bp': 'bp_where'}; got 'bp_where'.",
    ),
    ("where", {"bp": True}, "The 'where' option for column 'bp' must be a boolean column's"),
]


def test_every_option_has_one_rule():
    assert list(RULES) == [f.name for f in dataclasses.fields(MiceConfig)]
    assert {name for name, _, _ in BAD} == set(RULES)  # and every rule is tested below


@pytest.mark.parametrize(("option", "value", "message"), BAD)
def test_each_bad_value_gets_one_clear_message(option, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        MiceConfig(**{option: value})


def test_the_defaults_and_right_values_pass():
    MiceConfig()
    MiceConfig(
        m=3,
        seed=0,
        method={"x": "norm", "y": ""},
        kind={"s": "ordered"},
        levels={"s": ("lo", "hi")},
        separation={"b": "firth"},
        passive={"bmi": "w / h**2"},
        predictors={"x": ["y"], "y": []},
        visit_sequence=["y", "x"],
        post={"x": {"squeeze": [0, 1.5], "round": 1}, "y": {"round": -1}},
        exclude=["id"],
        row_blocks=4,
        collapse_below=10,
        engine="inprocess",
        concurrency=2,
        format="delta",
        id_column="id",
        chains=[3, 1],
        exchange_timeout=0.5,
        ignore="test",
        where={"x": "x_where"},
    )


@pytest.mark.parametrize("order", ["roman", "arabic", "monotone", "revmonotone"])
def test_visit_sequence_takes_r_mices_named_orders(order):
    assert MiceConfig(visit_sequence=order).visit_sequence == order
    assert MiceConfig(visit_sequence=order).columns_named()["visit_sequence"] == []


def test_blocks_is_the_old_name_of_row_blocks_with_one_warning_line(tmp_path):
    with pytest.warns(RenamedOptionWarning) as caught:
        config = MiceConfig(blocks=4)
    assert config.row_blocks == 4 and config == MiceConfig(row_blocks=4)
    (warning,) = caught
    assert "\n" not in str(warning.message)
    assert str(warning.message).startswith("The 'blocks' option is now called 'row_blocks'")
    assert warning.filename == __file__  # points at the caller's line, not sparkmice's
    path = tmp_path / "old.yaml"
    path.write_text("blocks: 3\n")
    with pytest.warns(RenamedOptionWarning, match="'blocks' option is now called 'row_blocks'"):
        assert MiceConfig.from_yaml(path).row_blocks == 3
    with pytest.warns(RenamedOptionWarning):
        assert MiceConfig.from_dict({"blocks": 2}).to_dict()["row_blocks"] == 2
    assert "blocks" not in MiceConfig(row_blocks=2).to_dict()


def test_the_old_name_is_checked_under_its_name_and_not_with_the_new_one():
    with pytest.raises(
        ConfigError, match=re.escape("The 'blocks' option must be an integer >= 1 or null; got 0.")
    ):
        MiceConfig(blocks=0)
    with pytest.raises(ConfigError, match=r"'blocks' option is the old name of 'row_blocks'; both"):
        MiceConfig(blocks=2, row_blocks=3)


def test_a_changed_field_is_checked_again_by_validate():
    config = MiceConfig()
    config.m = 0
    with pytest.raises(ConfigError, match=r"The 'm' option must be"):
        config.validate()


def test_choices_come_from_the_table():
    assert MiceConfig.choices("engine") == ENGINES
    assert MiceConfig.choices("format") == tuple(FORMATS)
    assert MiceConfig.choices("kind") == KINDS
    assert MiceConfig.choices("separation") == SEPARATIONS
    assert set(MiceConfig.choices("method")) == set(METHODS) | {""}
    with pytest.raises(ValueError, match="'m' is not a choice"):
        MiceConfig.choices("m")


def test_the_command_line_offers_the_tables_choices():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    by_flag = {a.dest: a for a in parser._actions}
    assert tuple(by_flag["engine"].choices) == ENGINES
    assert tuple(by_flag["format"].choices) == tuple(FORMATS)


def test_from_dict_refuses_unknown_options_naming_them():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['maxiter'\]; the options are"):
        MiceConfig.from_dict({"maxiter": 3})


def test_from_yaml_takes_the_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("m: 3\nmethod: {x: norm}\nengine: perstep\n")
    config = MiceConfig.from_yaml(path, m=7, engine=None)
    assert (config.m, config.method, config.engine) == (7, {"x": "norm"}, "perstep")
    path.write_text("method: pmm\n")
    with pytest.raises(ConfigError, match=r"The 'method' option must be a mapping"):
        MiceConfig.from_yaml(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping of options"):
        MiceConfig.from_yaml(path)


def test_chain_numbers_and_columns_named():
    config = MiceConfig(m=4, chains=[3, 1, 3], predictors={"x": ["y", "bmi"]}, id_column="id")
    config.passive = {"bmi": "w / h"}
    assert config.chain_numbers() == [1, 3]
    assert MiceConfig(m=3).chain_numbers() == [1, 2, 3]
    named = config.columns_named()
    assert named["predictors"] == ["x", "y"]  # a passive name is not an input column
    assert named["id_column"] == ["id"]
    assert MiceConfig.from_dict(config.to_dict()) == config
    masks = MiceConfig(exclude=["a", "t"], ignore="t", where={"x": "w"})
    assert masks.columns_named()["where"] == ["x", "w"]
    assert masks.excluded() == ["a", "t", "w"]  # the masks are carried through, once
