"""The worked example of docs/architecture.md: a method added as one module and one
registry line (docs/examples/weighted_pmm.py) runs through the whole package."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import sparkmice
from sparkmice import config as config_module
from sparkmice.datasets import load_nhanes
from sparkmice.kernels import METHODS
from sparkmice.kernels.contract import BlockView
from sparkmice.kernels.norm import NormDraw

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "weighted_pmm.py"


def load_example():
    spec = importlib.util.spec_from_file_location("weighted_pmm", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def registered(monkeypatch):
    """The registry line `"weighted_pmm": weighted_pmm.METHOD` in kernels/__init__.py; the
    config's method rule, built from the registry when config is imported, follows it."""
    module = load_example()
    monkeypatch.setitem(METHODS, "weighted_pmm", module.METHOD)
    rule = config_module.RULES["method"]
    names = (*METHODS, "")
    monkeypatch.setitem(
        config_module.RULES,
        "method",
        dataclasses.replace(rule, accepts=lambda v, _: v in names, choices=names),
    )
    return module


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
