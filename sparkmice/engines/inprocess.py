"""The in-process engine: the same sampler over blocks held in this process (pandas/Arrow
input). For small data and fast tests; results equal the Spark engines' for the same seed,
row ids and number of blocks."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from sparkmice.blocks import Block, completed_table, split_blocks
from sparkmice.plan import Plan
from sparkmice.sampler import Chain, SweepReport

T = TypeVar("T")


class LocalBlocks:
    """A BlockSet whose blocks are all here: reduce is a fold in block order."""

    def __init__(self, blocks: list[Block]):
        self.blocks = blocks

    def reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        return functools.reduce(merge, (fn(b) for b in self.blocks))

    def update(self, fn: Callable[[Block], None]) -> None:
        for b in self.blocks:
            fn(b)


def run_chain(
    table: pa.Table,
    plan: Plan,
    chain: int,
    on_sweep: Callable[[SweepReport], None] | None = None,
    blocks: list[Block] | None = None,
) -> tuple[pa.Table, Chain]:
    """Run chain `chain` on a table with `_row_id`; return its completed rows and state."""
    if blocks is None:
        blocks = split_blocks(table, plan)
    else:
        blocks = [copy.copy(b) for b in blocks]
        for b in blocks:
            b.values, b.cache = b.values.copy(), {}
    state = Chain(plan, chain)
    state.run(LocalBlocks(blocks), range(1, plan.config.maxit + 1), on_sweep)
    return pa.concat_tables(completed_table(b, plan, chain) for b in blocks), state


def run(
    table: pa.Table, plan: Plan, on_sweep: Callable[[SweepReport], None] | None = None
) -> tuple[pa.Table, list[Chain]]:
    """All requested chains, one after another; the long table in chain order."""
    blocks = split_blocks(table, plan)
    results = [run_chain(table, plan, k, on_sweep, blocks) for k in plan.config.chain_numbers()]
    return pa.concat_tables(t for t, _ in results), [c for _, c in results]
