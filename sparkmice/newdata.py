"""New rows imputed with a finished run's models, without refitting on the run's data
(miceforest's `impute_new_data`; R mice's `ignore`, where the new rows would be imputed
but not fitted on). The API is `MiceResult.impute_new` / `sparkmice.impute_new`, the
command `sparkmice impute-new`.

What is proper about it, and what is not:
- each chain's parameters are fixed at its last sweep's draw (beta*, sigma*; pmm's donors a
  bounded uniform sample of the rows that fit was made on). The new rows' imputations are
  draws from the chain's final conditional models, as a run's last sweep would give them
  for these rows, had they been ignored in the fit (R's `ignore`);
- the between-imputation variance of the parameters comes only from the m chains' different
  draws: one draw per chain, not a fresh posterior draw per new batch. With m chains it is
  the same spread as the run's own; more imputations need a run with more chains;
- the chained sweeps over the new rows still run (maxit of them, from a fill sampled from
  each variable's kept observed values), so a row missing several variables gets them from
  each other's current imputations, as in the run;
- nothing of the new rows enters any model: imputing tomorrow's rows does not change
  today's imputations or models, and new rows unlike the old (a shift) are not learnt from.

The new rows run in this process (an Arrow table; a Spark DataFrame is collected): meant for
the daily increment, not for another table as large as the run's.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkmice.blocks import Block, completed_table, encode_column, split_blocks
from sparkmice.engines.inprocess import LocalBlocks, arrow_input
from sparkmice.io.run import RunFolder
from sparkmice.kernels import METHODS
from sparkmice.models import ModelError, StepModel, chain_from_bytes, plan_from_bytes
from sparkmice.plan import InputError, Plan
from sparkmice.sampler import Chain


def load_models(run: RunFolder) -> tuple[Plan, dict[int, dict[int, StepModel]]]:
    """The run's plan and each committed chain's final models."""
    try:
        plan = plan_from_bytes(*run.read_model_plan())
    except FileNotFoundError:
        raise ModelError(
            f"{run.root} holds no models for new data (a run written before sparkmice kept "
            "them, or not a run folder): impute again with this version and output=DIR."
        ) from None
    models = {
        k: chain_from_bytes(run.read_chain_model(name)) for k, name in run.model_chains().items()
    }
    if not models:
        raise ModelError(f"{run.root} has no committed chain with models to impute new rows with.")
    return plan, models


def conform_columns(table: pa.Table, plan: Plan) -> pa.Table:
    """The new rows must have the run's columns and types (one line naming the column); a
    column with no value at all (Arrow's null type, as pandas gives it) gets the run's."""
    config = plan.config
    expected = [v.name for v in plan.variables if not v.derived] + list(plan.passthrough)
    if config.id_column and config.id_column not in expected:
        expected.append(config.id_column)
    names = table.column_names
    for name in expected:
        if name not in names:
            raise InputError(
                f"new data lack column {name!r}, which the run imputed or kept; give the "
                f"run's columns ({', '.join(expected)})."
            )
    for name in names:
        if name not in expected:
            raise InputError(
                f"new data have column {name!r}, which the run did not have; drop it (the "
                f"run's columns are {', '.join(expected)})."
            )
    for v in plan.variables:
        if v.derived:
            continue
        t = table.schema.field(v.name).type
        if pa.types.is_null(t):
            i = table.schema.get_field_index(v.name)
            table = table.set_column(i, v.name, pa.nulls(table.num_rows, v.type))
            continue
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
        run_numeric = pa.types.is_integer(v.type) or pa.types.is_floating(v.type)
        value_type = t.value_type if pa.types.is_dictionary(t) else t
        run_value = v.type.value_type if pa.types.is_dictionary(v.type) else v.type
        if v.kind == "continuous" and numeric and run_numeric:
            continue
        if value_type != run_value:
            raise InputError(
                f"new data's column {v.name!r} has type {t}, the run's had {v.type}; cast it "
                "to the run's type."
            )
    return table


def check_levels(table: pa.Table, plan: Plan) -> None:
    """Refuse observed values of a categorical column that the run never saw."""
    for v in plan.variables:
        if v.categorical and not v.derived:
            column = table.column(v.name)
            unknown = int(np.sum(np.isnan(encode_column(column, v)) & ~_null(column)))
            if unknown:
                raise InputError(
                    f"new data's column {v.name!r} holds {unknown} value(s) that are not among "
                    "the run's levels; the run's models cannot use them: map them to known "
                    "levels or make them missing."
                )


def _null(column: pa.ChunkedArray) -> np.ndarray:
    return pc.is_null(column).to_numpy(zero_copy_only=False)


def impute_chains(
    run: RunFolder, data: Any, seed: int | None = None
) -> tuple[Plan, dict[int, pa.Table]]:
    """Each committed chain's imputations of the new rows `data` (the run's columns), by
    chain: completed tables with `_imputation` and `_row_id` (the new rows' ids: the id column's,
    else their positions); `seed` replaces the run's seed for the new rows' draws."""
    plan, models = load_models(run)
    binned = sorted({plan.variables[j].name for ms in models.values() for j, s in ms.items()
                     if METHODS[s.method].binned})  # fmt: skip
    if binned:  # a tree's bins are cut on the run's data; the kept models do not hold them
        raise ModelError(
            f"impute-new does not take a run with tree methods (cart, rf: {binned}); "
            f"impute the new rows with the run's data (mice with the rows added)."
        )
    if seed is not None:
        plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, seed=seed))
    source = data
    if not isinstance(source, pa.Table):
        import pandas as pd

        if isinstance(source, pd.DataFrame):
            source = pa.Table.from_pandas(source, preserve_index=False)
        else:
            source = pa.Table.from_pandas(source.toPandas(), preserve_index=False)
    source = conform_columns(source, plan)
    check_levels(source, plan)
    table = arrow_input(source, plan.config)
    blocks = split_blocks(table, plan)
    if not blocks:  # no new rows (an empty day): an empty table of the output's columns
        shape = (0, len(plan.variables))
        empty = np.zeros(shape, order="F")
        blocks = [Block(0, np.zeros(0, np.int64), empty, empty.astype(bool), table)]
    tables = {}
    for k, chain_models in sorted(models.items()):
        mine = [copy.copy(b) for b in blocks]
        for b in mine:
            b.values, b.cache = b.values.copy(order="F"), {}
        Chain(plan, k).run_fixed(LocalBlocks(mine), chain_models, plan.config.maxit)
        tables[k] = pa.concat_tables(completed_table(b, plan, k) for b in mine)
    return plan, tables
