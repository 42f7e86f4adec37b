"""Shared fixtures: workspaces on SQLite (always) and PostgreSQL (when
STOCKLEDGER_TEST_PG is set; then it must be reachable, never silently skipped)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from stockledger.service.scenario import temporary_database
from stockledger.service.workspace import Workspace, check_setup, init_workspace

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = Path(os.environ.get("STOCKLEDGER_SCENARIOS", ROOT.parent / "shared" / "scenarios"))
PG_ENV = "STOCKLEDGER_TEST_PG"


def pytest_configure(config: pytest.Config) -> None:
    """The suite reads the worked scenarios beside the clone (../shared); without
    them, one clear line instead of hundreds of missing-file errors."""
    if not SCENARIOS.is_dir():
        raise pytest.UsageError(
            f"no scenario folder at {SCENARIOS}: clone stockledger beside shared/ "
            f"(../shared/scenarios) or set STOCKLEDGER_SCENARIOS to the folder")


def pg_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _check_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable at {url}: {exc}")
    finally:
        engine.dispose()


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.pg),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        url = pg_url()
        if url is None:
            pytest.skip(f"PostgreSQL tests are skipped: set {PG_ENV} to a server URL to run them")
        _check_pg(url)
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on the selected backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with temporary_database(pg_url(), prefix="stockledger_test") as url:  # type: ignore[arg-type]
        yield url


def base_setup(**overrides: Any) -> dict[str, Any]:
    """The scenarios' chart of accounts and roles with one FIFO product; pass
    sections to replace them (categories=[...], products=[...], ...)."""
    doc = yaml.safe_load((SCENARIOS / "01-fifo-basic.yaml").read_text())["setup"]
    doc.update(overrides)
    return doc


@pytest.fixture
def make_workspace(db_url: str) -> Iterator[Any]:
    """make_workspace(setup_dict) -> an initialised Workspace on the selected backend."""
    made: list[Workspace] = []

    def make(setup: dict[str, Any] | None = None) -> Workspace:
        ws = Workspace(db_url)
        init_workspace(ws, check_setup(setup or base_setup()))
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()
