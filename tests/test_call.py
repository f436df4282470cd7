"""One marked call: once per key across threads and tasks, async, crashes, processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import beautyspot as bs

SRC = str(Path(bs.__file__).parents[1])


def test_eight_threads_on_one_missing_key_run_the_body_once(spot: bs.Spot):
    runs = []
    gate = threading.Barrier(8)

    @spot.mark
    def slow(x):
        runs.append(x)
        time.sleep(0.3)
        return [x, "done"]

    results: list[object] = []

    def worker():
        gate.wait()
        results.append(slow(1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [1]
    assert results == [[1, "done"]] * 8
    # each caller owns its copy: mutating one result cannot touch another or the cache
    assert len({id(r) for r in results}) == 8


def test_threads_waiting_on_a_failing_leader_get_its_exception(spot: bs.Spot):
    runs = []
    gate = threading.Barrier(4)

    @spot.mark
    def bad():
        runs.append(1)
        time.sleep(0.2)
        raise RuntimeError("no")

    errors = []

    def worker():
        gate.wait()
        try:
            bad()
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and errors == ["no"] * 4
    assert not bad.is_cached()


def test_async_functions_are_awaited_and_cached(spot: bs.Spot):
    runs = []

    @spot.mark
    async def fetch(x):
        runs.append(x)
        await asyncio.sleep(0.01)
        return {"x": x}

    assert asyncio.iscoroutinefunction(fetch)

    async def main():
        first = await fetch(1)
        second = await fetch(1)
        return first, second

    assert asyncio.run(main()) == ({"x": 1}, {"x": 1})
    assert runs == [1]


def test_concurrent_tasks_on_one_key_run_once_and_the_loop_keeps_running(spot: bs.Spot):
    runs = []

    @spot.mark
    async def fetch(x):
        runs.append(x)
        await asyncio.sleep(0.2)
        return x * 10

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(ticker())
        results = await asyncio.gather(*(fetch(3) for _ in range(10)), fetch(4))
        beat.cancel()
        return results, ticks

    results, ticks = asyncio.run(main())
    assert results == [30] * 10 + [40]
    assert sorted(runs) == [3, 4]
    assert ticks >= 5  # the loop was free while the calls waited


def test_a_cancelled_leader_lets_a_waiting_task_take_over(spot: bs.Spot):
    runs = []

    @spot.mark
    async def fetch(x):
        runs.append(x)
        await asyncio.sleep(0.2)
        return x

    async def main():
        leader = asyncio.create_task(fetch(1))
        await asyncio.sleep(0.05)
        follower = asyncio.create_task(fetch(1))
        await asyncio.sleep(0.05)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await asyncio.wait_for(follower, 5)

    assert asyncio.run(main()) == 1
    assert runs == [1, 1]
    assert fetch.is_cached(1)


def test_async_exception_is_recorded_and_not_cached(spot: bs.Spot):
    @spot.mark
    async def bad(x):
        raise KeyError(x)

    with pytest.raises(KeyError):
        asyncio.run(bad("k"))
    assert spot.db.get_failures(1)[0]["error_type"] == "KeyError"
    assert not bad.is_cached("k")


def _write_keys(db_path: str, start: int, count: int, barrier) -> int:
    spot = bs.Spot("race", db=db_path)

    @spot.mark
    def ident(i):
        return i

    barrier.wait()
    for i in range(start, start + count):
        assert ident(i) == i
    return count


def test_two_processes_fill_a_brand_new_db_without_errors_or_losses(tmp_path: Path):
    db_path = str(tmp_path / "fresh.db")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            done = pool.starmap(
                _write_keys, [(db_path, 0, 500, barrier), (db_path, 500, 500, barrier)]
            )
    assert done == [500, 500]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1000


CRASH_CHILD = textwrap.dedent(
    """
    import os, beautyspot as bs
    spot = bs.Spot("crash", db=os.environ["DB"], blob_threshold=64)
    executed = []

    @spot.mark
    def payload(i):
        executed.append(i)
        return ("v" * (i % 200), i)

    if __name__ == "__main__":
        i = 0
        while True:
            payload(i)
            print(i, flush=True)
            i += 1
    """
)


@pytest.mark.slow
def test_a_killed_writer_leaves_a_sound_db_serving_every_committed_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "crash_child.py").write_text(CRASH_CHILD)
    db_path = tmp_path / "crash.db"
    monkeypatch.setenv("DB", str(db_path))
    child = subprocess.Popen(
        [sys.executable, "crash_child.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    committed = []
    assert child.stdout is not None
    for line in child.stdout:
        committed.append(int(line))
        if len(committed) >= 300:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    monkeypatch.syspath_prepend(str(tmp_path))
    import crash_child  # the same function identity as the killed script's

    for i in committed:
        assert crash_child.payload(i) == ("v" * (i % 200), i)
    assert crash_child.executed == []  # every reported result was served, none recomputed


MAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, beautyspot as bs
    spot = bs.Spot("ident", db=os.environ["DB"])

    @spot.mark
    def work(x):
        with open(os.environ["LOG"], "a") as log:
            log.write(f"{x}\\n")
        return x + 1

    if __name__ == "__main__":
        print(work(41))
    """
)


def test_running_a_script_and_importing_it_share_keys(tmp_path: Path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(MAIN_SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "DB": str(tmp_path / "ident.db"),
        "LOG": str(tmp_path / "log"),
    }
    run = subprocess.run(
        [sys.executable, "pkg/job.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.stdout.strip() == "42", run.stderr
    imported = subprocess.run(
        [sys.executable, "-c", "from pkg.job import work; print(work(41))"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}"},
        capture_output=True,
        text=True,
    )
    assert imported.stdout.strip() == "42", imported.stderr
    assert (tmp_path / "log").read_text() == "41\n"  # computed once, by the script run
