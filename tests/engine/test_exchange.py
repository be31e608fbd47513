"""sparkmice.engines.exchange without Spark: tasks are threads with a stand-in barrier
context (partitionId, getTaskInfos, allGather), talking over real localhost sockets."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from sparkmice.engines.exchange import ExchangeTimeout, TaskExchange

AUTHKEY = b"k" * 32


class FakeBarrierContext:
    """What TaskExchange uses of BarrierTaskContext, for `size` threads."""

    def __init__(self, rank: int, size: int, shared: dict):
        self.rank, self.size, self.shared = rank, size, shared

    def partitionId(self) -> int:  # noqa: N802 (Spark's name)
        return self.rank

    def getTaskInfos(self):  # noqa: N802
        return [SimpleNamespace(address="127.0.0.1:7077") for _ in range(self.size)]

    def allGather(self, message: str) -> list[str]:  # noqa: N802
        self.shared["messages"][self.rank] = message
        self.shared["barrier"].wait(timeout=10)
        return list(self.shared["messages"])


def _run_tasks(size: int, body, timeout: float = 10.0) -> list:
    shared = {"messages": [""] * size, "barrier": threading.Barrier(size)}

    def task(rank: int):
        with TaskExchange(FakeBarrierContext(rank, size, shared), AUTHKEY, timeout) as ex:
            return body(ex)

    with ThreadPoolExecutor(size) as pool:
        return list(pool.map(task, range(size)))


def test_every_task_gets_the_merge_in_block_order():
    """Blocks 0..5 spread over 3 tasks; string concatenation is order-sensitive, so the
    total shows the root merged in block order, and every task receives the same total."""

    def body(ex: TaskExchange) -> str:
        mine = [(b, str(b)) for b in range(6) if b % 3 == ex.rank]
        return ex.gather_merge(mine, lambda a, b: a + b)

    assert _run_tasks(3, body) == ["012345"] * 3


def test_connections_send_without_nagle_delay():
    """TCP_NODELAY on both ends: with Nagle's algorithm each small exchange waited for a
    delayed acknowledgement (~25 ms each, most of a two-task sweep's time)."""

    def body(ex: TaskExchange) -> list[int]:
        conns = ex.peers if ex.rank == 0 else [ex.root]
        flags = []
        for c in conns:
            with socket.socket(fileno=c.fileno()) as s:
                flags.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                s.detach()
        ex.gather_merge([(ex.rank, 1)], lambda a, b: a + b)
        return flags

    for flags in _run_tasks(2, body):
        assert flags and all(flags)


def test_a_silent_peer_fails_the_exchange_instead_of_hanging():
    """Task 1 stays connected but never sends: the root gives up after the timeout."""
    root_done = threading.Event()

    def body(ex: TaskExchange):
        if ex.rank == 0:
            with pytest.raises(ExchangeTimeout):
                ex.gather_merge([(0, 1)], lambda a, b: a + b)
            root_done.set()
        else:
            assert root_done.wait(timeout=10)
        return ex.rank

    assert _run_tasks(2, body, timeout=0.5) == [0, 1]
