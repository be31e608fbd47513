"""The sampler on its own (sparkmice/sampler.py), in-process, small and fast.

- One call into the method contract: the method as asked gives exactly the kernel's own
  draw; the options each method declares reach it, and only those.
- Numerical fallbacks (the module docstring's order): a non-positive-definite Gram matrix,
  non-finite sums, fewer than 2 observed values — per kernel — end in the intercept-only
  model or `sample`, with one logged event and valid imputations, never an exception.
- A chain: observed cells unchanged, pmm imputes observed values, categorical imputations
  are levels, the same seed gives the same imputations and another seed others.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from small_plans import plan_of

from sparkmice.config import MiceConfig
from sparkmice.engines.inprocess import LocalBlocks
from sparkmice.kernels import METHODS, norm
from sparkmice.kernels.contract import OPTIONS, BlockView, ObservedPool, StepData
from sparkmice.kernels.glm import GlmSums
from sparkmice.kernels.linalg import Moments
from sparkmice.kernels.newton import NewtonSums
from sparkmice.sampler import (
    Chain,
    Drawn,
    all_finite,
    draw_parameters,
    method_options,
    rng_for,
)

FALLBACK = "numerical fallback"


# -- draw_parameters on hand-made step data -------------------------------------------------
def step_data(x: np.ndarray, y: np.ndarray, n_levels: int = 0) -> StepData:
    """StepData of rows (x without intercept, y) held in one block."""
    xx = np.column_stack([np.ones(len(y)), x])
    return StepData(
        moments=Moments.of(np.column_stack([x, y])),
        x_all=Moments.of(x),
        x_min=x.min(0) if len(x) else np.zeros(x.shape[1]),
        x_max=x.max(0) if len(x) else np.zeros(x.shape[1]),
        n_levels=n_levels,
        sum_over_blocks=lambda f: f(xx, y),
        warm_start=None,
        pool=ObservedPool(y.copy(), np.ones(len(y))),
    )


def rows(kind: str, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """x (n × 2) and y of a variable of `kind`, with its number of categories."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    eta = x @ [1.0, -0.5]
    if kind == "continuous":
        return x, eta + rng.normal(size=n), 0
    if kind == "binary":
        return x, (eta + rng.logistic(size=n) > 0).astype(float), 2
    return x, np.digitize(eta + rng.logistic(size=n), [-1.0, 1.0]).astype(float), 3


def kind_of(name: str) -> str:
    return {"logreg": "binary", "polyreg": "nominal", "polr": "ordered"}.get(name, "continuous")


def fresh(seed: int = 3):
    return lambda: np.random.default_rng(seed)


def test_method_as_asked_is_the_kernels_own_draw_bitwise():
    x, y, _ = rows("continuous")
    drawn = draw_parameters(
        METHODS["norm"], [0, 1], lambda kept: step_data(x[:, kept], y), fresh(), {}
    )
    want = norm.parameters(step_data(x[:, [0, 1]], y), np.random.default_rng(3))
    assert drawn.fallback is None and drawn.keep == [0, 1] and drawn.method.name == "norm"
    np.testing.assert_array_equal(drawn.params.beta, want.beta)
    assert drawn.params.sigma == want.sigma


def non_pd(step: StepData) -> StepData:
    """The step with its predictors' cross-products made indefinite (correlation 2)."""
    c = step.moments.cross.copy()
    c[0, 1] = c[1, 0] = 2.0 * np.sqrt(c[0, 0] * c[1, 1])
    return dataclasses.replace(step, moments=Moments(step.moments.n, step.moments.mean, c))


def nan_sums(step: StepData) -> StepData:
    """The step with every summed likelihood quantity NaN (as an overflowed sum gives)."""

    def poisoned(f):
        s = step.sum_over_blocks(f)
        if isinstance(s, GlmSums):
            return s._replace(xtwx=s.xtwx * np.nan, score=s.score * np.nan)
        if isinstance(s, NewtonSums):
            return NewtonSums(s.info * np.nan, s.score * np.nan, np.nan)
        return s * np.nan

    return dataclasses.replace(step, sum_over_blocks=poisoned)


