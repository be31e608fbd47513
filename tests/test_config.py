"""sparkmice/config.py: the one table of option rules, its one message form, YAML and dict
loading, and the choices the command line takes from it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from sparkmice.config import ENGINES, FORMATS, KINDS, RULES, ConfigError, MiceConfig
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
        {"x": "rf"},
        f"The 'method' option for column 'x' must be one of {sorted(METHODS)} or '' "
        "(do not impute); got 'rf'.",
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
    ("exclude", "a", "The 'exclude' option must be a list of column names; got 'a'."),
    ("donors", 0, "The 'donors' option must be an integer >= 1; got 0."),
    ("max_levels", -3, "The 'max_levels' option must be an integer >= 1"),
    ("blocks", 0, "The 'blocks' option must be an integer >= 1 or null; got 0."),
    ("rows_per_block", "1e5", "The 'rows_per_block' option must be an integer >= 1"),
    ("rows_per_task", 0, "The 'rows_per_task' option must be an integer >= 1"),
    ("collapse_below", 0.5, "The 'collapse_below' option must be an integer >= 1 or null"),
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
    ("ignore", ["test"], "The 'ignore' option must be a boolean column's name (its true rows"),
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
        exclude=["id"],
        blocks=4,
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


def test_a_changed_field_is_checked_again_by_validate():
    config = MiceConfig()
    config.m = 0
    with pytest.raises(ConfigError, match=r"The 'm' option must be"):
        config.validate()


def test_choices_come_from_the_table():
    assert MiceConfig.choices("engine") == ENGINES
    assert MiceConfig.choices("format") == FORMATS
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
    assert tuple(by_flag["format"].choices) == FORMATS


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
