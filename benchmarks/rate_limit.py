"""How well the GCRA limiters pace, and what one acquire costs.

For tpm = 600 and 6000, callers acquire cost 1 in a loop for ``--seconds`` (default 10) with
strict pacing, as 1 thread, 8 threads (one in-process :class:`Limiter`) and 4 processes (one
:class:`RedisLimiter` budget). Printed per run: the achieved rate over the target, and the most
calls seen in any 1-second window against the allowed ``limit + burst`` (burst is one call's cost
under strict pacing). Then the cost of one uncontended in-process acquire next to one SQLite
primary-key lookup, and of one shared acquire next to one Redis round trip (PING), measured in
the same run.

Run from the repository root (takes about 70 s; needs the Redis at ``--redis`` for the rows
that share a budget)::

    PYTHONPATH=src python benchmarks/rate_limit.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beautyspot.limiter import BaseLimiter, Limiter, RedisLimiter

TPMS = (600, 6000)
THREADS = 8
PROCESSES = 4
DEFAULT_REDIS = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def achieved_rate(stamps: list[float]) -> float:
    """Calls per second between the first and the last call (the first one is free)."""
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def busiest_window(stamps: list[float], width: float = 1.0) -> int:
    """The most calls that fall in any half-open window ``[t, t + width)``."""
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamps[first] <= stamp - width:
            first += 1
        most = max(most, last - first + 1)
    return most


def hammer(limiter: BaseLimiter, deadline: float, stamps: list[float]) -> None:
    while time.monotonic() < deadline:
        limiter.acquire()
        stamps.append(time.monotonic())


def run_threads(tpm: float, threads: int, seconds: float) -> list[float]:
    limiter = Limiter(tpm)
    stamps: list[float] = []
    deadline = time.monotonic() + seconds
    workers = [
        threading.Thread(target=hammer, args=(limiter, deadline, stamps)) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(stamps)


def redis_worker(url: str, key: str, tpm: float, go: Any, seconds: float, out: Any) -> None:
    limiter = RedisLimiter(url, tpm, key=key)
    stamps: list[float] = []
    go.wait()
    # CLOCK_MONOTONIC is one clock for every process on this machine, so stamps compare.
    hammer(limiter, time.monotonic() + seconds, stamps)
    out.put(stamps)


def run_processes(url: str, tpm: float, processes: int, seconds: float) -> list[float]:
    context = multiprocessing.get_context("spawn")
    go, out = context.Event(), context.Queue()
    key = f"beautyspot:bench:{uuid.uuid4().hex}"
    workers = [
        context.Process(target=redis_worker, args=(url, key, tpm, go, seconds, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # let every child import and connect before the clock starts
    go.set()
    stamps = sorted(stamp for _ in workers for stamp in out.get(timeout=seconds + 60))
    for worker in workers:
        worker.join()
    return stamps


def per_call_us(call: Callable[[], object], repeat: int) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - began) / repeat * 1e6


def sqlite_lookup(folder: str) -> Callable[[], object]:
    """A primary-key lookup like a cache hit's: 64-hex TEXT keys, 10 000 rows, one file."""
    db = sqlite3.connect(Path(folder) / "bench.db", check_same_thread=False)
    keys = [secrets.token_hex(32) for _ in range(10_000)]
    db.execute("CREATE TABLE tasks (cache_key TEXT PRIMARY KEY, result_data BLOB)")
    db.executemany("INSERT INTO tasks VALUES (?, ?)", ((key, b"x" * 64) for key in keys))
    db.commit()
    cursor, probe = db.cursor(), iter(keys * 100)
    return lambda: cursor.execute(
        "SELECT result_data FROM tasks WHERE cache_key = ?", (next(probe),)
    ).fetchone()


def redis_client(url: str) -> Any | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"(Redis at {url} unreachable: {exc}; shared rows skipped)")
        return None
    return client


def pacing_row(tpm: float, label: str, stamps: list[float]) -> str:
    target = tpm / 60
    allowed = target + 1  # limit + burst; strict pacing lets one call's cost through
    rate = achieved_rate(stamps) / target
    busiest = busiest_window(stamps)
    verdict = "ok" if abs(rate - 1) <= 0.01 and busiest <= allowed else "MISSED"
    return (
        f"{tpm:>6g}  {label:<22} {len(stamps):>6}  {rate:>11.4f}  "
        f"{busiest:>11}  {allowed:>7g}  {verdict}"
    )


def cost_row(label: str, us: float, reference: str, reference_us: float) -> str:
    return (
        f"{label:<32} {us:8.2f} us   {reference:<16} {reference_us:8.2f} us   "
        f"ratio {us / reference_us:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="URL of the shared Redis")
    args = parser.parse_args()
    client = redis_client(args.redis)

    print(f"{'tpm':>6}  {'callers':<22} {'calls':>6}  rate/target  busiest 1 s  allowed")
    for tpm in TPMS:
        print(pacing_row(tpm, "1 thread", run_threads(tpm, 1, args.seconds)))
        print(pacing_row(tpm, f"{THREADS} threads", run_threads(tpm, THREADS, args.seconds)))
        if client is not None:
            stamps = run_processes(args.redis, tpm, PROCESSES, args.seconds)
            print(pacing_row(tpm, f"{PROCESSES} processes (Redis)", stamps))

    # Rates high enough that no acquire waits, low enough that every one moves the state.
    in_process = per_call_us(Limiter(tpm=6e8).acquire, 200_000)
    with tempfile.TemporaryDirectory() as folder:
        sqlite = per_call_us(sqlite_lookup(folder), 200_000)
    print()
    print(cost_row("uncontended acquire, in-process", in_process, "SQLite PK lookup", sqlite))
    if client is not None:
        key = f"beautyspot:bench:{uuid.uuid4().hex}"
        shared = per_call_us(RedisLimiter(client, tpm=6e7, key=key).acquire, 5_000)
        client.delete(key)
        ping = per_call_us(client.ping, 5_000)
        print(cost_row("shared acquire, Redis", shared, "Redis PING", ping))


if __name__ == "__main__":
    main()
