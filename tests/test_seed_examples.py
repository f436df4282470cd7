"""The README our first users know (shared/seed, in Japanese): its examples run as written.

The seed is read from ``../shared/seed`` beside the repository (where CI and the developers have
it) rather than copied here. Each example runs in a fresh process and folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT.parent / "shared" / "seed"
REDIS_URL = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def seed_blocks() -> list[str]:
    seeds = sorted(SEED_DIR.glob("000_*.txt"))
    if not seeds:
        service_unavailable(f"the seed README is not beside the repository ({SEED_DIR})")
    return re.findall(r"```python\n(.*?)```", seeds[0].read_text(encoding="utf-8"), re.S)


def block_with(blocks: list[str], marker: str) -> str:
    """The first example (in reading order) that contains ``marker``."""
    return next(b for b in blocks if marker in b)


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "default", **env},
    )


@pytest.mark.slow
def test_quick_start_runs_as_written_and_the_second_run_is_served_from_cache(tmp_path: Path):
    quick_start = block_with(seed_blocks(), "bs.Project(")
    first_started = time.perf_counter()
    first = run_python(quick_start, tmp_path)
    first_took = time.perf_counter() - first_started
    assert first.returncode == 0, first.stderr
    expected = ["Processed: A", "Processed: B", "Processed: C", "Processed: A"]
    assert first.stdout.split("\n")[:4] == expected
    assert first_took >= 6  # A, B, C computed (2 s each); the last A was a hit
    assert (tmp_path / "my_experiment.db").is_file()
    assert "DeprecationWarning" in first.stderr  # the v1 spelling is announced, not broken

    second_started = time.perf_counter()
    second = run_python(quick_start, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split("\n")[:4] == expected
    assert time.perf_counter() - second_started < first_took - 5  # nothing slept


def test_feature_examples_run_as_written_in_order(tmp_path: Path):
    blocks = seed_blocks()
    spot_block, register_block, blob_block, limiter_block = (
        block_with(blocks, marker)
        for marker in (
            'bs.Spot("my_analysis")',
            "spot.register_type(",
            "def generate_image",
            'bs.Spot("api_client", tpm=60)',
        )
    )
    # Checks between and after the examples (the api_client Spot replaces `spot` at the end).
    model_round_trip = textwrap.dedent(
        """
        @spot.mark
        def make_model(name):
            return MyModel(name)
        assert make_model("kuroko").name == "kuroko" and make_model("kuroko").name == "kuroko"
        """
    )
    final_checks = textwrap.dedent(
        """
        assert process(21) == 42 and process("ab") == "abab"
        image = generate_image()
        assert image == b"..." * 1024 * 1024 and generate_image() == image
        assert call_api() is None and call_api() is None
        print("ok")
        """
    )
    code = "\n".join(
        [spot_block, register_block, model_round_trip, blob_block, limiter_block, final_checks]
    )
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert (tmp_path / "my_analysis.db").is_file() and (tmp_path / "api_client.db").is_file()
    assert any((tmp_path / "my_analysis_blobs").rglob("*")), "save_blob=True wrote no blob"


GCS_STAND_IN = textwrap.dedent(
    """
    # Harness, not part of the example: Google Cloud Storage cannot be reached from here, so a
    # folder stands in for the bucket; the example's Redis host name points at the test Redis.
    import os, sys, types, pathlib, redis
    bucket_dir = pathlib.Path(os.environ["BUCKET_DIR"])

    class _Blob:
        def __init__(self, name):
            self.name = name
        def upload_from_string(self, data):
            path = bucket_dir / self.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        def download_as_bytes(self):
            return (bucket_dir / self.name).read_bytes()

    class _Bucket:
        def __init__(self, name):
            self.name = name
        def blob(self, name):
            return _Blob(name)

    class _Client:
        def bucket(self, name):
            return _Bucket(name)

    storage_module = types.ModuleType("google.cloud.storage")
    storage_module.Client = _Client
    google = types.ModuleType("google"); cloud = types.ModuleType("google.cloud")
    google.cloud = cloud; cloud.storage = storage_module
    sys.modules.update({"google": google, "google.cloud": cloud,
                        "google.cloud.storage": storage_module})
    _RealRedis = redis.Redis
    def _test_redis(host=None, port=None, **options):
        return _RealRedis.from_url(os.environ["REDIS_URL"], **options)
    redis.Redis = _test_redis
    """
)


@pytest.mark.slow
def test_all_in_one_pipeline_runs_as_written_against_redis(tmp_path: Path):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {REDIS_URL} is unreachable ({exc})")
    pipeline = block_with(seed_blocks(), "class RedisTaskDB(TaskDB)")
    code = GCS_STAND_IN + "\n__name__ = '__main__'\n" + pipeline
    for key in client.scan_iter("task:*"):
        client.delete(key)
    try:
        bucket = str(tmp_path / "bucket")
        runs = [run_python(code, tmp_path, BUCKET_DIR=bucket, REDIS_URL=REDIS_URL) for _ in "12"]
        for run in runs:
            assert run.returncode == 0, run.stderr
            assert "Result: Processed log1.txt" in run.stdout
            assert "Result: Processed log2.txt" in run.stdout
        # Records went to Redis through the user's TaskDB, results to the bucket as blobs.
        assert len(list(client.scan_iter("task:*"))) == 2
        assert len(list((tmp_path / "bucket").rglob("*.bin"))) >= 2
        # The example's decoder cannot rebuild its object (it passes s=/t= to a class that takes
        # score/summary): beautyspot says so and recomputes instead of failing the batch.
        assert "cannot be decoded" in runs[1].stderr
    finally:
        for key in client.scan_iter("task:*"):
            client.delete(key)
