"""Hard data through the whole sampler: ordered categories (polr), separation guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sparkmice
from sparkmice.config import ConfigError

LEVELS = ["none", "mild", "moderate", "severe"]


@pytest.fixture(scope="module")
def ordered_data() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 3000
    x = rng.normal(size=n)
    y = np.digitize(1.2 * x + rng.logistic(size=n), [-1, 0.5, 2])
    sev = pd.Categorical(np.array(LEVELS)[y], categories=LEVELS, ordered=True)
    d = pd.DataFrame({"x": x, "sev": sev})
    d.loc[rng.random(n) < 0.3, "sev"] = None
    return d


def test_ordered_categorical_gets_polr_and_valid_levels(ordered_data):
    imp = sparkmice.mice(ordered_data, m=2, maxit=3, seed=1)
    assert imp.method["sev"] == "polr"
    assert imp.plan.variable("sev").levels == tuple(LEVELS)  # the categorical's order
    done = imp.complete("long")
    assert set(done["sev"].astype(str)) <= set(LEVELS)
    assert done["sev"].notna().all()


def test_declared_ordered_levels(ordered_data):
    d = ordered_data.assign(sev=ordered_data["sev"].astype(object))
    imp = sparkmice.mice(d, m=1, maxit=1, kind={"sev": "ordered"}, levels={"sev": LEVELS})
    assert imp.method["sev"] == "polr" and imp.plan.variable("sev").levels == tuple(LEVELS)
    with pytest.raises(ConfigError, match=r"levels for column 'sev' miss the observed"):
        sparkmice.mice(d, m=1, maxit=1, kind={"sev": "ordered"}, levels={"sev": LEVELS[:3]})


def separated(seed: int, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """b is always 1 where g == 'c' (perfect prediction of one level), else logistic in x;
    b is missing at random (30%). Returns the data and the true b."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.45, 0.45, 0.1])
    x = rng.normal(size=n)
    b = np.where(g == "c", 1.0, (rng.random(n) < 1 / (1 + np.exp(-x))).astype(float))
    d = pd.DataFrame({"x": x, "g": g, "b": b.copy()})
    d.loc[rng.random(n) < 0.3, "b"] = np.nan
    return d, b


@pytest.mark.parametrize("separation", ["augment", "ridge", "firth"])
def test_separation_guards_keep_imputations_sensible(separation):
    """Rows with g == 'c' must be imputed 1: the guard keeps the coefficient finite but
    large. Among the other missing rows the imputed share of 1s must match the true share
    within 4 binomial SEs (it is a draw from a correct model)."""
    d, truth = separated(7)
    imp = sparkmice.mice(d, m=3, maxit=3, seed=3, separation={"b": separation})
    miss = d["b"].isna().to_numpy()
    c_rows = miss & (d["g"] == "c").to_numpy()
    other = miss & ~c_rows
    for k in range(1, 4):
        done = imp.complete(k)["b"].to_numpy()
        assert np.isin(done, [0.0, 1.0]).all()
        assert done[c_rows].mean() >= 0.9
        se = np.sqrt(0.25 / other.sum())
        assert abs(done[other].mean() - truth[other].mean()) < 4 * se


def test_separation_option_only_for_logreg(ordered_data):
    with pytest.raises(ConfigError, match=r"separation is set for column 'x'"):
        sparkmice.mice(ordered_data, m=1, maxit=1, separation={"x": "firth"})
    with pytest.raises(ConfigError, match=r"separation for column 'sev' must be one of"):
        sparkmice.mice(ordered_data, m=1, maxit=1, separation={"sev": "lasso"})
