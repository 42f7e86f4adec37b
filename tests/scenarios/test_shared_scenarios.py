"""Every file in shared/scenarios is a test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from stockledger.service.scenario import run_file
from tests.conftest import SCENARIOS, pg_url

# Scenarios that need an event type a later issue builds (xfail names the issue).
NEEDS_LATER_ISSUE: dict[str, str] = {}

FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_scenarios_folder_is_found() -> None:
    assert FILES, f"no scenario files in {SCENARIOS}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_scenario(path, backend: str) -> None:
    if path.name in NEEDS_LATER_ISSUE:
        pytest.xfail(NEEDS_LATER_ISSUE[path.name])
    result = run_file(str(path), None if backend == "sqlite" else pg_url())
    assert result.passed, result.failure
