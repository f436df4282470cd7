"""Crash safety: a batch SIGKILLed at random moments leaves a sound cache, and gc cleans up.

Covered elsewhere: one SIGKILL of an inline-only writer (test_call.py) and of a bare
SQLiteTaskDB writer (test_db_sqlite.py). Here a two-thread batch writing inline values and blobs
up to 2 MB is killed at seeded random moments, again and again on the same cache (so each run
also starts on what the last kill left), then at the two moments that leave garbage on purpose:
after a blob is saved but before its record, and before a temp file is renamed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.integrity import matches

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)"),
]

SRC = str(Path(bs.__file__).resolve().parents[1])
TRIALS = int(os.environ.get("BEAUTYSPOT_CRASH_TRIALS", "24"))
SEED = 20240602

BATCH = textwrap.dedent(
    """
    import os, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    import beautyspot as bs

    spot = bs.Spot("crash", db=os.environ["CRASH_DB"], blob_threshold=32 * 1024)
    SIZES = [10, 1_000, 40_000, 300_000, 2_000_000]
    EXECUTED = []

    def payload(i):
        return {"i": i, "data": bytes([i % 251]) * SIZES[i % len(SIZES)]}

    @spot.mark
    def step(i):
        EXECUTED.append(i)
        return payload(i)

    def pause_here(*args):
        print("paused", flush=True)
        time.sleep(120)

    def pause_after_blob_saved(key, data, save=spot.storage.save):
        save(key, data)
        pause_here()

    if __name__ == "__main__":
        start, pause = int(sys.argv[1]), os.environ.get("CRASH_PAUSE")
        if pause == "after-blob":
            spot.storage.save = pause_after_blob_saved
        elif pause == "before-rename":
            os.replace = pause_here
        lock = threading.Lock()

        def run(i):
            step(i)
            with lock:  # one write per line, so a kill never leaves half a number
                sys.stdout.write(f"{i}\\n")
                sys.stdout.flush()

        with ThreadPoolExecutor(2 if pause is None else 1) as pool:
            list(pool.map(run, range(start, start + 100_000)))
    """
)


class Batch:
    """One run of the batch script in a child process, reporting what it committed."""

    def __init__(self, folder: Path, start: int, pause: str | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": SRC, "CRASH_DB": str(folder / "crash.db")}
        if pause is not None:
            env["CRASH_PAUSE"] = pause
        self.process = subprocess.Popen(
            [sys.executable, "crash_batch.py", str(start)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.first_line = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            self.first_line.set()
        self.first_line.set()

    def kill(self) -> list[int]:
        """SIGKILL the child; the inputs it reported as done, in order."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.process.returncode == -signal.SIGKILL, self.process.stderr.read()
        stderr = self.process.stderr.read()
        assert "not saved" not in stderr and "Traceback" not in stderr, stderr
        return [int(line) for line in self.lines if line.strip().isdigit()]


@pytest.fixture
def batch_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The batch script, imported here too: its marked function has the same identity."""
    (tmp_path / "crash_batch.py").write_text(BATCH)
    monkeypatch.setenv("CRASH_DB", str(tmp_path / "crash.db"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import crash_batch

    yield crash_batch
    crash_batch.spot.close()
    del sys.modules["crash_batch"]


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return result


def records(path: Path) -> list[tuple[str, str, str | None, bytes | None, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT cache_key, result_type, result_value, result_data, checksum FROM tasks"
        ).fetchall()
    conn.close()
    return rows


def broken_records(spot: bs.Spot) -> list[str]:
    """Records whose stored bytes are missing or do not match their checksum."""
    broken = []
    for key, kind, location, data, checksum in records(spot.db.path):
        if kind == "blob":
            path = Path(spot.storage.root) / location
            data = path.read_bytes() if path.is_file() else None
        if data is None or not matches(checksum, data):
            broken.append(f"{key} ({kind})")
    return broken


def garbage(spot: bs.Spot) -> tuple[set[Path], set[Path]]:
    """(temp files, blob files no record points to) in the spot's blob folder."""
    root = Path(spot.storage.root)
    files = {path for path in root.rglob("*") if path.is_file()}
    temp = {path for path in files if path.name.startswith(".") and path.name.endswith(".tmp")}
    referenced = {root / row[2] for row in records(spot.db.path) if row[1] == "blob"}
    return temp, files - temp - referenced


def assert_served(module: Any, committed: list[int]) -> None:
    """Every committed input comes back from the cache, exactly, without running again."""
    for i in committed:
        assert module.step(i) == module.payload(i)
    assert module.EXECUTED == []


def run_killed_at_random(folder: Path, rng: random.Random, start: int) -> list[int]:
    batch = Batch(folder, start)
    if rng.random() < 0.15:  # now and then, during start-up: imports, opening the DB
        time.sleep(rng.uniform(0.0, 0.4))
    else:
        assert batch.first_line.wait(60), "the batch never reported a result"
        time.sleep(rng.uniform(0.0, 0.6))
    return batch.kill()


def run_killed_at_pause(folder: Path, start: int, pause: str) -> list[int]:
    batch = Batch(folder, start, pause)
    deadline = time.monotonic() + 60
    while "paused\n" not in batch.lines:
        assert time.monotonic() < deadline and batch.process.poll() is None, "no pause"
        time.sleep(0.01)
    return batch.kill()


def test_random_kills_never_corrupt_or_lose_a_committed_result_and_gc_cleans_up(
    tmp_path: Path, batch_module: Any
) -> None:
    rng = random.Random(SEED)
    spot: bs.Spot = batch_module.spot
    all_committed: list[int] = []
    seen_temp: set[Path] = set()
    seen_orphans: set[Path] = set()
    for trial in range(TRIALS):
        committed = run_killed_at_random(tmp_path, rng, start=trial * 40)
        assert integrity(spot.db.path) == "ok", f"trial {trial}"
        assert broken_records(spot) == [], f"trial {trial}"
        assert_served(batch_module, committed)
        all_committed += committed
        temp, orphans = garbage(spot)
        seen_temp |= temp
        seen_orphans |= orphans
    # The two moments that must leave garbage, made certain instead of left to chance.
    fresh_blob_input = 1_000_003  # never computed yet; SIZES[3]: a 300 kB result, a blob
    run_killed_at_pause(tmp_path, fresh_blob_input, "after-blob")
    run_killed_at_pause(tmp_path, fresh_blob_input + 5, "before-rename")
    temp, orphans = garbage(spot)
    assert temp and orphans
    orphan_bytes = sum(path.stat().st_size for path in orphans)
    assert integrity(spot.db.path) == "ok" and broken_records(spot) == []

    assert spot.gc().orphan_blobs == 0  # all fresh: they could be saves in flight
    report = spot.gc(older_than=0)

    assert (report.temp_files, report.orphan_blobs) == (len(temp), len(orphans))
    assert report.bytes_freed == orphan_bytes
    assert garbage(spot) == (set(), set())
    assert_served(batch_module, all_committed)
    print(
        f"\ncrash: {TRIALS + 2} kills, {len(all_committed)} committed results all served; "
        f"garbage seen after random kills: {len(seen_temp)} temp files, {len(seen_orphans)} "
        f"orphan blobs; gc removed {report}"
    )
