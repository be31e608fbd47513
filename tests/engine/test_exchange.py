"""sparkmice.engines.exchange without Spark: tasks are threads with a stand-in barrier
context (partitionId, getTaskInfos, allGather), talking over real localhost sockets.
Intruders are plain sockets that connect to the root's advertised address."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import pickle
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from sparkmice.engines import exchange, wire
from sparkmice.engines.exchange import ExchangeError, ExchangeTimeout, TaskExchange

JOB_KEY = b"k" * 32


class FakeBarrierContext:
    """What TaskExchange uses of BarrierTaskContext, for `size` threads on `hosts`.
    `before_connect(root_host, root_port)` runs in task 1 after the address exchange and
    before it connects: an intruder gets there first."""

    def __init__(self, rank: int, size: int, shared: dict, hosts: list[str], before_connect):
        self.rank, self.size, self.shared, self.hosts = rank, size, shared, hosts
        self.before_connect = before_connect

    def partitionId(self) -> int:  # noqa: N802 (Spark's name)
        return self.rank

    def getTaskInfos(self):  # noqa: N802
        return [SimpleNamespace(address=f"{h}:7077") for h in self.hosts]

    def allGather(self, message: str) -> list[str]:  # noqa: N802
        self.shared["messages"][self.rank] = message
        self.shared["barrier"].wait(timeout=10)
        messages = list(self.shared["messages"])
        if self.rank == 1 and self.before_connect is not None:
            root = json.loads(messages[0])
            self.before_connect(root["host"], root["port"])
        return messages


def _run_tasks(size: int, body, timeout: float = 10.0, hosts=None, before_connect=None) -> list:
    """`body(exchange)` in `size` tasks; each task's result, or the exception it raised."""
    shared = {"messages": [""] * size, "barrier": threading.Barrier(size)}
    hosts = hosts or ["127.0.0.1"] * size

    def task(rank: int):
        context = FakeBarrierContext(rank, size, shared, hosts, before_connect)
        try:
            with TaskExchange(context, JOB_KEY, timeout) as ex:
                return body(ex)
        except Exception as e:  # returned, so that every task's outcome can be checked
            return e

    with ThreadPoolExecutor(size) as pool:
        return list(pool.map(task, range(size)))


def _sum(ex: TaskExchange) -> int:
    return ex.gather_merge([(ex.rank, ex.rank + 1)], lambda a, b: a + b)


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
        flags = [c.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in conns]
        _sum(ex)
        return flags

    for flags in _run_tasks(2, body):
        assert flags and all(flags)


def test_the_root_listens_on_its_task_host_only():
    """Task hosts 127.0.0.2 (a loopback alias on Linux): the root binds there, not to
    0.0.0.0, and the member connects to that address."""

    def body(ex: TaskExchange):
        sock = ex.listener if ex.rank == 0 else ex.root.sock
        address = sock.getsockname()[0] if ex.rank == 0 else sock.getpeername()[0]
        return address, _sum(ex)

    assert _run_tasks(2, body, hosts=["127.0.0.2"] * 2) == [("127.0.0.2", 3)] * 2


def test_loopback_only_when_the_host_cannot_be_bound_and_all_tasks_share_it(caplog):
    """203.0.113.7 (a documentation address) is not this machine's: with every task on
    that host the root falls back to loopback (unreachable from elsewhere); with a task on
    another host it fails with a clear error instead."""

    def body(ex: TaskExchange):
        total = _sum(ex)
        return ex.listener.getsockname()[0] if ex.rank == 0 else total

    with caplog.at_level(logging.INFO, logger="sparkmice.engines.exchange"):
        assert _run_tasks(2, body, hosts=["203.0.113.7"] * 2) == ["127.0.0.1", 3]
    assert "listening on loopback" in caplog.text
    shared = {"messages": [""] * 2, "barrier": threading.Barrier(2)}
    context = FakeBarrierContext(0, 2, shared, ["203.0.113.7", "203.0.113.8"], None)
    with pytest.raises(ExchangeError, match="cannot listen on its host address 203.0.113.7"):
        TaskExchange(context, JOB_KEY, 1.0).__enter__()


def test_a_member_that_cannot_reach_the_root_fails_with_its_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        context = SimpleNamespace(partitionId=lambda: 1, getTaskInfos=lambda: [None, None])
        with pytest.raises(ExchangeError, match=f"root task at 127.0.0.1:{port}"):
            TaskExchange(context, JOB_KEY, 1.0)._connect_to("127.0.0.1", port)


# -- intruders -----------------------------------------------------------------------------
@pytest.fixture
def held():
    """The intruders' sockets, closed after the test."""
    sockets: list[socket.socket] = []
    yield sockets
    for s in sockets:
        s.close()


def _intrude(action, held: list):
    """A before_connect hook: connect to the root, then `action(sock)`; keeps the socket
    open (in `held`) so that the root sees silence, not a close."""

    def before_connect(host: str, port: int) -> None:
        sock = socket.create_connection((host, port), timeout=5)
        held.append(sock)
        action(sock)

    return before_connect


