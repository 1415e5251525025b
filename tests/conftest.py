"""Fixtures shared by every test: a fresh default registry and a temporary ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.chronicle import Ledger
from govfn.registry import FunctionRegistry, use_registry


@pytest.fixture(autouse=True)
def fresh_default_registry() -> Iterator[FunctionRegistry]:
    """Decorators without registry= register here, never into the process default."""
    with use_registry(FunctionRegistry()) as registry:
        yield registry


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "chronicle.db")
    yield ledger
    ledger.close()
