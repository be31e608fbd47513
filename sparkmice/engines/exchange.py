"""Combining per-block values among the tasks of one barrier job, over TCP.

`BarrierTaskContext.allGather` costs about a second per call, so it is used once, to tell
every task the root task's address; after that each exchange is one message from every task
to the root (task 0) and one back. The root merges all blocks' values in block order and
sends the total, so the result is bitwise the same on any cluster. Connections are
authenticated with a per-job key (multiprocessing.connection's HMAC handshake) and every wait
is bounded by a timeout, so a lost peer fails the job instead of hanging it.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, TypeVar

from sparkmice.blocks import Block

T = TypeVar("T")


class ExchangeTimeout(RuntimeError):
    """A peer task did not answer in time."""


class TaskExchange:
    """The root's or a member's side of the exchange; use as a context manager."""

    def __init__(self, context, authkey: bytes, timeout: float):
        self.context = context
        self.rank = context.partitionId()
        self.size = len(context.getTaskInfos())
        self.timeout = timeout
        self.peers: list[Connection] = []
        self.root: Connection | None = None
        self.listener: Listener | None = None
        self.authkey = authkey

    def __enter__(self) -> TaskExchange:
        port = 0
        if self.rank == 0 and self.size > 1:
            self.listener = Listener(("0.0.0.0", 0), authkey=self.authkey)
            # no public accept timeout: bound it on the listening socket itself
            self.listener._listener._socket.settimeout(self.timeout)
            port = self.listener.address[1]
        messages = self.context.allGather(json.dumps({"rank": self.rank, "port": port}))
        if self.size > 1:
            if self.rank == 0:
                for _ in range(self.size - 1):
                    try:
                        self.peers.append(_no_delay(self.listener.accept()))
                    except TimeoutError as e:  # socket.timeout
                        raise ExchangeTimeout("a barrier task did not connect in time") from e
            else:
                root_port = next(
                    json.loads(m)["port"] for m in messages if json.loads(m)["rank"] == 0
                )
                host = self.context.getTaskInfos()[0].address.rsplit(":", 1)[0]
                self.root = _no_delay(_connect(host, root_port, self.authkey, self.timeout))
        return self

    def __exit__(self, *exc: Any) -> None:
        for c in self.peers:
            c.close()
        if self.root is not None:
            self.root.close()
        if self.listener is not None:
            self.listener.close()

    def gather_merge(self, parts: list[tuple[int, Any]], merge: Callable[[T, T], T]) -> T:
        """Merge every task's (block index, value) pairs in block order; all get the total."""
        if self.rank == 0:
            everything = list(parts)
            for c in self.peers:
                everything.extend(self._recv(c))
            everything.sort(key=lambda p: p[0])
            total = functools.reduce(merge, (v for _, v in everything))
            for c in self.peers:
                c.send(total)
            return total
        self.root.send(parts)
        return self._recv(self.root)

    def _recv(self, conn: Connection) -> Any:
        if not conn.poll(self.timeout):
            raise ExchangeTimeout(f"no message from a peer task within {self.timeout} s")
        return conn.recv()


def _no_delay(conn: Connection) -> Connection:
    """Send each message at once: with Nagle's algorithm on, a small message can wait for
    the peer's delayed acknowledgement (measured here: ~25 ms per exchange)."""
    with socket.socket(fileno=os.dup(conn.fileno())) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _connect(host: str, port: int, authkey: bytes, timeout: float) -> Connection:
    try:
        return Client((host, port), authkey=authkey)
    except OSError:
        # the executor's advertised host may not resolve from inside the task: try loopback
        # only when the root runs on this same machine
        if socket.gethostbyname(socket.gethostname()) == host or host in ("localhost", "127.0.0.1"):
            return Client(("127.0.0.1", port), authkey=authkey)
        raise


class ExchangedBlocks:
    """A BlockSet over this task's blocks, merging with the other tasks' at every reduce."""

    def __init__(self, blocks: list[Block], exchange: TaskExchange):
        self.blocks = blocks
        self.exchange = exchange

    def reduce(self, fn: Callable[[Block], T], merge: Callable[[T, T], T]) -> T:
        return self.exchange.gather_merge([(b.index, fn(b)) for b in self.blocks], merge)

    def update(self, fn: Callable[[Block], None]) -> None:
        for b in self.blocks:
            fn(b)
