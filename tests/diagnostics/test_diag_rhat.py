"""R-hat: against ArviZ and the paper's formulas worked by hand; mixing and stuck chains;
the verdict's false-alarm rate on stationary chains and its power on drifting ones."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from sparkmice.diagnostics.rhat import (
    FALSE_ALARM,
    basic_rhat,
    convergence,
    convergence_message,
    critical_rhat,
    min_iterations,
    rank_normalize,
    rhat,
    rhat_table,
    split_chains,
)


def _hand_rhat(draws: list[list[float]]) -> float:
    """Vehtari et al. (2021) section 4.2 written out with loops, independent of the module."""

    def split(chains):
        n = len(chains[0])
        half = n // 2
        return [c[:half] for c in chains] + [c[n - half :] for c in chains]

    def z(chains):
        flat = [v for c in chains for v in c]
        s = len(flat)
        out = []
        for c in chains:
            row = []
            for v in c:
                below = sum(1 for u in flat if u < v)
                equal = sum(1 for u in flat if u == v)
                rank = below + (equal + 1) / 2
                row.append(NormalDist().inv_cdf((rank - 3 / 8) / (s + 1 / 4)))
            out.append(row)
        return out

    def gelman_rubin(chains):
        m, n = len(chains), len(chains[0])
        means = [sum(c) / n for c in chains]
        grand = sum(means) / m
        b = n / (m - 1) * sum((x - grand) ** 2 for x in means)
        w = (
            sum(
                sum((v - mu) ** 2 for v in c) / (n - 1) for c, mu in zip(chains, means, strict=True)
            )
            / m
        )
        return math.sqrt(((n - 1) / n * w + b / n) / w)

    flat = sorted(v for c in draws for v in c)
    k = len(flat)
    median = (flat[(k - 1) // 2] + flat[k // 2]) / 2
    folded = [[abs(v - median) for v in c] for c in draws]
    return max(gelman_rubin(z(split(draws))), gelman_rubin(z(split(folded))))


def test_basic_rhat_worked_example():
    # means 2.5, 3.5; W = 5/3; B = 4 * 0.5 = 2; var+ = 3/4 * 5/3 + 2/4 = 1.75
    draws = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]])
    assert basic_rhat(draws) == pytest.approx(math.sqrt(1.75 / (5 / 3)), abs=1e-15)


def test_split_chains_drops_the_middle_draw_of_odd_chains():
    draws = np.arange(10.0).reshape(2, 5)
    np.testing.assert_array_equal(split_chains(draws), [[0, 1], [5, 6], [3, 4], [8, 9]])


def test_rank_normalize_uses_blom_offsets_and_average_ranks():
    z = rank_normalize(np.array([[3.0, 1.0], [1.0, 7.0]]))
    ranks = np.array([[3.0, 1.5], [1.5, 4.0]])
    expected = [[NormalDist().inv_cdf((r - 0.375) / 4.25) for r in row] for row in ranks]
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "draws",
    [
        [[0.3, 1.2, -0.4, 2.2, 0.9], [1.1, 0.2, 0.8, -1.3, 0.0], [2.5, 1.9, 3.1, 2.2, 2.8]],
        [[1, 2, 2, 3, 1, 2], [2, 2, 3, 3, 3, 1]],
        [[5.0, 4.0, 6.0, 5.5], [1.0, 0.5, 1.5, 0.7], [3.0, 2.0, 2.5, 3.5]],
    ],
)
def test_rhat_equals_hand_worked_formulas(draws):
    assert rhat(np.array(draws, dtype=float)) == pytest.approx(_hand_rhat(draws), abs=1e-10)


@pytest.mark.parametrize("shape", [(4, 100), (5, 10), (3, 6), (2, 8)])
@pytest.mark.parametrize("discrete", [False, True])
def test_rhat_equals_arviz(shape, discrete):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arviz = pytest.importorskip("arviz")
    rng = np.random.default_rng(sum(shape) + discrete)
    draws = rng.integers(0, 4, shape).astype(float) if discrete else rng.normal(size=shape)
    draws[0] += 0.7
    assert rhat(draws) == pytest.approx(float(arviz.rhat(draws, method="rank")), abs=1e-10)


def test_rhat_near_one_for_one_distribution():
    draws = np.random.default_rng(7).normal(size=(5, 2000))
    assert abs(rhat(draws) - 1) < 0.01


def test_rhat_large_for_stuck_chains():
    rng = np.random.default_rng(8)
    draws = rng.normal(size=(4, 50)) + 5 * np.arange(4)[:, None]
    assert rhat(draws) > 2
    assert rhat(np.repeat([[1.0], [2.0], [3.0]], 6, axis=1)) == math.inf


@pytest.mark.parametrize(
    "draws", [np.ones((3, 10)), np.zeros((1, 10)), np.zeros((3, 3)), np.full((2, 6), np.nan)]
)
def test_rhat_undefined_is_nan(draws):
    assert math.isnan(rhat(draws))


def _trace(stuck: str | None, chains: int = 4, iterations: int = 20, seed: int = 3):
    rng = np.random.default_rng(seed)
    rows = [
        {
            "chain": c,
            "iteration": t,
            "variable": v,
            "mean": rng.normal() + (4.0 * c if v == stuck else 0.0),
            "sd": 1 + 0.1 * rng.normal(),
        }
        for c in range(1, chains + 1)
        for t in range(1, iterations + 1)
        for v in ("bmi", "hyp")
    ]
    return pd.DataFrame(rows)


LONG = 2 * min_iterations(4)  # maxit at which 4 chains are judged


def test_rhat_table_flags_the_stuck_variable():
    table = rhat_table(_trace(stuck="bmi", iterations=LONG))
    assert list(table["variable"]) == ["bmi", "hyp"]
    assert table["converged"].tolist() == [False, True]
    assert table.loc[0, "rhat_mean"] > 1.1
    assert table["iterations"].tolist() == [f"{LONG // 2 + 1}-{LONG}"] * 2
    assert table.loc[0, "message"].startswith("not converged: R-hat of the mean")
    message = convergence_message(table)
    assert message.startswith("Not converged (R-hat > 1.1): bmi.")
    assert f"--resume --maxit {2 * LONG}" in message


def test_rhat_table_all_converged_and_undefined():
    message = convergence_message(rhat_table(_trace(None, iterations=LONG)))
    assert message == f"All 2 imputed variables converged (R-hat ≤ 1.1 over iterations 25-{LONG})."
    constant = _trace(None, iterations=LONG).assign(mean=1.0, sd=0.0)
    table = rhat_table(constant)
    assert table["converged"].isna().all()
    assert table.loc[0, "message"] == "R-hat undefined: the trace is constant (nothing varies " \
        "between iterations or chains)"
    assert "R-hat undefined for: bmi, hyp" in convergence_message(table)


@pytest.mark.parametrize("iterations", [3, 5, 10, LONG - 1])
@pytest.mark.parametrize("stuck", [None, "bmi"])
def test_short_runs_are_not_judged(iterations, stuck):
    """R mice's default maxit = 5 (and the old demo's 10): neither "converged" nor
    "not converged", but the maxit that can tell."""
    table = rhat_table(_trace(stuck, iterations=iterations))
    assert table["converged"].isna().all()
    assert table["min_maxit"].tolist() == [LONG, LONG]
    assert table.loc[0, "message"].startswith("too few iterations to judge")
    message = convergence_message(table)
    assert message.startswith("Too few iterations to judge convergence of bmi, hyp:")
    assert f"needs maxit >= {LONG}" in message and f"--resume --maxit {LONG}" in message
    assert "Not converged" not in message


def test_min_iterations_falls_with_the_number_of_chains():
    assert [min_iterations(m) for m in (2, 3, 5, 10, 20, 100)] == [42, 30, 22, 14, 10, 6]
    assert min_iterations(5, threshold=1.05) > min_iterations(5)
    with pytest.raises(ValueError, match="threshold must be above 1"):
        min_iterations(5, threshold=1.0)
    with pytest.raises(ValueError, match="false-alarm probability must be in"):
        min_iterations(5, false_alarm=0.0)


def _false_alarms(chains: int, iterations: int, reps: int, seed: int) -> float:
    """Share of stationary variables (independent normal draws for the mean and the SD
    trace) whose R-hat over ``iterations`` per chain exceeds 1.1."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(size=(reps, 2, chains, iterations))
    return float(np.mean([max(rhat(d[0]), rhat(d[1])) > 1.1 for d in draws]))


