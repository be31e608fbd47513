"""Combining per-block values among the tasks of one barrier job, over TCP.

`BarrierTaskContext.allGather` costs about a second per call, so it is used once, to tell
every task the root task's address; after that each exchange is one message from every task
to the root (task 0) and one back. The root merges all blocks' values in block order and
sends the total, so the result is bitwise the same on any cluster.

The messages carry sums and samples of observed values (health records), so:
- The root listens on its own task's host address (from the barrier's task infos), not on
  every interface; on loopback only if that address cannot be bound here and every task of
  the job runs on this same host.
- A connection counts only after a mutual challenge-response handshake: each side proves it
  holds the per-job key with HMAC-SHA256 over both sides' fresh random nonces and the
  member's rank. A connection that fails it, or stays silent, is dropped with a log line
  (never its content) and the root keeps accepting until every member has authenticated or
  the deadline passes.
- Every message is encrypted and authenticated with AES-256-GCM under a key derived (HKDF)
  from the job key and both handshake nonces, so each connection has its own key. The GCM
  tag is the message authentication: it covers the ciphertext and, as associated data, the
  sender, receiver and sequence number (the nonce is the sender and sequence number), so an
  altered, replayed, reordered or misdirected message is rejected and ends the task.
- Payloads use `wire`'s typed codec: nothing received is unpickled or evaluated.
- Every wait (accept, handshake, receive, send) is bounded: a lost peer ends the task with
  ExchangeTimeout or ExchangeError naming its rank instead of hanging it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sparkmice.blocks import Block
from sparkmice.engines import wire

T = TypeVar("T")
log = logging.getLogger(__name__)

MAGIC = b"sparkmice-exchange-1"
NONCE_BYTES = 32
PROOF_BYTES = 32  # an HMAC-SHA256
HANDSHAKE_SECONDS = 10.0  # a member answers in ms; a silent stray holds the root no longer
FRAME = struct.Struct(">QI")  # sequence number, length of the encrypted body
ROOT = 0


class ExchangeTimeout(TimeoutError):
    """A peer task did not connect, answer or take a message in time."""


class ExchangeError(ConnectionError):
    """A peer task closed its connection, or a message or handshake failed authentication."""


def _task(rank: int) -> str:
    return "the root task (0)" if rank == ROOT else f"barrier task {rank}"


def _derive(job_key: bytes, purpose: bytes, salt: bytes | None = None) -> bytes:
    """A 32-byte key for one purpose, derived from the job key (HKDF-SHA256)."""
    return HKDF(hashes.SHA256(), 32, salt, b"sparkmice exchange " + purpose).derive(job_key)


def _proof(job_key: bytes, role: bytes, root_nonce: bytes, member_nonce: bytes, rank: int) -> bytes:
    """What one side sends to prove it holds the job key, bound to this handshake."""
    message = MAGIC + role + root_nonce + member_nonce + rank.to_bytes(4, "big")
    return hmac.new(_derive(job_key, b"handshake"), message, hashlib.sha256).digest()


def _session_key(job_key: bytes, root_nonce: bytes, member_nonce: bytes, rank: int) -> bytes:
    """The AES-256-GCM key of one connection: fresh for every handshake."""
    return _derive(job_key, b"aes-256-gcm " + str(rank).encode(), root_nonce + member_nonce)


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ExchangeTimeout(what)
    return left


def _read(sock: socket.socket, n: int, deadline: float, peer: str, bound: str) -> bytes:
    """Exactly `n` bytes from `sock` before `deadline` (memory grows only as bytes arrive);
    `bound` says what the deadline is, for the error."""
    buffer = bytearray()
    while len(buffer) < n:
        late = f"{peer} sent {'an incomplete message' if buffer else 'nothing'} {bound}"
        sock.settimeout(_remaining(deadline, late))
        try:
            chunk = sock.recv(min(n - len(buffer), 1 << 20))
        except TimeoutError as e:
            raise ExchangeTimeout(late) from e
        except OSError as e:
            raise ExchangeError(f"{peer} lost its connection ({e.strerror or e})") from e
        if not chunk:
            raise ExchangeError(f"{peer} closed its connection")
        buffer += chunk
    return bytes(buffer)


def _write(sock: socket.socket, data: bytes, deadline: float, peer: str, bound: str) -> None:
    late = f"{peer} took no message {bound}"
    sock.settimeout(_remaining(deadline, late))
    try:
        sock.sendall(data)
    except TimeoutError as e:
        raise ExchangeTimeout(late) from e
    except OSError as e:
        raise ExchangeError(f"{peer} lost its connection ({e.strerror or e})") from e


class Channel:
    """One authenticated, encrypted connection between this task and task `peer`."""

    def __init__(self, sock: socket.socket, key: bytes, me: int, peer: int, timeout: float):
        self.sock, self.me, self.peer, self.timeout = sock, me, peer, timeout
        self.cipher = AESGCM(key)
        self.sent = self.received = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def send(self, value: Any) -> None:
        seq, self.sent = self.sent, self.sent + 1
        body = self.cipher.encrypt(
            _nonce(self.me, seq), wire.encode(value), _associated(self.me, self.peer, seq)
        )
        frame = FRAME.pack(seq, len(body)) + body
        deadline = time.monotonic() + self.timeout
        _write(self.sock, frame, deadline, _task(self.peer), f"within {self.timeout} s")

    def recv(self) -> Any:
        peer = _task(self.peer)
        deadline = time.monotonic() + self.timeout
        bound = f"within {self.timeout} s"
        seq, n = FRAME.unpack(_read(self.sock, FRAME.size, deadline, peer, bound))
        if seq != self.received:
            raise ExchangeError(
                f"{peer} sent message {seq} where {self.received} was due (replayed or reordered)"
            )
        body = _read(self.sock, n, deadline, peer, bound)
        try:
            plain = self.cipher.decrypt(
                _nonce(self.peer, seq), body, _associated(self.peer, self.me, seq)
            )
        except InvalidTag as e:
            raise ExchangeError(f"a message from {peer} failed authentication") from e
        self.received += 1
        return wire.decode(plain)


def _nonce(sender: int, seq: int) -> bytes:
    """The GCM nonce: the sender (the direction on a connection) and sequence number."""
    return struct.pack(">IQ", sender, seq)


def _associated(sender: int, receiver: int, seq: int) -> bytes:
    return MAGIC + struct.pack(">IIQ", sender, receiver, seq)


def _answer_handshake(sock: socket.socket, job_key: bytes, size: int, deadline: float):
    """The root's side of the handshake on a new connection: the member's rank and the
    connection's key. Raises OSError (ExchangeError, ExchangeTimeout) if it fails."""
    peer, bound = "a connecting task", "in time for the handshake"
    ours = secrets.token_bytes(NONCE_BYTES)
    _write(sock, MAGIC + ours, deadline, peer, bound)
    reply = _read(sock, 4 + NONCE_BYTES + PROOF_BYTES, deadline, peer, bound)
    rank, theirs = int.from_bytes(reply[:4], "big"), reply[4 : 4 + NONCE_BYTES]
    expected = _proof(job_key, b"member", ours, theirs, rank)
    if not hmac.compare_digest(reply[4 + NONCE_BYTES :], expected):
        raise ExchangeError("it failed authentication")
    if not ROOT < rank < size:
        raise ExchangeError(f"it claimed rank {rank} of a {size}-task job")
    _write(sock, _proof(job_key, b"root", ours, theirs, rank), deadline, peer, bound)
    return rank, _session_key(job_key, ours, theirs, rank)


