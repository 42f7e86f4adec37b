"""Fixtures for the export and KPI tests: the fixed ledger of dataset.py on each backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exports.dataset import build


@pytest.fixture
def ledger(make_workspace: Any) -> Any:
    """A workspace (SQLite, and PostgreSQL when configured) holding the dataset."""
    return build(make_workspace())
