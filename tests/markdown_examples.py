"""The Python examples of our Markdown files (README.md, README.ja.md, docs/): found and run.

Every ```` ```python ```` block is an example that runs on its own, in a fresh folder, unless its
first line is :data:`CONTINUES`: then it runs after the example above it, as one program (a
chain of such blocks is one program). A newcomer copies a block and it works, or the block says
which one it needs.

Examples reach services only through these environment variables, with a default a reader's
machine would have, so the tests point them at ours:

- ``RECORDS_URL``: a Redis URL (the tests' Redis database);
- ``POSTGRES_URL``: a PostgreSQL URL;
- ``BLOBS_URL``: an ``s3://bucket/prefix`` URL (the tests' moto server, through the usual AWS
  variables and ``AWS_ENDPOINT_URL_S3``).

An example that names none of them needs nothing but beautyspot.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[1]

#: The first line of a block that continues the example above it.
CONTINUES = "# continues the example above"

#: The environment variables through which examples reach services.
SERVICE_VARIABLES = ("RECORDS_URL", "POSTGRES_URL", "BLOBS_URL")

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Example:
    """One runnable program: a block, with the blocks it continues before it."""

    source: str  # the Markdown file, relative to the repository
    line: int  # where its last block starts
    code: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def services(self) -> tuple[str, ...]:
        """The service variables this example reads."""
        return tuple(name for name in SERVICE_VARIABLES if name in self.code)


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """Each ```` ```python ```` block of ``markdown``: (line of its fence, its code)."""
    return [
        (markdown.count("\n", 0, match.start()) + 1, match.group(1))
        for match in _FENCE.finditer(markdown)
    ]


def examples(path: Path) -> list[Example]:
    """The runnable examples of a Markdown file, in order (one per block)."""
    source = str(path.resolve().relative_to(ROOT))
    found: list[Example] = []
    for line, code in python_blocks(path.read_text(encoding="utf-8")):
        if code.startswith(CONTINUES):
            if not found:
                raise AssertionError(f"{source}:{line} continues an example, but none is above")
            code = found[-1].code + "\n" + code
        found.append(Example(source, line, code))
    return found


def run_example(
    example: Example, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``example`` as a program in ``cwd`` with this checkout's beautyspot; ``env`` adds
    to this process's environment (the service variables)."""
    return subprocess.run(
        [sys.executable, "-c", example.code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
    )


@pytest.fixture(scope="session")
def service_env() -> Iterator[Callable[[Example], dict[str, str]]]:
    """``service_env(example)``: the variables that point ``example`` at the tests' services.

    Each service is checked (and the S3 server started) the first time an example needs it; an
    absent one skips that example with a reason (fails where services are required).
    """
    found: dict[str, dict[str, str]] = {}
    moto: list[object] = []

    def redis() -> dict[str, str]:
        url = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
        _probe(url, "Redis")
        return {"RECORDS_URL": url}

    def postgres() -> dict[str, str]:
        url = os.environ.get(
            "BEAUTYSPOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        )
        _probe(url, "PostgreSQL")
        return {"POSTGRES_URL": url}

    def s3() -> dict[str, str]:
        from tests.moto_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3

        server = MotoS3()
        moto.append(server)
        bucket = f"examples-{uuid.uuid4().hex[:12]}"
        server.client.create_bucket(Bucket=bucket)
        return {
            "BLOBS_URL": f"s3://{bucket}/examples",
            "AWS_ENDPOINT_URL_S3": server.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    starters = {"RECORDS_URL": redis, "POSTGRES_URL": postgres, "BLOBS_URL": s3}

    def env_for(example: Example) -> dict[str, str]:
        env: dict[str, str] = {}
        for name in example.services:
            if name not in found:
                found[name] = starters[name]()
            env.update(found[name])
        return env

    yield env_for
    for server in moto:
        server.server.stop()  # type: ignore[attr-defined]


def _probe(url: str, service: str) -> None:
    from beautyspot.db import taskdb_from
    from beautyspot.errors import StorageError

    try:
        db = taskdb_from(url, "examples-probe")
        db.init_schema()
        db.close()
    except (StorageError, ImportError) as exc:
        service_unavailable(f"an example needs {service} ({exc})")