def _greeting(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < len(exchange.MAGIC) + exchange.NONCE_BYTES:
        data += sock.recv(100)
    return data[len(exchange.MAGIC) :]


def test_a_client_with_the_wrong_key_is_dropped_and_the_exchange_carries_on(caplog, held):
    answers: list = []

    def wrong_key(sock: socket.socket) -> None:
        root_nonce, ours = _greeting(sock), os.urandom(exchange.NONCE_BYTES)
        proof = exchange._proof(b"x" * 32, b"member", root_nonce, ours, 1)
        sock.sendall((1).to_bytes(4, "big") + ours + proof)
        answers.append(sock.recv(100))  # the root's proof, were it fooled

    with caplog.at_level(logging.WARNING, logger="sparkmice.engines.exchange"):
        results = _run_tasks(2, _sum, before_connect=_intrude(wrong_key, held))
    assert results == [3, 3]
    assert answers == [b""]  # closed without the root proving anything
    assert "dropped a connection from 127.0.0.1: it failed authentication" in caplog.text


def test_a_silent_client_is_dropped_after_the_handshake_bound(monkeypatch, caplog, held):
    monkeypatch.setattr(exchange, "HANDSHAKE_SECONDS", 0.3)
    with caplog.at_level(logging.WARNING, logger="sparkmice.engines.exchange"):
        results = _run_tasks(2, _sum, before_connect=_intrude(lambda sock: None, held))
    assert results == [3, 3]
    assert "a connecting task sent nothing" in caplog.text


def test_silent_clients_cannot_hold_the_root_past_its_deadline(monkeypatch, held):
    """Strays alone until the deadline: the root fails naming the task that never came."""
    monkeypatch.setattr(exchange, "HANDSHAKE_SECONDS", 0.2)
    stop = threading.Event()

    def strays(host: str, port: int) -> None:
        while not stop.is_set():
            try:
                held.append(socket.create_connection((host, port), timeout=5))
            except OSError:  # the root gave up and closed its listener
                return
            stop.wait(0.1)

    def body(ex: TaskExchange):
        return ex.rank

    def task_1_never_connects(host: str, port: int) -> None:
        threading.Thread(target=strays, args=(host, port), daemon=True).start()
        stop.wait(3)  # longer than the root's timeout

    try:
        root, _ = _run_tasks(2, body, timeout=1.0, before_connect=task_1_never_connects)
    finally:
        stop.set()
    assert isinstance(root, ExchangeTimeout)
    assert "barrier tasks [1] did not connect within 1.0 s" in str(root)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_client_sending_a_pickle_runs_nothing_and_is_dropped(tmp_path, caplog, held):
    """A pickle instead of the handshake (as the old multiprocessing.connection exchange
    would have unpickled after its handshake): dropped, no code ran, the job carries on."""
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker)) * 4  # longer than a handshake reply
    with caplog.at_level(logging.WARNING, logger="sparkmice.engines.exchange"):
        results = _run_tasks(2, _sum, before_connect=_intrude(lambda s: s.sendall(payload), held))
    assert results == [3, 3]
    assert not marker.exists()
    assert "dropped a connection" in caplog.text
    assert "touch" not in caplog.text  # the log never shows what a connection sent


def test_a_pickle_from_an_authenticated_member_runs_nothing_and_fails_the_task(tmp_path):
    """Even with the key (a compromised task), a pickle is not a message: the root fails."""
    marker = tmp_path / "pwned"

    def body(ex: TaskExchange):
        if ex.rank == 0:
            return _sum(ex)
        c = ex.root
        sealed = c.cipher.encrypt(
            exchange._nonce(1, 0), pickle.dumps(_Exploit(marker)), exchange._associated(1, 0, 0)
        )
        c.sock.sendall(exchange.FRAME.pack(0, len(sealed)) + sealed)
        return None

    root, _ = _run_tasks(2, body)
    assert isinstance(root, ValueError) and "exchange message" in str(root)
    assert not marker.exists()


# -- messages on the wire ------------------------------------------------------------------
class Tap:
    """A member's socket that records what it sends, and can replace a frame (`rewrite`)."""

    def __init__(self, sock: socket.socket, rewrite=None):
        self.sock, self.sent, self.rewrite = sock, [], rewrite

    def sendall(self, data: bytes) -> None:
        if self.rewrite is not None:
            data = self.rewrite(len(self.sent), bytes(data), self.sent)
        self.sent.append(bytes(data))
        self.sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def _tapped(rewrite, rounds: int = 2):
    """Task 1's socket tapped; both tasks run `rounds` exchanges."""
    taps: list[Tap] = []

    def body(ex: TaskExchange):
        if ex.rank == 1:
            ex.root.sock = Tap(ex.root.sock, rewrite)
            taps.append(ex.root.sock)
        return [_sum(ex) for _ in range(rounds)]

    return _run_tasks(2, body, timeout=2.0), taps


