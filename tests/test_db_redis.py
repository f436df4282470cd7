"""RedisTaskDB against a real server: the contract, Spots by URL, expiry, outages, pickling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import service_unavailable

import beautyspot as bs
from beautyspot.db import taskdb_from
from beautyspot.db.base import FailureRecord, TaskRecord
from beautyspot.db.redis import RedisTaskDB
from beautyspot.errors import ConfigurationError, StorageError
from beautyspot.testing import (
    FullTaskDBContract,
    LeaseTaskDBContract,
    StatsTaskDBContract,
)

REDIS_URL = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "hunter2-s3cret"

pytestmark = pytest.mark.redis


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A plain redis-py client on the test database, to look behind the backend's back."""
    import redis

    admin = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        admin.ping()
    except redis.RedisError as exc:
        service_unavailable(
            f"Redis not reachable at {REDIS_URL} ({exc}); set BEAUTYSPOT_TEST_REDIS_URL"
        )
    yield admin
    admin.close()


@pytest.fixture
def namespaces(client: Any) -> Iterator[Callable[[], str]]:
    """Fresh namespaces, one a call; every key under them is removed afterwards."""
    made: list[str] = []

    def fresh() -> str:
        made.append(f"test-{uuid.uuid4().hex}")
        return made[-1]

    yield fresh
    for name in made:
        keys = list(client.scan_iter(match=f"beautyspot:{name}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def namespace(namespaces: Callable[[], str]) -> str:
    return namespaces()


@pytest.fixture
def db(namespace: str) -> Iterator[RedisTaskDB]:
    opened = RedisTaskDB.from_url(REDIS_URL, namespace=namespace)
    opened.init_schema()
    yield opened
    opened.close()


class TestRedisTaskDBContract(FullTaskDBContract, LeaseTaskDBContract, StatsTaskDBContract):
    @pytest.fixture
    def taskdb(self, namespace: str) -> Iterator[RedisTaskDB]:
        opened = RedisTaskDB.from_url(REDIS_URL, namespace=namespace)
        yield opened
        opened.close()


# -- helpers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def url_with(port: int, query: str = "") -> str:
    """REDIS_URL's database through 127.0.0.1:``port``, with a password in it."""
    database = REDIS_URL.rsplit("/", 1)[1].partition("?")[0] or "0"
    return f"redis://:{SECRET}@127.0.0.1:{port}/{database}{query}"


def inline(key: str, data: bytes = b"data", **fields: Any) -> TaskRecord:
    return TaskRecord(key, "pkg.fn", f"in-{key}", None, "inline", None, None, data, **fields)


def everything_said(error: BaseException) -> str:
    """The error as a user or a log would see it: message, chain and traceback."""
    return "".join(traceback.format_exception(error))


class Proxy:
    """A TCP forwarder to the Redis server that a test can stop, start again, or stall."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.flowing = threading.Event()
        self.flowing.set()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, like a server that went away."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(client: Any) -> Iterator[Proxy]:
    kwargs = client.connection_pool.connection_kwargs
    forwarder = Proxy((kwargs.get("host", "localhost"), kwargs.get("port", 6379)))
    forwarder.start()
    yield forwarder
    forwarder.flowing.set()
    forwarder.stop()


class Counter:
    """Counts executions; not part of any key."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __beautyspot_key__(self) -> None:
        return None


def squares(spot: bs.Spot, counter: Counter, **options: Any) -> Callable[[int], int]:
    """The same marked function, for any Spot."""

    @spot.mark(**options)
    def square(x: int) -> int:
        counter.calls.append(x)
        return x * x

    return square


# -- Spots by URL -----------------------------------------------------------------------------


def test_spots_share_records_by_url_and_name(workdir: Path, namespaces: Callable[[], str]):
    name, other_name = namespaces(), namespaces()
    counter = Counter()
    first = bs.Spot(name, db=REDIS_URL)
    assert isinstance(first.db, RedisTaskDB) and first.db.namespace == name
    assert squares(first, counter)(7) == 49
    assert squares(first, counter)(7) == 49
    assert counter.calls == [7]

    second = bs.Spot(name, db=REDIS_URL)  # another process or host would do the same
    assert squares(second, counter)(7) == 49
    assert counter.calls == [7]

    other = bs.Spot(other_name, db=REDIS_URL)
    assert squares(other, counter)(7) == 49
    assert counter.calls == [7, 7]
    assert other.db.count() == 1 and first.db.count() == 1
    for spot in (first, second, other):
        spot.close()


def test_a_lease_in_redis_lets_one_of_two_spots_compute(workdir: Path, namespace: str):
    counter = Counter()
    spots = [bs.Spot(namespace, db=REDIS_URL) for _ in range(2)]  # as two hosts would

    def slow_square(spot: bs.Spot) -> Callable[[int], int]:
        @spot.mark(lease=5)
        def square(x: int) -> int:
            counter.calls.append(x)
            time.sleep(0.3)
            return x * x

        return square

    functions = [slow_square(spot) for spot in spots]
    results: list[int] = []
    threads = [threading.Thread(target=lambda f=f: results.append(f(6))) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [36, 36] and counter.calls == [6]
    for spot in spots:
        spot.close()


def test_async_functions_read_redis_off_the_event_loop(workdir: Path, namespace: str):
    spot = bs.Spot(namespace, db=REDIS_URL)
    assert spot.db.local_reads is False
    counter = Counter()

    @spot.mark
    async def double(x: int) -> int:
        counter.calls.append(x)
        return 2 * x

    assert asyncio.run(double(21)) == 42
    assert asyncio.run(double(21)) == 42
    assert counter.calls == [21]
    spot.close()


def test_blob_results_are_listed_for_garbage_collection(workdir: Path, namespace: str):
    spot = bs.Spot(namespace, db=REDIS_URL, save_blob=True)
    counter = Counter()
    assert squares(spot, counter)(3) == 9
    assert squares(spot, counter)(3) == 9
    assert counter.calls == [3]
    (location,) = spot.db.iter_blob_locations()
    assert location in set(spot.storage.iter_locations())
    assert spot.gc(older_than=0).orphan_blobs == 0
    assert squares(spot, counter)(3) == 9 and counter.calls == [3]
    spot.close()


def test_url_registry_picks_redis_for_both_schemes(workdir: Path, namespace: str):
    spot = bs.Spot(namespace, db=REDIS_URL)
    assert isinstance(spot.db, RedisTaskDB)
    spot.close()
    tls = taskdb_from(f"rediss://:{SECRET}@cache.example:6380/2", namespace="tls")  # no I/O yet
    assert isinstance(tls, RedisTaskDB)
    assert repr(tls) == "RedisTaskDB('rediss://:***@cache.example:6380/2', namespace='tls')"
    assert tls._pool.connection_class.__name__ == "SSLConnection"


# -- expiry -----------------------------------------------------------------------------------


def test_retention_becomes_a_server_expiry(workdir: Path, namespace: str, client: Any):
    spot = bs.Spot(namespace, db=REDIS_URL)
    square = squares(spot, Counter(), retention="1h")
    square(2)
    record_key = f"beautyspot:{namespace}:r:{square.cache_key(2)}"
    assert 3_598_000 < client.pttl(record_key) <= 3_600_001  # ms, rounded up
    squares(spot, Counter())(3)  # no retention: no expiry
    assert client.pttl(f"beautyspot:{namespace}:r:{square.cache_key(3)}") == -1
    spot.close()


def test_the_server_drops_expired_records_and_delete_expired_prunes_the_rest(
    db: RedisTaskDB, client: Any, namespace: str
):
    soon = time.time() + 0.3
    db.save_record(inline("brief", expires_at=soon))
    db.save_record(inline("kept"))
    db.save_record(TaskRecord("blob", "fn", "in", None, "blob", None, "ab/ab1", expires_at=soon))
    assert db.lookup("brief") is not None and db.count() == 3
    time.sleep(0.45)
    assert db.get("brief") is None and db.lookup("blob") is None  # gone from the server
    assert db.count() == 1
    assert [record["cache_key"] for record in db.get_history()] == ["kept"]
    assert list(db.iter_blob_locations()) == []  # get_history pruned what the server dropped
    assert client.zcard(f"beautyspot:{namespace}:expiry") == 0


def test_delete_expired_counts_records_the_server_dropped(db: RedisTaskDB, namespace: str):
    db.save_record(inline("past", expires_at=1000.0))  # dropped at once
    db.save_record(TaskRecord("b", "fn", "in", None, "blob", None, "ab/1", expires_at=1000.0))
    db.save_record(inline("future", expires_at=time.time() + 60))
    assert sorted(db.iter_blob_locations()) == ["ab/1"]  # kept until pruned
    assert db.delete_expired() == 2
    assert db.delete_expired() == 0
    assert list(db.iter_blob_locations()) == []
    assert [record["cache_key"] for record in db.get_history()] == ["future"]


def test_a_resave_without_retention_is_not_expired(db: RedisTaskDB, client: Any, namespace: str):
    db.save_record(inline("k", expires_at=time.time() + 60))
    db.save_record(inline("k", b"again"))
    key = f"beautyspot:{namespace}:r:k"
    assert client.pttl(key) == -1
    assert db.delete_expired(now=time.time() + 120) == 0
    assert db.lookup("k")[0] == b"again"  # type: ignore[index]


def test_readers_see_the_old_record_or_the_new_one_never_a_mix(db: RedisTaskDB):
    versions = [
        inline("k", b"inline-bytes", checksum="c-inline", code_fingerprint="f-inline"),
        TaskRecord("k", "fn", "in", None, "blob", None, "ab/loc", checksum="c-blob"),
    ]
    allowed = {(b"inline-bytes", "c-inline", None, "f-inline"), ("ab/loc", "c-blob", None, None)}
    db.save_record(versions[0])
    stop = time.monotonic() + 0.4
    seen: list[Any] = []

    def write() -> None:
        i = 0
        while time.monotonic() < stop:
            db.save_record(versions[i % 2])
            i += 1

    def read() -> None:
        while time.monotonic() < stop:
            seen.append(db.lookup("k"))

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen and set(seen) <= allowed
    assert sorted(db.iter_blob_locations()) in ([], ["ab/loc"])


# -- a hit's cost -----------------------------------------------------------------------------


def test_a_hit_is_one_round_trip(db: RedisTaskDB, monkeypatch: pytest.MonkeyPatch):
    db.save_record(inline("k", b"payload", checksum="xxh3:00", code_fingerprint="fp"))
    db.lookup("k")  # connect first
    connection_class = db._pool.connection_class
    sent: list[Any] = []
    original = connection_class.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    assert db.lookup("k") == (b"payload", "xxh3:00", None, "fp")
    assert len(sent) == 1


# -- outages ----------------------------------------------------------------------------------


def test_an_unreachable_server_is_a_storage_error_naming_host_and_port(workdir: Path):
    port = free_port()  # nothing listens there
    url = url_with(port, "?socket_connect_timeout=1")
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        bs.Spot("nowhere", db=url)
    assert time.monotonic() - began < 1.5
    said = everything_said(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert SECRET not in said and "s3cret" not in said
    db = RedisTaskDB(url)
    for attempt in (lambda: db.lookup("k"), lambda: db.save("k", "f", "i", None, "inline", None)):
        with pytest.raises(StorageError, match=f"127.0.0.1:{port}"):
            attempt()


def test_a_server_that_never_accepts_times_out_within_the_connect_timeout():
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued: list[socket.socket] = []
    try:
        for _ in range(8):  # fill the accept queue: further connections are never answered
            probe = socket.socket()
            probe.settimeout(0.2)
            queued.append(probe)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this system answers every connection: cannot stage a silent server")
        db = RedisTaskDB(url_with(port, "?socket_connect_timeout=0.4"))
        began = time.monotonic()
        with pytest.raises(StorageError, match="did not answer") as caught:
            db.init_schema()
        assert 0.35 < time.monotonic() - began < 1.5
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert SECRET not in everything_said(caught.value)
    finally:
        for sock in [*queued, listener]:
            sock.close()


def test_a_server_lost_mid_run_fails_lookups_then_recovers(
    proxy: Proxy, namespace: str, client: Any
):
    db = RedisTaskDB(url_with(proxy.port, "?socket_connect_timeout=1"), namespace=namespace)
    db.init_schema()
    db.save_record(inline("k", b"before"))
    assert db.lookup("k")[0] == b"before"  # type: ignore[index]

    proxy.stop()
    with pytest.raises(StorageError, match=f"127.0.0.1:{proxy.port}") as caught:
        db.lookup("k")
    assert SECRET not in everything_said(caught.value)
    with pytest.raises(StorageError):
        db.lookup("k")  # still down: no stale connection serves it

    proxy.start()
    assert db.lookup("k")[0] == b"before"  # type: ignore[index]
    db.save_record(inline("k2", b"after"))
    assert db.get("k2")["result_data"] == b"after"  # type: ignore[index]
    db.close()


def test_a_killed_connection_is_replaced_unnoticed(db: RedisTaskDB, client: Any):
    db.save_record(inline("k", b"v"))
    connection_id = db._client.client_id()  # the pool's only connection
    assert client.client_kill_filter(_id=connection_id) == 1
    assert db.lookup("k")[0] == b"v"  # type: ignore[index]


def test_a_stalled_server_times_out_and_never_mixes_up_replies(proxy: Proxy, namespace: str):
    db = RedisTaskDB(url_with(proxy.port, "?socket_timeout=0.3"), namespace=namespace)
    db.save_record(inline("k1", b"one"))
    db.save_record(inline("k2", b"two"))
    proxy.flowing.clear()
    began = time.monotonic()
    with pytest.raises(StorageError, match="did not answer") as caught:
        db.lookup("k1")
    assert 0.25 < time.monotonic() - began < 2
    assert f"127.0.0.1:{proxy.port}" in str(caught.value)
    proxy.flowing.set()  # k1's late reply must not become k2's answer
    assert db.lookup("k2")[0] == b"two"  # type: ignore[index]
    assert db.lookup("k1")[0] == b"one"  # type: ignore[index]
    db.close()


def test_map_retries_items_through_an_outage(workdir: Path, proxy: Proxy, namespace: str):
    spot = bs.Spot(namespace, db=url_with(proxy.port, "?socket_connect_timeout=1"))
    counter = Counter()
    square = squares(spot, counter)
    assert square(4) == 16
    proxy.stop()
    restarted = threading.Timer(0.3, proxy.start)
    restarted.start()
    results = square.map([4, 5], retry_on=StorageError, retries=20, backoff=lambda n: 0.05)
    restarted.join()
    assert results == [16, 25]
    assert square(5) == 25 and sorted(counter.calls) == [4, 5]
    spot.close()


# -- configuration ----------------------------------------------------------------------------


def test_pickles_by_configuration(db: RedisTaskDB):
    db.save_record(inline("k", b"shared"))
    tuned = RedisTaskDB(
        url_with(6379, "?socket_timeout=2"),
        namespace=db.namespace,
        socket_connect_timeout=1.5,
        max_failures=7,
    )
    for original in (db, tuned):
        copy = pickle.loads(pickle.dumps(original))
        assert type(copy) is RedisTaskDB and copy._pool is not original._pool
        assert (copy.url, copy.namespace, copy.max_failures) == (
            original.url,
            original.namespace,
            original.max_failures,
        )
        assert (copy.connect_timeout, copy.timeout) == (original.connect_timeout, original.timeout)
    assert (tuned.connect_timeout, tuned.timeout) == (1.5, 2.0)
    copy = pickle.loads(pickle.dumps(db))
    assert copy.lookup("k")[0] == b"shared"  # type: ignore[index]
    copy.close()


def test_repr_and_errors_never_show_the_password():
    db = RedisTaskDB(f"redis://user:{SECRET}@cache:6379/3", namespace="api")
    assert repr(db) == "RedisTaskDB('redis://user:***@cache:6379/3', namespace='api')"
    bad = (
        f"redis://:{SECRET}@cache:6379/0?decode_responses=true",
        f"redis://:{SECRET}@cache:6379/zero",
        f"redis://:{SECRET}@cache:notaport/0",
        f"redis://:{SECRET}@cache:6379/0?socket_timeout=-1",
        f"redis://:{SECRET}@cache:6379/0?socket_timeout=soon",
        f"redis://:{SECRET}@cache:6379/0?ssl_cert_reqs=none",  # TLS options need rediss://
        f"unix://:{SECRET}@/tmp/redis.sock",
    )
    for url in bad:
        with pytest.raises(ConfigurationError) as caught:
            RedisTaskDB(url)
        assert SECRET not in everything_said(caught.value), url


def test_timeouts_come_from_the_url_and_keywords_override_them():
    url = "redis://cache/1?socket_connect_timeout=0.5&socket_timeout=7"
    db = RedisTaskDB.from_url(url)
    assert (db.connect_timeout, db.timeout, db.namespace) == (0.5, 7.0, "default")
    assert RedisTaskDB.from_url(url, socket_timeout=2).timeout == 2.0
    assert (RedisTaskDB("redis://cache").connect_timeout, RedisTaskDB("redis://cache").timeout) == (
        5.0,
        5.0,
    )
    with pytest.raises(TypeError):
        RedisTaskDB.from_url(url, password="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RedisTaskDB("redis://cache", socket_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RedisTaskDB("redis://cache", socket_timeout=0)
    with pytest.raises(ConfigurationError):
        RedisTaskDB("redis://cache", namespace="")


def test_namespaces_with_colons_cannot_reach_into_others(
    namespaces: Callable[[], str], client: Any
):
    base = namespaces()
    outer = RedisTaskDB(REDIS_URL, namespace=base)
    tricky = RedisTaskDB(REDIS_URL, namespace=f"{base}:r:x")
    tricky.save_record(inline("history"))
    outer.save_record(inline("x:history"))
    assert tricky.get("history") is not None and outer.get("x:history") is not None
    assert [r["cache_key"] for r in outer.get_history()] == ["x:history"]
    assert [r["cache_key"] for r in tricky.get_history()] == ["history"]
    escaped = list(client.scan_iter(match=f"beautyspot:{base}%3Ar%3Ax:*"))
    client.delete(*escaped)
    for opened in (outer, tricky):
        opened.close()


def test_a_newer_layout_is_refused(db: RedisTaskDB, client: Any, namespace: str):
    client.set(f"beautyspot:{namespace}:schema", 99)
    with pytest.raises(ConfigurationError, match="newer"):
        db.init_schema()


def test_failures_are_capped(namespace: str):
    db = RedisTaskDB(REDIS_URL, namespace=namespace, max_failures=3)
    for i in range(5):
        db.record_failure(FailureRecord(f"k{i}", "fn", "fn()", "ValueError", f"bad {i}", "", i))
    assert [row["message"] for row in db.get_failures()] == ["bad 4", "bad 3", "bad 2"]
    assert db.get_failures(limit=0) == []
    db.close()