@pytest.mark.parametrize(
    ("name", "corrupt"),
    [
        ("norm", non_pd),
        ("pmm", non_pd),
        ("logreg", nan_sums),
        ("polyreg", nan_sums),
        ("polr", nan_sums),
    ],
)
def test_a_failing_fit_falls_back_to_the_intercept_only(name, corrupt):
    # the corruption hits the design with predictors only: the intercept-only fit works
    x, y, k = rows(kind_of(name))

    def step_for(kept: list[int]) -> StepData:
        step = step_data(x[:, kept], y, k)
        return corrupt(step) if kept else step

    drawn = draw_parameters(METHODS[name], [0, 1], step_for, fresh(), {})
    assert drawn.fallback == "the intercept-only model" and drawn.keep == []
    assert drawn.method is METHODS[name]
    assert drawn.reason in ("singular or non-positive-definite system", "non-finite parameters")
    assert all_finite(drawn.params)


@pytest.mark.parametrize("name", ["norm", "pmm", "logreg", "polyreg", "polr"])
def test_an_exactly_duplicated_predictor_still_gives_a_valid_step(name):
    """A design whose Gram matrix is exactly singular (a column twice, as the collinearity
    checks would have dropped): finite parameters, and imputations that are observed
    values (pmm) or levels."""
    x, y, k = rows(kind_of(name))
    x = np.column_stack([x[:, 0], x[:, 0], x[:, 1]])
    drawn = draw_parameters(
        METHODS[name], [0, 1, 2], lambda kept: step_data(x[:, kept], y, k), fresh(), {}
    )
    assert all_finite(drawn.params)
    xx = np.column_stack([np.ones(len(y)), x[:, drawn.keep]])
    view = BlockView(xx[:150], y[:150], xx[150:])
    imputed = drawn.method.impute(view, drawn.params, np.random.default_rng(4))
    assert imputed.shape == (50,) and np.all(np.isfinite(imputed))
    if name == "pmm":
        assert np.isin(imputed, y[:150]).all()
    elif k:
        assert np.isin(imputed, np.arange(k)).all()


@pytest.mark.parametrize("name", ["norm", "pmm", "logreg", "polyreg", "polr"])
def test_a_fit_failing_even_on_the_intercept_falls_back_to_sample(name):
    x, y, k = rows(kind_of(name))
    corrupt = non_pd if name in ("norm", "pmm") else nan_sums

    def step_for(kept: list[int]) -> StepData:
        step = step_data(x[:, kept], y, k)
        if kept:
            return corrupt(step)
        if name in ("norm", "pmm"):  # y's cross-product NaN: no intercept-only fit either
            m = step.moments
            return dataclasses.replace(step, moments=Moments(m.n, m.mean, m.cross * np.nan))
        return nan_sums(step)

    drawn = draw_parameters(METHODS[name], [0, 1], step_for, fresh(), {})
    assert drawn.fallback == "sample" and drawn.method is METHODS["sample"]
    assert drawn.params.values.tolist() == y.tolist()  # sample's pool: the observed values


@pytest.mark.parametrize("name", ["norm", "pmm", "logreg", "polyreg", "polr"])
def test_fewer_than_two_observed_values_go_to_sample(name):
    x, y, k = rows(kind_of(name), n=1)
    drawn = draw_parameters(
        METHODS[name], [0, 1], lambda kept: step_data(x[:, kept], y, k), fresh(), {}
    )
    assert (drawn.method.name, drawn.fallback) == ("sample", "sample")
    assert drawn.reason == "fewer than 2 observed values"


def test_methods_without_predictors_are_fitted_on_one_value():
    x, y, _ = rows("continuous", n=1)
    drawn = draw_parameters(METHODS["mean"], [], lambda kept: step_data(x[:, kept], y), fresh(), {})
    assert drawn == Drawn(METHODS["mean"], [], float(y[0]))