def test_a_replayed_message_is_rejected():
    """Task 1's second message replaced by a replay of its first (valid) one."""
    results, _ = _tapped(lambda i, data, sent: sent[0] if i == 1 else data)
    assert isinstance(results[0], ExchangeError)
    assert "barrier task 1 sent message 0 where 1 was due" in str(results[0])


def test_a_replay_with_a_new_sequence_number_is_rejected():
    """The replay's header rewritten to the expected number: the tag binds the number."""

    def renumber(i, data, sent):
        if i != 1:
            return data
        _, n = exchange.FRAME.unpack(sent[0][: exchange.FRAME.size])
        return exchange.FRAME.pack(1, n) + sent[0][exchange.FRAME.size :]

    results, _ = _tapped(renumber)
    assert isinstance(results[0], ExchangeError)
    assert "a message from barrier task 1 failed authentication" in str(results[0])


def test_an_altered_message_is_rejected():
    def flip_a_bit(i, data, sent):
        return data[:-1] + bytes([data[-1] ^ 1]) if i == 0 else data

    results, _ = _tapped(flip_a_bit, rounds=1)
    assert isinstance(results[0], ExchangeError)
    assert "failed authentication" in str(results[0])


def test_messages_are_encrypted():
    """A known value (a level name and a float) is in the encoded message but not in
    anything task 1 sends."""
    secret = [(1, ("patient-Jane-Doe", np.array([123456.789])))]
    plain = wire.encode(secret)
    assert b"patient-Jane-Doe" in plain and np.array([123456.789]).tobytes() in plain
    taps: list[Tap] = []

    def body(ex: TaskExchange):
        if ex.rank == 1:
            ex.root.sock = Tap(ex.root.sock)
            taps.append(ex.root.sock)
            return ex.gather_merge(secret, lambda a, b: a)
        return ex.gather_merge([], lambda a, b: a)

    for name, values in _run_tasks(2, body):  # both tasks got the value back
        assert name == "patient-Jane-Doe" and values.tobytes() == secret[0][1][1].tobytes()
    sent = b"".join(taps[0].sent)
    assert len(sent) > len(plain)
    assert b"patient-Jane-Doe" not in sent
    assert np.array([123456.789]).tobytes() not in sent


def test_the_handshake_proofs_are_hmac_sha256_under_the_job_key():
    """The proof is HMAC-SHA256 under a key derived from the job key, bound to both nonces,
    the role and the rank: a proof for one handshake proves nothing in another."""
    a, b = os.urandom(32), os.urandom(32)
    proof = exchange._proof(JOB_KEY, b"member", a, b, 1)
    assert len(proof) == hashlib.sha256().digest_size
    handshake_key = exchange._derive(JOB_KEY, b"handshake")
    message = exchange.MAGIC + b"member" + a + b + (1).to_bytes(4, "big")
    assert proof == hmac.new(handshake_key, message, hashlib.sha256).digest()
    others = [
        exchange._proof(JOB_KEY, b"root", a, b, 1),
        exchange._proof(JOB_KEY, b"member", b, a, 1),
        exchange._proof(JOB_KEY, b"member", a, b, 2),
        exchange._proof(b"x" * 32, b"member", a, b, 1),
    ]
    assert proof not in others


# -- lost peers ----------------------------------------------------------------------------
def test_a_silent_peer_fails_the_exchange_instead_of_hanging():
    """Task 1 stays connected but never sends: the root gives up after the timeout."""
    root_done = threading.Event()

    def body(ex: TaskExchange):
        if ex.rank == 0:
            try:
                return _sum(ex)
            finally:
                root_done.set()
        assert root_done.wait(timeout=10)
        return ex.rank

    root, member = _run_tasks(2, body, timeout=0.5)
    assert isinstance(root, ExchangeTimeout) and "barrier task 1 sent nothing" in str(root)
    assert member == 1


def test_a_peer_dying_mid_sweep_ends_the_root_with_its_rank():
    """Task 1 exchanges once, then its connection goes (as when its process dies)."""

    def body(ex: TaskExchange):
        first = _sum(ex)
        if ex.rank == 1:
            ex.root.sock.close()
            return first
        return first, _sum(ex)

    root, member = _run_tasks(2, body)
    assert member == 3
    assert isinstance(root, ExchangeError) and "barrier task 1 closed its connection" in str(root)


def test_a_root_dying_mid_sweep_ends_the_members_naming_it():
    def body(ex: TaskExchange):
        first = _sum(ex)
        if ex.rank == 0:
            for c in ex.peers:
                c.close()
            return first
        return first, _sum(ex)

    root, *members = _run_tasks(3, body)
    assert root == 6
    for m in members:
        assert isinstance(m, ExchangeError) and "the root task (0)" in str(m)  # closed or reset
