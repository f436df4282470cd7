"""Spots and marked functions travel to other processes by configuration (DESIGN.md §8):
process pools and a real Dask cluster with worker processes run marked functions, a second run
computes nothing, and the parent sees every record."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from tests.conftest import service_unavailable

import beautyspot as bs
from beautyspot.db import taskdb_from
from beautyspot.limiter import Limiter

SRC = str(Path(bs.__file__).resolve().parents[1])

DASK_JOB = textwrap.dedent(
    """
    import os
    import beautyspot as bs
    from dask.distributed import Client, LocalCluster

    spot = bs.Spot("dask", db=os.environ["DB"])

    @spot.mark(version=os.environ["RUN"])  # a version of its own: fresh keys on a shared server
    def square(x):
        with open(os.environ["LOG"], "a") as log:
            log.write(f"{x} {os.getpid()}\\n")
        return x * x

    if __name__ == "__main__":
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, Client(cluster) as client:
            by_client = client.gather(client.map(square, range(10)))
            by_map = spot.map(
                square, range(5, 15), executor=client.get_executor(), workers=4, progress=False
            )
        cached = sum(square.is_cached(x) for x in range(15))
        print(by_client == [x * x for x in range(10)], by_map == [x * x for x in range(5, 15)],
              cached, os.getpid())
    """
)


def _run(script: Path, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env={**os.environ, "PYTHONPATH": SRC, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


REDIS_URL = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "BEAUTYSPOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _db_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return str(tmp_path / "dask.db")
    url = REDIS_URL if kind == "redis" else POSTGRES_URL
    try:
        db = taskdb_from(url)
        db.lookup("probe")
        db.close()
    except bs.StorageError as exc:
        service_unavailable(f"{kind} not reachable for the Dask test ({exc})")
    return url


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgresql"])
def test_a_dask_cluster_runs_marked_functions_of_a_script(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("dask.distributed")
    script = tmp_path / "job.py"
    script.write_text(DASK_JOB)
    log = tmp_path / "log"
    env = {"DB": _db_url(kind, tmp_path), "LOG": str(log), "RUN": uuid.uuid4().hex}
    by_client, by_map, cached, parent = _run(script, env)
    assert (by_client, by_map, cached) == ("True", "True", "15")
    computed = log.read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in computed) == list(range(15))
    assert parent not in {line.split()[1] for line in computed}  # computed by the workers
    assert _run(script, env)[:3] == ["True", "True", "15"]
    assert log.read_text().splitlines() == computed  # the second run computed nothing


def test_a_spot_pickles_by_configuration(tmp_path: Path) -> None:
    spot = bs.Spot(
        "p", db=tmp_path / "p.db", storage=tmp_path / "blobs", save_blob=True,
        retention="1d", limiter=Limiter(600, 5), memory_cache=10,
    )  # fmt: skip

    @spot.mark
    def f(x: int) -> int:
        return x + 1

    f(1)
    copy = pickle.loads(pickle.dumps(spot))
    assert type(copy) is bs.Spot and copy.name == "p"
    assert copy.db.path == spot.db.path and copy.storage.root == spot.storage.root
    assert (copy.save_blob, copy.retention_seconds) == (True, 86400)
    assert repr(copy._limiter) == "Limiter(tpm=600, burst=5)"
    assert copy.memory is not None and copy.memory.max_entries == 10 and len(copy.memory) == 0
    assert copy.mark(f.__wrapped__)(1) == 2 and copy.mark(f.__wrapped__).is_cached(1)


def test_registrations_travel_with_the_serializer(tmp_path: Path) -> None:
    spot = bs.Spot("r", db=tmp_path / "r.db")
    spot.register_type(Celsius, 3, encoder=celsius_encode, decoder=Celsius)
    copy = pickle.loads(pickle.dumps(spot))
    assert copy.serializer.loads(spot.serializer.dumps(Celsius(21.5))).degrees == 21.5


class Celsius:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees


def celsius_encode(value: Celsius) -> float:
    return value.degrees


def test_a_marked_function_shipped_by_value_keeps_its_identity(tmp_path: Path) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")  # how Dask ships a script's functions
    spot = bs.Spot("i", db=tmp_path / "i.db")

    def triple(x: int) -> int:
        return x * 3

    marked = spot.mark(triple)
    assert marked(2) == 6
    copy = cloudpickle.loads(cloudpickle.dumps(marked))
    assert copy._marked_call.identity == marked._marked_call.identity
    assert copy.cache_key(2) == marked.cache_key(2) and copy.is_cached(2)
