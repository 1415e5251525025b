"""Fixtures for the Chronicle tests: a ledger filled by real receivers through a broker double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.app import GovfnApp, HttpConfig, create_app
from govfn.chronicle import Ledger, LedgerChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.testing import test_client

from support.lineage_pipeline import Broker


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[Ledger, Broker]]:
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = load_functions(
        ("govfn.functions", "support.lineage_pipeline"),
        FunctionRegistry(),
        include_entry_points=False,
    )
    app: GovfnApp = create_app(
        runtime=FunctionRuntime(registry, LedgerChronicle(ledger)), config=HttpConfig(dev=True)
    )
    client = test_client(app)

    def send(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        answer = client.post(path, headers=headers, data=body)
        return answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.data

    yield ledger, Broker(send)
    app.loop.stop()
    ledger.close()
