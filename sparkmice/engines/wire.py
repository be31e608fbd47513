"""The typed codec of the barrier exchange: the values a chain's tasks send, as bytes that
decoding cannot turn into code.

A message is a JSON header describing the value's structure followed by the raw buffers of
its numpy arrays and scalars (decoded with `numpy.frombuffer`, never pickle). Only the types
the sampler sends are encoded: None, bool, int, float, str; numpy arrays and scalars of
boolean, integer, floating, complex or fixed-width string dtype; tuples, lists, dicts; and
the records listed in `RECORDS` (summaries, pools, Newton sums, the trees' quantile points
and donors, a final model's donors). Anything else raises TypeError on the sending side.
Decoding gives back the same types, dtypes, shapes, memory order (C or Fortran, as pickle
keeps them) and bit patterns, so a merge over the exchange is bitwise the merge in one process.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from typing import Any

import numpy as np

from sparkmice.kernels.contract import ObservedPool
from sparkmice.kernels.glm import GlmSums
from sparkmice.kernels.histtree import DonorPool, QuantilePoints
from sparkmice.kernels.linalg import Moments
from sparkmice.kernels.newton import NewtonSums
from sparkmice.models import Donors

RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (Moments, ObservedPool, GlmSums, NewtonSums, QuantilePoints, DonorPool, Donors)
}
PLAIN = (type(None), bool, int, float, str)
ARRAY_KINDS = frozenset("biufcU")  # no objects, no structured dtypes
HEADER_LENGTH = struct.Struct(">I")


def encode(value: Any) -> bytes:
    """`value` as header length, JSON header and buffers (TypeError for unsupported types)."""
    buffers: list[bytes] = []
    tree = _encode(value, buffers)
    header = json.dumps({"value": tree, "buffers": [len(b) for b in buffers]}).encode()
    return b"".join([HEADER_LENGTH.pack(len(header)), header, *buffers])


def decode(message: bytes | bytearray) -> Any:
    """The value `encode` made `message` from (ValueError if it is not such a message)."""
    data = memoryview(bytearray(message))  # writable: decoded arrays are ordinary arrays
    if len(data) < HEADER_LENGTH.size:
        raise ValueError("exchange message too short")
    (n_header,) = HEADER_LENGTH.unpack(data[: HEADER_LENGTH.size])
    body = HEADER_LENGTH.size + n_header
    try:
        header = json.loads(bytes(data[HEADER_LENGTH.size : body]))
        sizes = [int(n) for n in header["buffers"]]
        tree = header["value"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise ValueError("exchange message has no valid header") from e
    if body > len(data) or min(sizes, default=0) < 0 or body + sum(sizes) != len(data):
        raise ValueError("exchange message buffers do not match its header")
    offsets = np.cumsum([body, *sizes]).tolist()
    buffers = [data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    try:
        return _decode(tree, buffers)
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError("exchange message has a malformed header") from e


def _encode(value: Any, buffers: list[bytes]) -> Any:
    kind = type(value)
    if kind in PLAIN:
        if kind is float and not math.isfinite(value):
            return {"float": repr(value)}  # JSON has no inf/nan; keep the header standard
        return value
    if isinstance(value, np.generic):
        dtype = _checked_dtype(value.dtype)
        buffers.append(value.tobytes())
        return {"scalar": [dtype.str, len(buffers) - 1]}
    if kind is np.ndarray:
        dtype = _checked_dtype(value.dtype)
        fortran = value.flags.f_contiguous and not value.flags.c_contiguous
        buffers.append(value.tobytes(order="F" if fortran else "C"))
        return {"array": [dtype.str, list(value.shape), "F" if fortran else "C", len(buffers) - 1]}
    if kind is tuple or kind is list:
        return {kind.__name__: [_encode(v, buffers) for v in value]}
    if kind is dict:
        return {"dict": [[_encode(k, buffers), _encode(v, buffers)] for k, v in value.items()]}
    if RECORDS.get(kind.__name__) is kind:
        return {"record": [kind.__name__, [_encode(v, buffers) for v in _fields(value)]]}
    raise TypeError(f"the barrier exchange cannot send a value of type {kind.__qualname__}")


def _decode(tree: Any, buffers: list[memoryview]) -> Any:
    if not isinstance(tree, dict):
        if type(tree) not in PLAIN:
            raise TypeError("unexpected JSON value")
        return tree
    ((tag, content),) = tree.items()
    if tag == "float":
        return float({"inf": "inf", "-inf": "-inf", "nan": "nan"}[content])
    if tag == "scalar":
        dtype_str, index = content
        return np.frombuffer(buffers[index], dtype=_dtype_named(dtype_str))[0]
    if tag == "array":
        dtype_str, shape, order, index = content
        dtype = _dtype_named(dtype_str)
        shape = tuple(int(n) for n in shape)
        if order not in ("C", "F") or math.prod(shape) * dtype.itemsize != len(buffers[index]):
            raise ValueError("exchange message array does not match its buffer")
        flat = np.frombuffer(buffers[index], dtype=dtype)
        return flat.reshape(shape, order=order)
    if tag == "tuple":
        return tuple(_decode(v, buffers) for v in content)
    if tag == "list":
        return [_decode(v, buffers) for v in content]
    if tag == "dict":
        return {_decode(k, buffers): _decode(v, buffers) for k, v in content}
    if tag == "record":
        name, fields = content
        return RECORDS[name](*(_decode(v, buffers) for v in fields))
    raise ValueError(f"exchange message has an unknown node {tag!r}")


def _dtype_named(name: Any) -> np.dtype:
    if not isinstance(name, str):
        raise TypeError("dtype names are strings")
    return _checked_dtype(np.dtype(name))


def _checked_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.fields is not None:
        raise TypeError(f"the barrier exchange cannot send numpy dtype {dtype}")
    return dtype


def _fields(record: Any) -> list[Any]:
    if dataclasses.is_dataclass(record):
        return [getattr(record, f.name) for f in dataclasses.fields(record)]
    return list(record)  # a NamedTuple
