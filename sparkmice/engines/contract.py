"""What every engine does, so that `mice()` only chooses one and hands over.

An engine is made from the input and the options without starting a Spark job (it checks
the input's schema); `prepare()` reads the input once and returns the resolved plan;
`run(tasks, sink, progress_uri)` runs the chains and hands each finished chain to the run
folder's sink (`sparkmice.io.run.ChainSink`; None: nothing is written), writing a progress
report per sweep to `progress_uri` if given; `close()` releases what `prepare` holds.
The engines: `inprocess` (pandas/Arrow input, this process), and on Spark `barrier` and
`perstep` (`sparkmice.engines.spark` chooses).
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from sparkmice.io.run import ChainSink
from sparkmice.plan import Plan
from sparkmice.sampler import ChainTask, SweepReport


class Engine(Protocol):
    name: str  # "inprocess", "barrier" or "perstep": recorded in config.json
    notes: list[str]  # why this engine: logged, and kept in MiceResult.notes
    reports: list[SweepReport]  # the sweeps run here, when they are kept in memory

    def input_files(self) -> list[str]:
        """The files the input is read from (metadata only), to keep the output apart."""
        ...

    def prepare(self) -> Plan: ...

    def run(
        self, tasks: list[ChainTask], sink: ChainSink | None, progress_uri: str | None
    ) -> list[pa.Table]:
        """Run `tasks`; the completed tables if this engine holds them in memory, else []."""
        ...

    def close(self) -> None: ...
