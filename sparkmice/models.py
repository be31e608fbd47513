"""A chain's final models, kept in the run folder so rows that arrive later can be imputed
without refitting (`sparkmice impute-new`, `MiceResult.impute_new`).

Per chain and visited variable, the last sweep's step: the method that imputed it (a
numerical fallback's included), the design columns it kept, the drawn parameters, the
variable's pool of observed values (the initial fill, `sample`), and a bounded uniform
sample of the rows it was fitted on (`Donors`: design row and observed value) - pmm's
donors, whose predicted values are `x @ coef` exactly as in the run. Stored typed: one NPZ
per chain (arrays only, read with `allow_pickle=False`) and the plan as JSON plus an Arrow
file of each variable's type and levels. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import io
import json
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sparkmice.config import MiceConfig
from sparkmice.kernels import METHODS
from sparkmice.kernels.contract import ObservedPool
from sparkmice.plan import InputError, Plan, Variable

DONOR_ROWS = 1000  # rows kept per chain and variable for matching (pmm) new rows
MODEL_FORMAT = 1  # the layout of a chain's model file


class ModelError(InputError):
    """A run's models are missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Donors:
    """A uniform sample of a step's fitting rows: their design (kept columns, intercept
    first), observed value, and random sort keys (the smallest keys are the sample, so
    samples of blocks merge into a sample of all rows, in any order)."""

    x: np.ndarray
    y: np.ndarray
    keys: np.ndarray

    def merge(self, other: Donors, size: int = DONOR_ROWS) -> Donors:
        x = np.concatenate([self.x, other.x])
        y = np.concatenate([self.y, other.y])
        keys = np.concatenate([self.keys, other.keys])
        keep = np.argsort(keys, kind="stable")[:size]
        return Donors(x[keep], y[keep], keys[keep])


@dataclass(frozen=True)
class StepModel:
    """What imputing variable `j` with fixed parameters needs (see the module docstring)."""

    method: str
    cols: list[int]
    params: Any
    pool: ObservedPool
    donors: Donors


def bounded_pool(pool: ObservedPool, size: int, rng: np.random.Generator) -> ObservedPool:
    """At most `size` values of `pool`, drawn by its weights (each then standing for an
    equal share of the rows): the kept pool does not grow with the number of blocks."""
    if len(pool.values) <= size:
        return pool
    total = float(pool.weights.sum())
    return ObservedPool(pool.draw(size, rng), np.full(size, total / size))


def _params_type(method: str) -> Any:
    """The type of `method`'s parameters: the annotation of its `impute`'s `params`."""
    return typing.get_type_hints(METHODS[method].impute)["params"]


def chain_bytes(steps: dict[int, StepModel]) -> bytes:
    """One chain's step models as an NPZ file (arrays and a JSON index; no objects)."""
    arrays: dict[str, np.ndarray] = {}
    index: dict[str, Any] = {"format": MODEL_FORMAT, "steps": {}}
    for j, s in steps.items():
        key = f"v{j}"
        entry: dict[str, Any] = {"method": s.method, "cols": list(s.cols), "scalars": {}}
        params = s.params
        if isinstance(params, ObservedPool):  # `sample`: its parameters are the pool
            params = {}
        fields = (
            {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
            if dataclasses.is_dataclass(params)
            else params
            if isinstance(params, dict)
            else {"value": params}
        )
        for name, value in fields.items():
            if isinstance(value, np.ndarray):
                arrays[f"{key}.params.{name}"] = value
            else:
                integer = isinstance(value, int | np.integer)
                entry["scalars"][name] = int(value) if integer else float(value)
        arrays[f"{key}.pool.values"] = s.pool.values
        arrays[f"{key}.pool.weights"] = s.pool.weights
        arrays[f"{key}.donors.x"] = s.donors.x
        arrays[f"{key}.donors.y"] = s.donors.y
        index["steps"][str(j)] = entry
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def chain_from_bytes(data: bytes) -> dict[int, StepModel]:
    """The step models of `chain_bytes` (arrays loaded without pickle)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    index = json.loads(arrays["index"].tobytes().decode())
    if index.get("format") != MODEL_FORMAT:
        raise ModelError(f"model file format {index.get('format')} is not {MODEL_FORMAT}")
    steps = {}
    for j, entry in index["steps"].items():
        key, method = f"v{j}", entry["method"]
        values = {
            name[len(key) + 8 :]: a
            for name, a in arrays.items()
            if name.startswith(f"{key}.params.")
        }
        values.update(entry["scalars"])
        pool = ObservedPool(arrays[f"{key}.pool.values"], arrays[f"{key}.pool.weights"])
        kind = _params_type(method)
        if kind is ObservedPool:
            params: Any = pool
        elif isinstance(kind, type) and dataclasses.is_dataclass(kind):
            params = kind(**values)
        else:
            params = kind(values["value"])
        donors_x = arrays[f"{key}.donors.x"]
        steps[int(j)] = StepModel(
            method,
            list(entry["cols"]),
            params,
            pool,
            Donors(donors_x, arrays[f"{key}.donors.y"], np.zeros(len(donors_x))),
        )
    return steps


def plan_bytes(plan: Plan) -> tuple[bytes, bytes]:
    """The plan as JSON (no levels) and an Arrow IPC file holding each variable's type and
    levels (one row; a list column per variable, null for a continuous one)."""
    variables = [
        {
            "name": v.name,
            "kind": v.kind,
            "n_missing": v.n_missing,
            "derived": v.derived,
            "counts": list(v.counts) if v.counts is not None else None,
            "groups": list(v.groups) if v.groups is not None else None,
        }
        for v in plan.variables
    ]
    meta = {
        "format": MODEL_FORMAT,
        "variables": variables,
        "method": plan.method,
        "predictors": {k: list(p) for k, p in plan.predictors.items()},
        "visit_sequence": list(plan.visit_sequence),
        "passthrough": list(plan.passthrough),
        "passive": plan.passive,
        "n_rows": plan.n_rows,
        "n_blocks": plan.n_blocks,
        "config": plan.config.to_dict(),
    }
    levels = pa.table(
        {
            v.name: pa.array([list(v.levels) if v.levels is not None else None], pa.list_(v.type))
            for v in plan.variables
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, levels.schema) as writer:
        writer.write_table(levels)
    return json.dumps(meta, default=str).encode(), sink.getvalue()


def plan_from_bytes(meta_json: bytes, levels_ipc: bytes) -> Plan:
    """The plan of `plan_bytes`."""
    meta = json.loads(meta_json)
    levels = pa.ipc.open_file(pa.BufferReader(levels_ipc)).read_all()
    variables = []
    for i, v in enumerate(meta["variables"]):
        column = levels.column(v["name"])
        found = column.to_pylist()[0]
        variables.append(
            Variable(
                v["name"],
                i,
                v["kind"],
                column.type.value_type,
                tuple(found) if found is not None else None,
                v["n_missing"],
                v["derived"],
                tuple(v["counts"]) if v["counts"] is not None else None,
                tuple(v["groups"]) if v["groups"] is not None else None,
            )
        )
    return Plan(
        tuple(variables),
        dict(meta["method"]),
        {k: tuple(p) for k, p in meta["predictors"].items()},
        tuple(meta["visit_sequence"]),
        tuple(meta["passthrough"]),
        dict(meta["passive"]),
        int(meta["n_rows"]),
        int(meta["n_blocks"]),
        MiceConfig.from_dict(meta["config"]),
    )