def _make_handshake(sock: socket.socket, job_key: bytes, rank: int, deadline: float) -> bytes:
    """A member's side of the handshake with the root: the connection's key."""
    root, bound = _task(ROOT), "in time for the handshake"
    greeting = _read(sock, len(MAGIC) + NONCE_BYTES, deadline, root, bound)
    if not greeting.startswith(MAGIC):
        raise ExchangeError(f"{root}'s address answered with something else than the exchange")
    theirs, ours = greeting[len(MAGIC) :], secrets.token_bytes(NONCE_BYTES)
    proof = _proof(job_key, b"member", theirs, ours, rank)
    _write(sock, rank.to_bytes(4, "big") + ours + proof, deadline, root, bound)
    if not hmac.compare_digest(
        _read(sock, PROOF_BYTES, deadline, root, bound),
        _proof(job_key, b"root", theirs, ours, rank),
    ):
        raise ExchangeError(f"{root} failed authentication")
    return _session_key(job_key, theirs, ours, rank)


def _host_of(address: str) -> str:
    """The host of a task info's "host:port" (an IPv6 host may be in brackets)."""
    return address.rsplit(":", 1)[0].strip("[]")


def _listen_on(host: str) -> socket.socket:
    error: OSError = OSError(f"{host} resolves to no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.bind(address)
            sock.listen()
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error


class TaskExchange:
    """The root's or a member's side of the exchange; use as a context manager.

    `job_key`: a random secret shared by the job's tasks only (32 bytes); `timeout`: the
    bound in seconds on connecting and on every message."""

    def __init__(self, context, job_key: bytes, timeout: float):
        self.context = context
        self.rank = context.partitionId()
        self.size = len(context.getTaskInfos())
        self.timeout = timeout
        self.job_key = job_key
        self.peers: list[Channel] = []
        self.root: Channel | None = None
        self.listener: socket.socket | None = None

    def __enter__(self) -> TaskExchange:
        try:
            self._connect()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for c in self.peers:
            c.close()
        if self.root is not None:
            self.root.close()
        if self.listener is not None:
            self.listener.close()

    def _connect(self) -> None:
        address = ("", 0)
        if self.rank == ROOT and self.size > 1:
            self.listener = self._listen()
            address = self.listener.getsockname()[:2]
        messages = self.context.allGather(
            json.dumps({"rank": self.rank, "host": address[0], "port": address[1]})
        )
        if self.size == 1:
            return
        if self.rank == ROOT:
            self._accept_members()
            return
        root = next(m for m in map(json.loads, messages) if m["rank"] == ROOT)
        self.root = self._connect_to(root["host"], root["port"])

    def _listen(self) -> socket.socket:
        hosts = [_host_of(t.address) for t in self.context.getTaskInfos()]
        try:
            return _listen_on(hosts[ROOT])
        except OSError as e:
            if any(h != hosts[ROOT] for h in hosts):
                raise ExchangeError(
                    f"the root task cannot listen on its host address {hosts[ROOT]} ({e})"
                ) from e
            log.info(
                "barrier exchange: cannot listen on %s (%s); every task runs on this host, "
                "so listening on loopback",
                hosts[ROOT],
                e,
            )
            return _listen_on("127.0.0.1")

    def _accept_members(self) -> None:
        """Accept until every member has authenticated; strays are dropped and logged."""
        if self.listener is None:
            raise RuntimeError("the root accepts members only once it listens")
        deadline = time.monotonic() + self.timeout
        channels: dict[int, Channel] = {}
        while len(channels) < self.size - 1:
            missing = sorted(set(range(1, self.size)) - set(channels))
            late = f"barrier tasks {missing} did not connect within {self.timeout} s"
            self.listener.settimeout(_remaining(deadline, late))
            try:
                sock, (host, *_) = self.listener.accept()
            except TimeoutError as e:
                raise ExchangeTimeout(late) from e
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                handshake_by = min(deadline, time.monotonic() + HANDSHAKE_SECONDS)
                rank, key = _answer_handshake(sock, self.job_key, self.size, handshake_by)
                if rank in channels:
                    raise ExchangeError(f"task {rank} is already connected")
            except OSError as e:
                log.warning("barrier exchange: dropped a connection from %s: %s", host, e)
                sock.close()
                continue
            channels[rank] = Channel(sock, key, ROOT, rank, self.timeout)
        self.peers = [channels[r] for r in sorted(channels)]

    def _connect_to(self, host: str, port: int) -> Channel:
        deadline = time.monotonic() + self.timeout
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        except TimeoutError as e:
            raise ExchangeTimeout(f"could not connect to the root task at {host}:{port}") from e
        except OSError as e:
            raise ExchangeError(f"cannot connect to the root task at {host}:{port}: {e}") from e
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = _make_handshake(sock, self.job_key, self.rank, deadline)
        except BaseException:
            sock.close()
            raise
        return Channel(sock, key, self.rank, ROOT, self.timeout)

    def gather_merge(self, parts: list[tuple[int, Any]], merge: Callable[[T, T], T]) -> T:
        """Merge every task's (block index, value) pairs in block order; all get the total."""
        if self.rank == ROOT:
            everything = list(parts)
            for c in self.peers:
                everything.extend(c.recv())
            everything.sort(key=lambda p: p[0])
            total = functools.reduce(merge, (v for _, v in everything))
            for c in self.peers:
                c.send(total)
            return total
        if self.root is None:
            raise RuntimeError(f"barrier task {self.rank} is not connected to the root")
        self.root.send(parts)
        return self.root.recv()


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