@pytest.mark.parametrize("chains", [3, 5, 10])
def test_false_alarm_at_the_minimum_length_is_at_most_one_percent(chains):
    """At min_iterations the simulated false-alarm rate is within Monte-Carlo error of
    FALSE_ALARM or below: with 2,000 variables its SE at 1% is sqrt(.01 * .99 / 2000) =
    0.22 points, so a true rate of 1% passes the bound 1% + 3 SE with probability 99.9%.
    Six iterations shorter the rate is clearly above 1%: the minimum is needed."""
    needed = min_iterations(chains)
    se = math.sqrt(FALSE_ALARM * (1 - FALSE_ALARM) / 2000)
    assert _false_alarms(chains, needed, 2000, seed=chains) < FALSE_ALARM + 3 * se
    assert _false_alarms(chains, needed - 6, 2000, seed=chains + 1) > FALSE_ALARM + 3 * se


def test_critical_rhat_is_the_f_quantile():
    # 5 chains of 22 -> 10 split chains of n = 11; F(9, 100) at 1 - 0.01 / 4
    from scipy.stats import f

    expected = math.sqrt(10 / 11 + f.ppf(0.9975, 9, 100) / 11)
    assert critical_rhat(5, 22) == pytest.approx(expected, rel=1e-12)
    assert critical_rhat(5, 22) <= 1.1 < critical_rhat(5, 20)