def test_each_attempt_starts_the_same_parameter_stream():
    """The intercept-only attempt draws from a fresh copy of the step's stream: the same
    parameters as a direct intercept-only fit with that stream."""
    x, y, _ = rows("continuous")

    def step_for(kept):
        return non_pd(step_data(x[:, kept], y)) if kept else step_data(x[:, kept], y)

    drawn = draw_parameters(METHODS["norm"], [0, 1], step_for, fresh(9), {})
    want = norm.parameters(step_data(x[:, []], y), np.random.default_rng(9))
    np.testing.assert_array_equal(drawn.params.beta, want.beta)


def test_options_reach_only_the_methods_that_declare_them():
    config = MiceConfig(separation={"b": "firth"}, donors=3, ntree=4)
    trees = {"minbucket": 5, "cp": 1e-4, "ntree": 4}
    assert method_options(config, "b") == {"separation": "firth", "donors": 3, **trees}
    assert method_options(config, "x") == {"donors": 3, **trees}  # unset: the kernel's default
    declared = {o for m in METHODS.values() for o in m.fit_options + m.impute_options}
    assert declared == set(OPTIONS) == set(method_options(config, "b"))
    # norm takes no option: passing separation to it would raise TypeError
    x, y, _ = rows("continuous")
    drawn = draw_parameters(
        METHODS["norm"], [0], lambda kept: step_data(x[:, kept], y), fresh(), {"separation": "x"}
    )
    assert drawn.fallback is None


def test_a_bad_separation_is_not_taken_for_a_numerical_failure():
    x, y, k = rows("binary")
    with pytest.raises(ValueError, match="'separation' option"):
        draw_parameters(
            METHODS["logreg"],
            [0, 1],
            lambda kept: step_data(x[:, kept], y, k),
            fresh(),
            {"separation": "lasso"},
        )


def test_all_finite_looks_into_dataclasses_arrays_and_numbers():
    good = norm.NormDraw(np.zeros(2), np.ones(2), 1.0)
    assert all_finite(good) and all_finite(0.5) and all_finite(ObservedPool(np.ones(2), np.ones(2)))
    assert not all_finite(dataclasses.replace(good, sigma=float("nan")))
    assert not all_finite(dataclasses.replace(good, beta=np.array([0.0, np.inf])))
    assert not all_finite(float("inf"))


def test_random_streams_differ_by_every_key():
    base = rng_for(1, 1, 1, 0, 0, 0).random()
    assert rng_for(1, 1, 1, 0, 0, 0).random() == base
    for key in [(2, 1, 1, 0, 0, 0), (1, 2, 1, 0, 0, 0), (1, 1, 2, 0, 0, 0), (1, 1, 1, 1, 0, 0),
                (1, 1, 1, 0, 1, 0), (1, 1, 1, 0, 0, 1)]:  # fmt: skip
        assert rng_for(*key).random() != base


# -- whole chains on a small table -----------------------------------------------------------
def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": np.round(x, 2),
            "z": np.round(x + rng.normal(size=n), 2),
            "b": np.where(x + rng.logistic(size=n) > 0, "yes", "no"),
            "c": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
            "o": pd.Categorical(
                np.array(["lo", "mid", "hi"])[np.digitize(x, [-0.5, 0.5])],
                categories=["lo", "mid", "hi"],
                ordered=True,
            ),
        }
    )
    for col in df:
        df.loc[rng.random(n) < 0.25, col] = None
    return df


def run(df: pd.DataFrame, maxit: int = 2, seed: int = 1, **options):
    """Chain 1 of a run on `df`: its plan, completed values (codes) and logged events."""
    plan, blocks = plan_of(df, m=1, maxit=maxit, seed=seed, **options)
    observed = [b.values.copy() for b in blocks]
    chain = Chain(plan, 1)
    chain.run(LocalBlocks(blocks), range(1, maxit + 1))
    for b, before in zip(blocks, observed, strict=True):
        np.testing.assert_array_equal(b.values[~b.missing], before[~b.missing])
        assert not np.isnan(b.values[:, [plan.index[n] for n in plan.visit_sequence]]).any()
    values = np.vstack([b.values for b in blocks])
    missing = np.vstack([b.missing for b in blocks])
    return plan, values, missing, chain.events


