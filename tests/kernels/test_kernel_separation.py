"""sparkmice.kernels.logreg separation options: augment (R mice), ridge, firth.

Data: a binary predictor x2 that determines y (y = x2, perfect separation), a noise
predictor x1, 30% of y missing. Checks and tolerances:
- every option gives finite estimates of moderate size (|beta| < 25: fitted probabilities
  not numerically 0/1) and finite draws; over 200 draws the imputations are 0/1 and follow
  x2 on average (>= 95% for each option); the
  unpenalised IRLS fit runs away instead: its slope grows with the number of steps and
  its variance exceeds 1e8.
- Firth equals a dense reference written here on the raw rows (hat diagonal from a QR of
  W^1/2 X, the modified score iterated to a step of 1e-13) to 1e-6: both are solutions of
  U*(beta) = 0, the kernel's run with xtol = 1e-10 SEs, so the gap is rounding and the
  stop rule (~1e-9); and the reference's score is the numerical gradient of the penalised
  log-likelihood l + log det(X'WX)/2 (central differences, 1e-6), which checks the formula
  itself, not only its transcription. At the default tolerance the kernel is within 1e-4
  SEs of the reference.
- Firth's cost: one extra pass per IRLS step (counted).
- ridge is the exact posterior mode under its N(0, 2.5^2) prior on standardised slopes
  (scipy's optimiser on the penalised log-likelihood, to 1e-6 SEs), its pull on a slope
  the data identify is small (< 0.25 SEs here, n = 1400 observed rows) and is unit-free:
  scaling a predictor by 1000 scales its coefficient by 1/1000 (to 1e-6 relative).
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import pytest

from sparkmice.kernels import logreg
from sparkmice.kernels.contract import BlockView, ObservedPool, StepData
from sparkmice.kernels.linalg import Moments
from sparkmice.kernels.newton import Fit, newton


def separated(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design [1, x1, x2] with y = x2, and a 30% missing mask."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), (rng.random(n) < 0.4).astype(float)
    return np.column_stack([np.ones(n), x1, x2]), x2.copy(), rng.random(n) < 0.3


def overlapping(n: int = 2000, seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design [1, x1, x2] with y from a logistic model (the MLE exists)."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.random(n) < 0.4])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ [-0.5, 1.0, 0.8])))).astype(float)
    return x, y, rng.random(n) < 0.3


def step_data(
    x: np.ndarray, y: np.ndarray, missing: np.ndarray, counter=None, warm=None
) -> StepData:
    """StepData over 3 row blocks (x with intercept); `counter` counts passes."""
    xo, yo = x[~missing], y[~missing]
    blocks = list(zip(np.array_split(xo, 3), np.array_split(yo, 3), strict=True))

    def sum_over_blocks(f):
        if counter is not None:
            counter.append(1)
        return functools.reduce(operator.add, (f(a, b) for a, b in blocks))

    return StepData(
        moments=Moments.of(np.column_stack([xo[:, 1:], yo])),
        x_all=Moments.of(x[:, 1:]),
        x_min=x[:, 1:].min(0),
        x_max=x[:, 1:].max(0),
        n_levels=2,
        sum_over_blocks=sum_over_blocks,
        warm_start=warm,
        pool=ObservedPool(yo, np.ones(len(yo))),
    )


def unpenalised(x: np.ndarray, y: np.ndarray, max_iter: int) -> Fit:
    def sums_at(beta):
        s = logreg.block_sums(x, y, beta)
        return s.xtwx, s.score, s.deviance

    return newton(sums_at, np.zeros(x.shape[1]), max_iter=max_iter)


def dense_firth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference Firth estimate on the raw rows: hat diagonal from the QR of W^1/2 X."""
    beta = np.zeros(x.shape[1])
    for _ in range(2000):
        pi = 1 / (1 + np.exp(-(x @ beta)))
        w = pi * (1 - pi)
        q, r = np.linalg.qr(np.sqrt(w)[:, None] * x)
        h = np.sum(q * q, axis=1)
        step = np.linalg.solve(r.T @ r, x.T @ (y - pi + h * (0.5 - pi)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-13:
            return beta
    raise AssertionError("reference Firth did not converge")


def penalised_loglik(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    eta = x @ beta
    pi = 1 / (1 + np.exp(-eta))
    loglik = np.sum(y * eta - np.logaddexp(0, eta))
    return loglik + 0.5 * np.linalg.slogdet((x * (pi * (1 - pi))[:, None]).T @ x)[1]


@pytest.mark.parametrize(
    ("separation", "agreement"), [("augment", 0.95), ("ridge", 0.95), ("firth", 0.95)]
)
def test_each_option_survives_perfect_separation(separation, agreement):
    # 200 proper draws: all finite, imputations 0/1. How often they follow x2 (the truth:
    # P(y = 1 | x2) = x2) depends on the option: the draws come from N(estimate, V), and
    # under complete separation the rows carry almost no information (W ~ 0), so V is set
    # by the penalty. Augmentation and Firth's Jeffreys prior carry about one row's worth
    # per coefficient, the ridge's N(0, 2.5^2) prior on standardised slopes about as much:
    # ~98% agreement on average. Bounds sit >= 4 Monte-Carlo SEs below those means.
    # Warm-started from the first fit, as the sampler does across sweeps.
    x, y, missing = separated()
    rng = np.random.default_rng(3)
    first = logreg.parameters(step_data(x, y, missing), rng, separation=separation)
    step = step_data(x, y, missing, warm=first.coef)
    shares = []
    for _ in range(200):
        d = logreg.parameters(step, rng, separation=separation)
        assert np.all(np.isfinite(d.coef)) and np.all(np.isfinite(d.beta))
        assert np.max(np.abs(d.coef)) < 25
        codes = logreg.impute(BlockView.of(x, y, missing), d, rng)
        assert set(np.unique(codes)) <= {0.0, 1.0}
        shares.append(np.mean(codes == x[missing, 2]))
    assert np.mean(shares) >= agreement, (np.mean(shares), np.std(shares) / np.sqrt(200))


def test_unpenalised_fit_runs_away():
    x, y, missing = separated()
    xo, yo = x[~missing], y[~missing]
    slopes = [unpenalised(xo, yo, k).coef[2] for k in (5, 10, 20)]
    assert slopes[0] < slopes[1] < slopes[2] and slopes[2] > 40  # no finite MLE
    assert unpenalised(xo, yo, 50).v[2, 2] > 1e8
    penalised = [
        logreg.parameters(step_data(x, y, missing), np.random.default_rng(3), separation=s).coef[2]
        for s in logreg.SEPARATIONS
    ]
    assert max(penalised) < 20 < slopes[2]


def test_augment_is_the_default():
    x, y, missing = separated()
    a = logreg.parameters(step_data(x, y, missing), np.random.default_rng(5))
    b = logreg.parameters(step_data(x, y, missing), np.random.default_rng(5), separation="augment")
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.beta, b.beta)


@pytest.mark.parametrize("data", [separated, overlapping])
def test_firth_equals_dense_reference(data):
    x, y, missing = data()
    xo, yo = x[~missing], y[~missing]
    ref = dense_firth(xo, yo)
    h = 1e-5
    grad = [
        (penalised_loglik(xo, yo, ref + h * e) - penalised_loglik(xo, yo, ref - h * e)) / (2 * h)
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)

    step = step_data(x, y, missing)

    def observed(beta):
        return step.sum_over_blocks(lambda a, b: logreg.block_sums(a, b, beta))

    def correction(beta, v):
        return step.sum_over_blocks(lambda a, b: logreg.firth_block_sums(a, b, beta, v))

    tight = logreg.fit_firth(observed, correction, np.zeros(3), max_iter=200, xtol=1e-10)
    np.testing.assert_allclose(tight.coef, ref, atol=1e-6)
    default = logreg.fit_firth(observed, correction, np.zeros(3))
    assert np.all(np.abs(default.coef - ref) < 1e-4 * np.sqrt(np.diag(default.v)))


def test_firth_costs_one_extra_pass_per_step():
    x, y, missing = overlapping()
    passes: list[int] = []
    step = step_data(x, y, missing, counter=passes)
    corrections: list[int] = []

    def correction(beta, v):
        corrections.append(1)
        return step.sum_over_blocks(lambda a, b: logreg.firth_block_sums(a, b, beta, v))

    f = logreg.fit_firth(functools.partial(_observed, step), correction, np.zeros(3))
    # a pass for X'WX at the start; per step the hat-correction pass and a pass for X'WX
    # at the new point (no halving here); the last step only finds itself below tolerance
    assert len(corrections) == f.iterations
    assert len(passes) == 2 * f.iterations
    # the plain IRLS fit on the same rows takes one pass per step
    plain: list[int] = []
    g = logreg.fit(
        functools.partial(_observed, step_data(x, y, missing, counter=plain)),
        *(np.zeros((0, 3)), np.zeros(0), np.zeros(0)),
        np.zeros(3),
    )
    assert len(plain) == g.iterations + 1


def _observed(step: StepData, beta: np.ndarray):
    return step.sum_over_blocks(lambda a, b: logreg.block_sums(a, b, beta))


def test_ridge_is_the_posterior_mode_and_mild_where_the_mle_exists():
    from scipy.optimize import minimize

    x, y, missing = overlapping()
    xo, yo = x[~missing], y[~missing]
    mle = unpenalised(xo, yo, 50)
    step = step_data(x, y, missing)
    penalty = logreg.ridge_penalty(step)
    ridge = logreg.fit_ridge(functools.partial(_observed, step), penalty, np.zeros(3))

    def objective(beta):
        eta = xo @ beta
        return -np.sum(yo * eta - np.logaddexp(0, eta)) + 0.5 * beta @ penalty @ beta

    mode = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    se = np.sqrt(np.diag(mle.v))
    assert np.all(np.abs(ridge.coef - mode) < 1e-6 * se)
    assert np.all(np.abs(ridge.coef - mle.coef) < 0.25 * se)


def test_ridge_is_unit_free():
    x, y, missing = separated()
    d = logreg.parameters(step_data(x, y, missing), np.random.default_rng(6), separation="ridge")
    scaled = x * [1.0, 1000.0, 1.0]
    e = logreg.parameters(
        step_data(scaled, y, missing), np.random.default_rng(6), separation="ridge"
    )
    np.testing.assert_allclose(e.coef, d.coef / [1.0, 1000.0, 1.0], rtol=1e-6, atol=1e-9)


def test_unknown_separation_names_the_options():
    x, y, missing = separated()
    with pytest.raises(
        ValueError, match=r"'separation' option must be one of .*'firth'.*got 'lasso'"
    ):
        logreg.parameters(step_data(x, y, missing), np.random.default_rng(1), separation="lasso")
