"""Pooled R^2 by Fisher z (R mice's pool.r.squared; Harel 2009)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sparkmice.pooling import pool_r_squared, pool_scalar


def test_pooled_r_squared_by_hand() -> None:
    r2 = np.array([0.30, 0.36, 0.25, 0.40])
    nobs = np.array([25, 25, 25, 25])
    out = pool_r_squared(SimpleNamespace(r_squared=r2, adj_r_squared=r2, nobs=nobs))
    z = np.arctanh(np.sqrt(r2))
    p = pool_scalar(z, 1 / (nobs - 3.0))
    assert out.index.tolist() == ["R^2"]
    assert out.loc["R^2", "est"] == pytest.approx(np.tanh(z.mean()) ** 2, rel=1e-13)
    assert out.loc["R^2", "lo 95"] == pytest.approx(np.tanh(z.mean() - 1.96 * p.t**0.5) ** 2)
    assert out.loc["R^2", "hi 95"] == pytest.approx(np.tanh(z.mean() + 1.96 * p.t**0.5) ** 2)
    assert out.loc["R^2", "fmi"] == pytest.approx(p.fmi)


def test_identical_r_squared_pools_to_itself() -> None:
    r2 = np.full(3, 0.5)
    out = pool_r_squared(SimpleNamespace(r_squared=r2, adj_r_squared=r2 - 0.1, nobs=[50] * 3))
    assert out.loc["R^2", "est"] == pytest.approx(0.5, rel=1e-13)
    adj = pool_r_squared(
        SimpleNamespace(r_squared=r2, adj_r_squared=r2 - 0.1, nobs=[50] * 3), adjusted=True
    )
    assert adj.index.tolist() == ["adj R^2"]
    assert adj.loc["adj R^2", "est"] == pytest.approx(0.4, rel=1e-13)


def test_non_gaussian_fits_are_refused() -> None:
    fits = SimpleNamespace(r_squared=np.full(3, np.nan), adj_r_squared=np.full(3, np.nan),
                           nobs=[50] * 3)  # fmt: skip
    with pytest.raises(ValueError, match="gaussian fits only.*family='gaussian'"):
        pool_r_squared(fits)
