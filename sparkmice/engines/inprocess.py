"""The in-process engine: the same sampler over blocks held in this process (pandas/Arrow
input). For small data and fast tests; results equal the Spark engines' for the same seed,
row ids and number of blocks."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from sparkmice.blocks import Block, completed_table
from sparkmice.plan import Plan
from sparkmice.sampler import ChainTask, SweepReport

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
    blocks: list[Block],
    plan: Plan,
    task: ChainTask,
    on_sweep: Callable[[SweepReport], None] | None = None,
) -> pa.Table:
    """Run one chain on copies of `blocks`; return its completed rows."""
    blocks = [copy.copy(b) for b in blocks]
    for b in blocks:
        b.values, b.cache = b.values.copy(order="F"), {}
    task.run(plan, LocalBlocks(blocks), on_sweep)
    return pa.concat_tables(completed_table(b, plan, task.chain) for b in blocks)
