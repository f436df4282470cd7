"""Batches end to end, in real processes: Ctrl-C, SIGKILL and a rate-limited paid API.

The API is examples/paid_api.py, served from this test process so its counters tell what each
run of examples/llm_batch.py (a subprocess) sent.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import beautyspot as bs
from beautyspot.db import SQLiteTaskDB

pytestmark = pytest.mark.slow

SRC = str(Path(bs.__file__).parents[1])
EXAMPLES = Path(__file__).parents[1] / "examples"


def python(*args: str, cwd: Path, **options: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True, **options)


@pytest.fixture
def paid_api(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("paid_api")


# -- Ctrl-C ----------------------------------------------------------------------------------

SLOW_BATCH = textwrap.dedent(
    """
    import time
    import beautyspot as bs

    spot = bs.Spot("slow")

    @spot.mark
    def slow(x):
        with open("runs.log", "a") as log:
            log.write(f"{x}\\n")
        time.sleep(0.05)
        return x

    results = slow.map(range(40), workers=2, progress=lambda p: print(p.done, flush=True))
    print("results", len(results), flush=True)
    """
)


def test_ctrl_c_stops_cleanly_and_a_rerun_runs_only_the_rest(tmp_path: Path):
    (tmp_path / "batch.py").write_text(SLOW_BATCH)
    first = python("batch.py", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.stdout is not None
    for line in first.stdout:
        if int(line) >= 6:
            first.send_signal(signal.SIGINT)
            break
    _, err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGINT  # KeyboardInterrupt went on, as Python's own
    summary = [line for line in err.splitlines() if line.startswith("beautyspot: map(slow)")]
    assert "interrupted" in summary[-1] and "Run the same code again" in summary[-1]
    ran_first = (tmp_path / "runs.log").read_text().split()
    assert f"{len(ran_first)} of 40 done" in summary[-1]  # every started item finished

    second = python("batch.py", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert out.splitlines()[-1] == "results 40"
    ran_second = (tmp_path / "runs.log").read_text().split()[len(ran_first) :]
    assert sorted(ran_first + ran_second, key=int) == [str(x) for x in range(40)]


# -- the paid API ----------------------------------------------------------------------------


def test_the_api_answers_429_to_a_client_that_does_not_pace_itself(paid_api: Any):
    statuses: Counter[int] = Counter()

    def hammer(worker: int) -> None:
        for n in range(25):
            request = urllib.request.Request(
                api.url + "/v1/complete", data=f'{{"prompt": "{worker}-{n}"}}'.encode()
            )
            try:
                with urllib.request.urlopen(request) as response:
                    statuses[response.status] += 1
            except urllib.error.HTTPError as exc:
                statuses[exc.code] += 1

    with paid_api.PaidAPI(failure_rate=0, latency=0) as api:
        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses[429] > 0 and statuses[200] >= 100
    assert api.statuses == statuses


def test_two_hundred_items_at_eight_workers_within_the_api_limit_get_no_429(
    paid_api: Any, tmp_path: Path
):
    with paid_api.PaidAPI() as api:
        run = python(
            str(EXAMPLES / "llm_batch.py"),
            "--server",
            api.url,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert out.startswith("200 answers")
    assert api.statuses[429] == 0
    assert api.statuses[503] > 0  # failures happened and were retried
    assert len(api.answered) == 200 and set(api.answered.values()) == {1}


def test_a_client_paced_ten_percent_over_the_limit_does_get_429(paid_api: Any, tmp_path: Path):
    # llm_batch paces at paid_api.REQUESTS_PER_MINUTE; this server admits 10% less.
    slower = paid_api.REQUESTS_PER_MINUTE / 1.1
    with paid_api.PaidAPI(requests_per_minute=slower, failure_rate=0) as api:
        run = python(
            str(EXAMPLES / "llm_batch.py"),
            *("--server", api.url, "--items", "150"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
        )
        run.communicate(timeout=60)
    assert run.returncode == 0  # the 429s were retried
    assert api.statuses[429] > 0


def test_a_batch_killed_half_way_reruns_only_the_unfinished_items(paid_api: Any, tmp_path: Path):
    script = str(EXAMPLES / "llm_batch.py")
    with paid_api.PaidAPI() as api:
        first = python(script, "--server", api.url, cwd=tmp_path, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while api.statuses[200] < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        saved = len(SQLiteTaskDB(tmp_path / "llm_batch.db").get_history(1000))
        assert 80 <= saved < 200
        before = api.requests.copy()

        second = python(script, "--server", api.url, cwd=tmp_path, stdout=subprocess.PIPE)
        second.communicate(timeout=60)
        assert second.returncode == 0

    sent_again = api.requests - before
    assert len(sent_again) == 200 - saved  # the unfinished items, and only them
    assert len(api.answered) == 200
    assert len(SQLiteTaskDB(tmp_path / "llm_batch.db").get_history(1000)) == 200
