"""Bad input gets a clear error naming the column or option and the fix, before any job."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.config import ConfigError, MiceConfig
from sparkmice.plan import InputError


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    df.loc[::5, "y"] = np.nan
    df.loc[1::7, "g"] = None
    return df


def test_unknown_column_in_config(data):
    with pytest.raises(ConfigError, match=r"method names column 'nope'.*columns are"):
        sparkmice.mice(data, m=1, maxit=1, method={"nope": "pmm"})
    with pytest.raises(ConfigError, match=r"predictors names column 'zz'"):
        sparkmice.mice(data, m=1, maxit=1, predictors={"y": ["zz"]})


def test_unknown_option():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['maxiter'\]"):
        MiceConfig.from_dict({"maxiter": 3})


@pytest.mark.parametrize("option", ["m", "maxit"])
@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_m_and_maxit_must_be_positive(data, option, value):
    want = rf"The '{option}' option must be an integer >= 1; got {value}"
    with pytest.raises(ConfigError, match=want):
        sparkmice.mice(data, **{option: value})


def test_unsupported_type_names_column(data):
    # (a date is carried through or imputed: test_input_tables.py)
    data["when"] = [dt.timedelta(days=1)] * len(data)
    with pytest.raises(InputError, match=r"column 'when' has type duration.*exclude"):
        sparkmice.mice(data, m=1, maxit=1)
    data["when"] = [[1, 2]] * len(data)
    with pytest.raises(InputError, match=r"column 'when' has type list"):
        sparkmice.mice(data, m=1, maxit=1)


def test_excluded_unsupported_column_passes_through(data):
    data["when"] = [dt.date(2020, 1, 1)] * len(data)
    imp = sparkmice.mice(data, m=1, maxit=1, exclude=["when"])
    assert (imp.complete(1)["when"] == data["when"]).all()


def test_all_missing_column(data):
    data["empty"] = np.nan
    with pytest.raises(InputError, match=r"column 'empty' has no observed value; drop it"):
        sparkmice.mice(data, m=1, maxit=1)


def test_no_predictors_left(data):
    with pytest.raises(ConfigError, match=r"column 'y' has no predictors left.*'sample'"):
        sparkmice.mice(data, m=1, maxit=1, predictors={"y": []})


def test_too_many_levels(data):
    data["id"] = [f"p{i}" for i in range(len(data))]
    with pytest.raises(InputError, match=r"column 'id' has 60 or more levels.*max_levels=50"):
        sparkmice.mice(data, m=1, maxit=1, max_levels=50)


@pytest.mark.parametrize("name", ["_imputation", "_row_id"])
def test_reserved_column_names(data, name):
    data[name] = 1
    with pytest.raises(InputError, match=rf"input column '{name}' uses a name sparkmice reserves"):
        sparkmice.mice(data, m=1, maxit=1)


def test_method_must_fit_kind(data):
    with pytest.raises(ConfigError, match=r"method 'logreg' for column 'y' does not fit"):
        sparkmice.mice(data, m=1, maxit=1, method={"y": "logreg"})
    with pytest.raises(ConfigError, match=r"The 'method' option for column 'y' must be one of"):
        sparkmice.mice(data, m=1, maxit=1, method={"y": "forest"})


def test_output_exists_without_overwrite(data, tmp_path):
    out = tmp_path / "out"
    sparkmice.mice(data, m=1, maxit=1, output=str(out))
    with pytest.raises(sparkmice.OutputExistsError, match=r"already exists; pass overwrite=True"):
        sparkmice.mice(data, m=1, maxit=1, seed=2, output=str(out))
    sparkmice.mice(data, m=1, maxit=1, seed=2, output=str(out), overwrite=True)


def test_constant_and_collinear_predictors_are_logged_not_errors(data):
    data["const"] = 3.0
    data["x2"] = 2 * data["x"] + 1
    imp = sparkmice.mice(data, m=1, maxit=2)
    ev = imp.logged_events
    dropped = set(ev.loc[ev.variable == "y", "detail"])
    assert "const: constant" in dropped
    assert any(d.startswith(("x: collinear", "x2: collinear")) for d in dropped)


def test_repeated_column_names(data):
    """Two columns of one name (pandas allows it): one would be lost; refused naming it."""
    twice = pd.concat([data, data[["x"]]], axis=1)
    with pytest.raises(InputError, match=r"input column 'x' appears more than once"):
        sparkmice.mice(twice, m=1, maxit=1)


def test_no_rows(data):
    """No rows is said as such, not as a column of type null (pandas types an empty
    object column so)."""
    with pytest.raises(InputError, match=r"^the input has no rows"):
        sparkmice.mice(data.iloc[:0], m=1, maxit=1)
