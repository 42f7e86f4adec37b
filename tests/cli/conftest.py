"""Fixtures for CLI transcripts: a fresh directory per test, and a workspace made by
`stockledger init` once per worker and copied into each test that starts from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.transcript import Cli
from tests.conftest import base_setup


@pytest.fixture(scope="session")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    template = Cli(tmp_path_factory.mktemp("template"))
    template.init(base_setup())
    return template


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A user in an empty directory."""
    return Cli(tmp_path)


@pytest.fixture
def ws(cli: Cli, initialised: Cli) -> Cli:
    """A user in a directory holding a workspace initialised with the base setup
    (setup.yaml is there too)."""
    cli.copy_workspace_from(initialised)
    return cli
