"""Every Python example in README.md runs as written, in order, in a fresh folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import service_unavailable

from beautyspot.db import taskdb_from
from beautyspot.errors import StorageError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_examples_run_in_order(tmp_path: Path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 5
    records_url = os.environ.get("BEAUTYSPOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        taskdb_from(records_url, "readme").lookup("probe")
    except StorageError as exc:
        service_unavailable(f"the README's scaling example needs Redis ({exc})")
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "RECORDS_URL": records_url},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == ["Processed: A", "Processed: B", "Processed: C", "Processed: A"]
    assert lines[4:7] == ["HELLO", "HELLO", "True"]
    assert "['answer to a', 'answer to b', 'answer to a']" in lines
    assert "[11, 1] True" in lines  # the scaling example, on Redis
