"""Shared fixtures: every test gets its own working folder and Spot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import beautyspot as bs


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so default paths (./{name}.db) land in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def spot(workdir: Path) -> bs.Spot:
    created = bs.Spot("test")
    yield created
    created.close()


def service_unavailable(reason: str) -> None:
    """Skip on a laptop without the service; fail in CI, where every service must be up."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: services are required)")
    pytest.skip(reason)
