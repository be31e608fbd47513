"""R-hat: against ArviZ and the paper's formulas worked by hand; mixing and stuck chains."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from sparkmice.diagnostics.rhat import (
    basic_rhat,
    convergence,
    convergence_message,
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


def test_rhat_table_flags_the_stuck_variable():
    table = rhat_table(_trace(stuck="bmi"))
    assert list(table["variable"]) == ["bmi", "hyp"]
    assert table["converged"].tolist() == [False, True]
    assert table.loc[0, "rhat_mean"] > 1.1
    assert "run more iterations" in table.loc[0, "message"]
    message = convergence_message(table)
    assert message.startswith("Not converged (R-hat > 1.1): bmi.")


def test_rhat_table_all_converged_and_undefined():
    assert convergence_message(rhat_table(_trace(None))).startswith("All 2 imputed variables")
    short = rhat_table(_trace(None, iterations=3))
    assert short["converged"].isna().all()
    assert "at least 4 iterations" in short.loc[0, "message"]
    assert "R-hat undefined for: bmi, hyp" in convergence_message(short)


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
