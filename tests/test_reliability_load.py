"""Load: 4 processes x 8 threads on overlapping keys of one cache, for 30 s.

Zero errors (a BeautyspotWarning counts as one: a failed save or a bad read), zero wrong results
(each checked against the pure function), and no key computed twice by one process. The keys come
from a window that slides with time, so misses and races on fresh keys go on for the whole run,
not only at the start. ``BEAUTYSPOT_LOAD_SECONDS`` shortens or lengthens the run.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs

pytestmark = pytest.mark.slow

PROCESSES, THREADS = 4, 8
SECONDS = float(os.environ.get("BEAUTYSPOT_LOAD_SECONDS", "30"))
WINDOW, SLIDE_PER_SECOND = 200, 40  # keys in play at once; how fast new keys come in

_executions: collections.Counter[int] = collections.Counter()
_executions_lock = threading.Lock()


def expected(i: int) -> dict[str, Any]:
    """The pure function under the cache; one input in seven has a result stored as a blob."""
    return {"i": i, "digest": hashlib.sha256(b"%d" % i).hexdigest(), "pad": "x" * (i % 7) * 6000}


def paid_work(i: int) -> dict[str, Any]:
    with _executions_lock:
        _executions[i] += 1
    time.sleep(0.005)  # a call worth caching: widens the window in which callers race
    return expected(i)


def hammer(db_path: str, seed: int, start: Any, results: Any) -> None:
    """One process: THREADS threads calling the marked function until the time is up."""
    warnings.simplefilter("error", bs.BeautyspotWarning)  # a warning is an error here
    spot = bs.Spot("load", db=db_path, blob_threshold=32 * 1024)
    work = spot.mark(paid_work)
    start.wait(timeout=120)
    began = time.monotonic()
    deadline = began + SECONDS
    tally = collections.Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def thread(number: int) -> None:
        rng = random.Random(seed * 100 + number)
        calls = wrong = 0
        while (now := time.monotonic()) < deadline:
            low = int((now - began) * SLIDE_PER_SECOND)
            i = rng.randrange(low, low + WINDOW)
            try:
                wrong += work(i) != expected(i)
            except Exception as error:
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
            calls += 1
        with lock:
            tally.update(calls=calls, wrong=wrong)

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(THREADS)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    spot.close()
    results.put(
        {
            "calls": tally["calls"],
            "wrong": tally["wrong"],
            "errors": errors[:5],
            "error_count": len(errors),
            "seconds": time.monotonic() - began,
            "computed": len(_executions),
            "twice": sorted(i for i, n in _executions.items() if n > 1)[:10],
        }
    )


def test_many_processes_and_threads_on_overlapping_keys(spawn: Any, tmp_path: Path) -> None:
    db_path = str(tmp_path / "load.db")
    start, results = spawn.Barrier(PROCESSES), spawn.Queue()
    workers = [
        spawn.Process(target=hammer, args=(db_path, seed, start, results))
        for seed in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        reports = [results.get(timeout=SECONDS + 180) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            worker.kill()
    calls = sum(report["calls"] for report in reports)
    seconds = max(report["seconds"] for report in reports)
    computed = [report["computed"] for report in reports]
    print(
        f"\nload: {PROCESSES} processes x {THREADS} threads, {calls} calls in {seconds:.1f} s "
        f"= {calls / seconds:.0f} calls/s; results computed per process: {computed}"
    )
    assert [report["errors"] for report in reports] == [[]] * PROCESSES
    assert sum(report["wrong"] for report in reports) == 0
    assert [report["twice"] for report in reports] == [[]] * PROCESSES
    assert all(report["calls"] > report["computed"] > 0 for report in reports)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    conn.close()
    assert stored >= max(computed)
