"""The barrier exchange's cost per sweep: the real messages of a two-task chain encoded and
decoded (wire) and sealed and opened (AES-256-GCM), beside HMAC-SHA256 alone (what
authentication without encryption would cost) and the pickle the exchange used before.

The messages are recorded from an in-process run of the reference workload (m = 1,
maxit = 2; every reduce's per-block values and total) and laid out as the barrier engine
lays them out on two tasks: task 1 sends its blocks' values (odd blocks), the root sends
back the total. Sweep 2 is reported (warm-started Newton steps, as every later sweep);
the observed-value pools are exchanged once per chain and reported apart.

Usage: python benchmarks/exchange_cost.py [ROWS]   (default 10^6)
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

import sparkmice  # noqa: E402
from sparkmice import sampler  # noqa: E402
from sparkmice.datasets import make_mar  # noqa: E402
from sparkmice.engines import inprocess, wire  # noqa: E402


def record_messages(rows: int) -> dict[str, list]:
    """The messages of each phase ("pools", "sweep 1", "sweep 2") of a two-task chain."""
    phases: dict[str, list] = {"pools": []}
    current = ["pools"]
    real_reduce, real_fill = inprocess.LocalBlocks.reduce, sampler.Chain.fill
    real_trace = sampler.Chain.record_trace

    def reduce(self, fn, merge):
        values = [fn(b) for b in self.blocks]
        total = functools.reduce(merge, values)
        member = [(b.index, v) for b, v in zip(self.blocks, values, strict=True) if b.index % 2]
        phases[current[0]].extend([member, total])
        return total

    def fill(self, blocks):
        current[0] = "sweep 1"
        phases["sweep 1"] = []
        return real_fill(self, blocks)

    def record_trace(self, blocks, it):
        rows_ = real_trace(self, blocks, it)
        current[0] = f"sweep {it + 1}"
        phases[current[0]] = []
        return rows_

    inprocess.LocalBlocks.reduce, sampler.Chain.fill = reduce, fill
    sampler.Chain.record_trace = record_trace
    try:
        sparkmice.mice(make_mar(rows, seed=1), m=1, maxit=2, seed=1)
    finally:
        inprocess.LocalBlocks.reduce, sampler.Chain.fill = real_reduce, real_fill
        sampler.Chain.record_trace = real_trace
    return phases


def milliseconds(messages: list, round_trips: list) -> list[float]:
    """Per way of sending: the median over 51 repetitions of the time to send and receive
    all `messages` (the ways interleaved, so that a busy machine slows each alike)."""
    times: list[list[float]] = [[] for _ in round_trips]
    for _ in range(51):
        for way, round_trip in zip(times, round_trips, strict=True):
            t0 = time.perf_counter()
            for m in messages:
                round_trip(m)
            way.append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def main(rows: int) -> None:
    phases = record_messages(rows)
    cipher, mac_key = AESGCM(os.urandom(32)), os.urandom(32)
    aad, nonce = b"sparkmice-exchange-1" + bytes(16), bytes(12)

    def codec(m):
        wire.decode(wire.encode(m))

    def aes_gcm(plain):
        cipher.decrypt(nonce, cipher.encrypt(nonce, plain, aad), aad)

    def hmac_sha256(plain):
        tag = hmac.new(mac_key, aad + plain, hashlib.sha256).digest()
        hmac.compare_digest(tag, hmac.new(mac_key, aad + plain, hashlib.sha256).digest())

    def old_pickle(m):
        pickle.loads(pickle.dumps(m))

    print(f"rows {rows}; {os.cpu_count()} cores")
    print(
        "phase | messages | bytes | codec (encode+decode) | AES-256-GCM (seal+open) "
        "| HMAC-SHA256 (sign+verify) | pickle (dumps+loads)"
    )
    for name in ("pools", "sweep 2"):
        msgs = phases[name]
        plains = [wire.encode(m) for m in msgs]
        (ms_codec, ms_pickle), (ms_aes, ms_hmac) = (
            milliseconds(msgs, [codec, old_pickle]),
            milliseconds(plains, [aes_gcm, hmac_sha256]),
        )
        cells = [ms_codec, ms_aes, ms_hmac, ms_pickle]
        print(
            f"{name} | {len(msgs)} | {sum(map(len, plains))} | "
            + " | ".join(f"{c:.2f} ms" for c in cells)
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