def _stationary_trace(chains: int, iterations: int, rng, phi: float = 0.0) -> pd.DataFrame:
    """An AR(1) trace with lag-one autocorrelation ``phi``, started in its stationary law."""
    values = np.empty((2, chains, iterations))
    values[..., 0] = rng.normal(size=(2, chains))
    for t in range(1, iterations):
        values[..., t] = phi * values[..., t - 1] + math.sqrt(1 - phi**2) * rng.normal(
            size=(2, chains)
        )
    chain, iteration = np.meshgrid(np.arange(1, chains + 1), np.arange(1, iterations + 1),
                                   indexing="ij")  # fmt: skip
    return pd.DataFrame({
        "chain": chain.ravel(), "iteration": iteration.ravel(), "variable": "x",
        "mean": values[0].ravel(), "sd": 1 + 0.1 * values[1].ravel(),
    })  # fmt: skip


def test_silent_on_stationary_chains():
    """200 stationary runs (m = 5, maxit = 44): at a false-alarm probability of at most 1%
    per variable the count of "not converged" is Binomial(200, <= 0.01), mean <= 2; seven
    or more has probability 0.45%, so the test fails by chance less than once in 200."""
    rng = np.random.default_rng(11)
    verdicts = [rhat_table(_stationary_trace(5, 44, rng))["converged"][0] for _ in range(200)]
    assert sum(v is False or v == False for v in verdicts) <= 6  # noqa: E712
    assert not any(v is pd.NA for v in verdicts)


@pytest.mark.parametrize(
    "drift",
    ["apart", "together", "slow"],
)
def test_fires_on_chains_that_have_not_converged(drift):
    """Non-stationary traces at maxit = 44, m = 5 (every one fires; none is close):
    chains still pulling apart from dispersed starts, all chains sharing one trend of
    0.2 SD per iteration (only the split halves show it), and an AR(1) with lag-one
    autocorrelation 0.97 started 5 SD off (a strongly dependent pair of variables drifts
    like this)."""
    rng = np.random.default_rng(12)
    trace = _stationary_trace(5, 44, rng)
    t = trace["iteration"].to_numpy(float)
    c = trace["chain"].to_numpy(float)
    if drift == "apart":
        trace["mean"] += 0.1 * (c - 3) * t
    elif drift == "together":
        trace["mean"] += 0.2 * t
    else:
        trace["mean"] = 0.25 * trace["mean"] + 5 * 0.97 ** (t - 1) * (1 + 0.2 * (c - 3))
    table = rhat_table(trace)
    assert table.loc[0, "converged"] == False  # noqa: E712
    assert convergence_message(table).startswith("Not converged (R-hat > 1.1): x.")


def test_convergence_matches_mice_definitions():
    trace = _trace(stuck="bmi", iterations=8)
    result = convergence(trace)
    bmi = result[result["variable"] == "bmi"].reset_index(drop=True)
    draws = (
        trace[trace["variable"] == "bmi"]
        .pivot(index="chain", columns="iteration", values="mean")
        .to_numpy()
    )
    assert bmi["iteration"].tolist() == list(range(1, 9))
    assert bmi["psrf"][:3].isna().all()
    for t in range(4, 9):
        assert bmi["psrf"][t - 1] == rhat(draws[:, :t])
    lag1 = [np.corrcoef(draws[:, t - 1], draws[:, t])[0, 1] for t in range(1, 8)]
    assert math.isnan(bmi["ac"][0])
    np.testing.assert_allclose(bmi["ac"][1:], np.cumsum(lag1) / np.arange(1, 8), atol=1e-12)
    with pytest.raises(ValueError, match="'parameter' argument must be 'mean' or 'sd'"):
        convergence(trace, parameter="var")
