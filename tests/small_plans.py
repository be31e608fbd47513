"""A small pandas frame's resolved plan and row blocks, as the in-process engine makes
them (for the unit tests of the sampler, designs and blocks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sparkmice.blocks import ROW_ID, Block, split_blocks
from sparkmice.config import MiceConfig
from sparkmice.plan import Plan, resolve
from sparkmice.summaries import summarize_arrow


def table_of(df: pd.DataFrame) -> pa.Table:
    """The frame as Arrow with row ids 0..n-1."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.append_column(ROW_ID, pa.array(np.arange(len(df), dtype=np.int64)))


def plan_of(df: pd.DataFrame, **options) -> tuple[Plan, list[Block]]:
    """The run's plan for `df` under `options` and its blocks."""
    table = table_of(df)
    config = MiceConfig(**options)
    schema = table.schema.remove(table.schema.get_field_index(ROW_ID))
    plan = resolve(schema, summarize_arrow(table, config.max_levels, {ROW_ID}), config)
    return plan, split_blocks(table, plan)
