"""Fixtures shared by every test: a fresh default registry, a temporary ledger, and a
CloudEvents sink double on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.chronicle import Ledger
from govfn.registry import FunctionRegistry, use_registry

from support.sink_double import SinkDouble

pytest_plugins = ["support.app_fixtures", "support.asyncio_leaks", "support.lineage_pipeline"]


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


@pytest.fixture
def sink() -> Iterator[SinkDouble]:
    server = SinkDouble()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
