"""sparkmice.engines.wire: every value the sampler exchanges decodes bitwise as it was sent,
anything else is refused when sending, and nothing received can run code."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pickle
import struct

import numpy as np
import pytest

import sparkmice
from sparkmice.datasets import make_mar
from sparkmice.engines import inprocess, wire
from sparkmice.kernels.contract import ObservedPool
from sparkmice.kernels.linalg import Moments


def assert_identical(a, b, where: str = "value") -> None:
    """Same types, dtypes, shapes, memory order and bit patterns, all the way down."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        if a.flags.f_contiguous and not a.flags.c_contiguous:
            assert b.flags.f_contiguous, f"{where}: Fortran order lost"
        assert a.tobytes(order="A") == b.tobytes(order="A"), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, where


def round_trip(value):
    return wire.decode(wire.encode(value))


@pytest.fixture(scope="module")
def sampler_values(tmp_path_factory) -> list:
    """Every value the sampler reduces (each block's and each merged total) in short runs
    that use every method and separation guard, with state saving on."""
    seen: list = []
    real = inprocess.LocalBlocks.reduce

    def recording(self, fn, merge):
        values = [fn(b) for b in self.blocks]
        total = functools.reduce(merge, values)
        seen.extend([*values, total])
        return total

    data = make_mar(600, seed=3)
    runs = [
        dict(
            method={"chol": "norm", "bmi": "sample", "lact": "mean"}, separation={"smoke": "firth"}
        ),
        dict(kind={"diet": "ordered"}, separation={"smoke": "ridge"}),
        dict(),  # defaults: pmm, logreg with augmentation, polyreg
    ]
    inprocess.LocalBlocks.reduce = recording
    try:
        for i, options in enumerate(runs):
            out = str(tmp_path_factory.mktemp(f"run{i}"))
            sparkmice.mice(data, m=1, maxit=1, seed=2, row_blocks=3, output=out, **options)
    finally:
        inprocess.LocalBlocks.reduce = real
    return seen


def test_every_value_the_sampler_exchanges_round_trips_bitwise(sampler_values):
    kinds = {type(v).__name__ for v in sampler_values}
    # the runs did send every kind of value (else this test would prove less than it says)
    assert {"tuple", "ObservedPool", "GlmSums", "NewtonSums", "ndarray", "int"} <= kinds
    for i, value in enumerate(sampler_values):
        assert_identical(value, round_trip(value), f"value {i} ({type(value).__name__})")
        message = [(i, value), (i + 1, value)]  # as a member sends its blocks' values
        assert_identical(message, round_trip(message), f"message {i}")


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.0,
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        0.1 + 0.2,
        "Ünïcode ☃",
        np.float64(1 / 3),
        np.int32(-7),
        np.bool_(True),
        np.arange(12.0).reshape(3, 4),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        np.arange(24.0).reshape(4, 6)[::2, 1::2],  # not contiguous: sent as C-order
        np.array(2.5),
        np.zeros((0, 3)),
        np.frombuffer(struct.pack("<2Q", 0x7FF8000000000001, 0x8000000000000000), "<f8"),
        np.array(["omnivore", "vegan"]),
        np.array([1, 2], dtype=">i2"),
        np.array([1 + 2j]),
        np.array([True, False]),
        [1, (2.0, [np.int64(3)])],
        {"a": 1, 2: np.ones(2), (1, 2): None},
        Moments(3.0, np.ones(2), np.eye(2)),
        ObservedPool(np.array([1.5, 2.5]), np.array([1.0, 1.0])),
    ],
    ids=repr,
)
def test_values_round_trip_bitwise(value):
    assert_identical(value, round_trip(value))


def test_decoded_arrays_are_writable():
    assert round_trip(np.ones(3)).flags.writeable


@pytest.mark.parametrize(
    "value",
    [
        np.array([object()], dtype=object),
        np.zeros(2, dtype=[("a", "f8")]),
        {1, 2},
        b"bytes",
        lambda: 1,
        type("Moments", (), {})(),  # a look-alike of a known record
        [1, {"nested": object()}],
    ],
    ids=lambda v: type(v).__name__,
)
def test_other_values_are_refused_when_sending(value):
    with pytest.raises(TypeError, match="barrier exchange cannot send"):
        wire.encode(value)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    with pytest.raises(ValueError, match="exchange message"):
        wire.decode(payload)
    pickle.loads(pickle.dumps(_Exploit(tmp_path / "control")))  # the payload does work
    assert (tmp_path / "control").exists()
    assert not marker.exists()


@pytest.mark.parametrize(
    "header",
    [
        {"value": {"record": ["system", []]}, "buffers": []},  # not a known record
        {"value": {"array": ["O", [1], "C", 0]}, "buffers": [8]},  # object dtype
        {"value": {"array": ["<f8", [2], "C", 0]}, "buffers": [8]},  # size mismatch
        {"value": {"scalar": [["a", "O"], 0]}, "buffers": [8]},  # dtype not a name
        {"value": {"eval": "1+1"}, "buffers": []},
    ],
)
def test_malformed_headers_are_refused(header):
    import json

    text = json.dumps(header).encode()
    message = struct.pack(">I", len(text)) + text + b"\0" * sum(header["buffers"])
    with pytest.raises(ValueError, match="exchange message"):
        wire.decode(message)
