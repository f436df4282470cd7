"""The test suite's own rules: a missing service skips, except in this repository's CI."""

from __future__ import annotations

import pytest
from tests.conftest import service_unavailable


def test_ci_true_alone_skips_instead_of_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # GitHub Actions and most CI services set it
    monkeypatch.delenv("BEAUTYSPOT_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Redis not reachable"):
        service_unavailable("Redis not reachable")


def test_our_ci_fails_when_a_service_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEAUTYSPOT_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="services are required"):
        service_unavailable("Redis not reachable")