def assert_valid(plan, values, missing):
    """Categorical imputations are level codes; pmm imputations are observed values."""
    for name in plan.visit_sequence:
        v = plan.variable(name)
        imputed, seen = values[missing[:, v.index], v.index], values[~missing[:, v.index], v.index]
        if v.kind == "continuous" and plan.method[name] == "pmm":
            assert np.isin(imputed, seen).all(), name
        elif v.kind != "continuous":
            assert np.isin(imputed, np.arange(v.n_levels)).all(), name


def test_a_chain_keeps_observed_cells_and_imputes_valid_values():
    plan, values, missing, events = run(frame())
    assert plan.method == {"x": "pmm", "z": "pmm", "b": "logreg", "c": "polyreg", "o": "polr"}
    assert_valid(plan, values, missing)
    assert not [e for e in events if e["event"] == FALLBACK]


def test_a_chain_is_reproducible_by_seed():
    _, a, missing, _ = run(frame(), seed=4)
    _, b, _, _ = run(frame(), seed=4)
    _, c, _, _ = run(frame(), seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[missing], c[missing])


@pytest.mark.parametrize("method", ["pmm", "norm"])
def test_a_variable_with_one_observed_value_is_imputed_by_sample(method):
    df = frame()
    df.loc[df.index[df.x.notna()][1:], "x"] = None  # one observed x left
    plan, values, missing, events = run(df, method={"x": method})
    falls = [e for e in events if e["event"] == FALLBACK]
    assert [(e["variable"], e["iteration"]) for e in falls] == [("x", 1), ("x", 2)]
    assert falls[0]["detail"] == f"{method}: fewer than 2 observed values; imputed by sample"
    j = plan.index["x"]
    assert np.all(values[missing[:, j], j] == values[~missing[:, j], j][0])
    assert_valid(plan, values, missing)


def forced(name: str, corrupt, intercept_too: bool = False):
    """METHODS[name] whose fits see a corrupted Gram matrix or sums (with predictors; with
    `intercept_too`, always)."""
    method = METHODS[name]

    def parameters(step: StepData, rng, **options):
        if intercept_too or len(step.moments.mean) > 1:
            step = corrupt(step)
        return method.parameters(step, rng, **options)

    return dataclasses.replace(method, parameters=parameters)


def nan_moments(step: StepData) -> StepData:
    m = step.moments
    return dataclasses.replace(step, moments=Moments(m.n, m.mean, m.cross * np.nan))


@pytest.mark.parametrize(
    ("variable", "name", "corrupt"),
    [
        ("x", "pmm", non_pd),
        ("x", "norm", non_pd),
        ("b", "logreg", nan_sums),
        ("c", "polyreg", nan_sums),
        ("o", "polr", nan_sums),
    ],
)
@pytest.mark.parametrize("intercept_too", [False, True])
def test_each_kernel_on_a_broken_system_completes_with_the_fallback(
    monkeypatch, variable, name, corrupt, intercept_too
):
    if intercept_too and corrupt is non_pd:
        corrupt = nan_moments  # non_pd needs two predictors; NaN breaks the intercept too
    monkeypatch.setitem(METHODS, name, forced(name, corrupt, intercept_too))
    others = {"z": "norm" if name == "pmm" else "pmm"}  # z would take a broken pmm too
    plan, values, missing, events = run(frame(), method={variable: name, **others})
    falls = [e for e in events if e["event"] == FALLBACK]
    assert {(e["variable"], e["iteration"]) for e in falls} == {(variable, 1), (variable, 2)}
    taken = "sample" if intercept_too else "the intercept-only model"
    assert all(e["detail"].startswith(f"{name}: ") for e in falls)
    assert all(e["detail"].endswith(f"; imputed by {taken}") for e in falls)
    assert all(set(e) == {"chain", "iteration", "variable", "event", "detail"} for e in falls)
    assert_valid(plan, values, missing)
    if intercept_too:  # sample imputes observed values (level codes for categories)
        j = plan.index[variable]
        assert np.isin(values[missing[:, j], j], values[~missing[:, j], j]).all()
