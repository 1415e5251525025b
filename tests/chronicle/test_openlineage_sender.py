"""GOVFN_OPENLINEAGE_URL: RunEvents go live through the ledger's outbox to a loopback
OpenLineage backend double that validates each against the vendored schema; an outage
loses nothing and never blocks an invocation; the events are those the export writes."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn import FunctionContext, assembly
from govfn.chronicle import Ledger, LedgerChronicle, Record
from govfn.chronicle.lineage.openlineage import OpenLineageExport
from govfn.chronicle.lineage.openlineage_sender import OpenLineageSender
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.settings import Settings

from support.http_server import binary_headers, start_server, stop_server
from support.openlineage_backend import OpenLineageBackend
from support.waiting import wait_for


@pytest.fixture(params=["", "/lineage-base"])
def backend(request: pytest.FixtureRequest) -> Iterator[OpenLineageBackend]:
    server = OpenLineageBackend(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def canonical(events: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(event, sort_keys=True) for event in events)


def runtime_for(ledger: Ledger) -> FunctionRuntime:
    registry = load_functions(("govfn.functions",), FunctionRegistry(), include_entry_points=False)
    return FunctionRuntime(registry, LedgerChronicle(ledger))


def test_an_outage_then_recovery_delivers_every_run_event_valid_and_once(
    tmp_path: Path, backend: OpenLineageBackend
) -> None:
    ledger = Ledger(tmp_path / "chronicle.db", openlineage=True)
    sender = OpenLineageSender(ledger.path, backend.url, namespace="billing-prod", max_delay_s=0.3)
    runtime = runtime_for(ledger)
    backend.down.set()
    sender.start()
    try:
        for n in range(12):
            context = FunctionContext(event_id=f"e-{n}", event_source="/tests")
            result = asyncio.run(runtime.invoke("echo", {"n": n}, context))  # never blocked
            assert result.success
            sender.notify()
        ledger.append([Record.build("NOT_A_FUNCTION_RECORD", {"n": 1})])  # not queued
        assert wait_for(lambda: backend.refused >= 3)
        assert sender.depth() == 24 and backend.events == []
        backend.down.clear()
        assert wait_for(lambda: sender.depth() == 0)
    finally:
        assert sender.stop(drain_timeout_s=1) == 0
    assert backend.problems == []
    expected = list(OpenLineageExport("billing-prod").events(ledger.records()))
    assert len(expected) == 24 and canonical(backend.events) == canonical(expected)
    completes = [e for e in backend.events if e["eventType"] == "COMPLETE"]
    assert len(completes) == 12
    assert all(e["job"]["facets"]["govfn_function"]["version"] for e in completes)  # type: ignore[index]
    assert ledger.verify().ok
    ledger.close()


def test_only_a_serving_process_turns_the_queue_on_or_off(tmp_path: Path) -> None:
    path = tmp_path / "chronicle.db"
    env = {"GOVFN_CHRONICLE": str(path), "GOVFN_OPENLINEAGE_URL": "http://127.0.0.1:9"}
    settings = Settings.from_env(env)
    with assembly.ledger(settings, serving=True) as serving:
        serving.append([Record.build("FUNCTION_INVOKED", {"invocation_id": "a"})])
    with assembly.ledger(settings) as cli_style:  # what `govfn chronicle ...` opens
        cli_style.append([Record.build("FUNCTION_INVOKED", {"invocation_id": "b"})])
    with assembly.ledger(
        Settings.from_env({"GOVFN_CHRONICLE": str(path)}), serving=True
    ) as without:
        without.append([Record.build("FUNCTION_INVOKED", {"invocation_id": "c"})])
        queued = without._connection().execute("SELECT seq FROM openlineage_outbox")
        assert queued.fetchall() == [(1,), (2,)]
    sender = assembly.openlineage_sender(settings)
    assert sender is not None and sender.endpoint == "/api/v1/lineage"
    assert assembly.openlineage_sender(Settings.from_env({})) is None
    with pytest.raises(ValueError, match="GOVFN_OPENLINEAGE_URL"):
        assembly.openlineage_sender(Settings.from_env(env | {"GOVFN_OPENLINEAGE_URL": "ftp://x"}))


def test_a_serving_pod_sends_run_events_live(tmp_path: Path, backend: OpenLineageBackend) -> None:
    env = {"GOVFN_OPENLINEAGE_URL": backend.url, "GOVFN_NAMESPACE": "pods"}
    server = start_server(tmp_path, "--workers", "2", env=env)
    try:
        for n in range(4):
            request = urllib.request.Request(
                server.url + "/",
                data=b'{"i": %d}' % n,
                headers=binary_headers(event_id=f"ol-{n}"),
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
        assert wait_for(lambda: len(backend.events) == 8), server.log_text()
    finally:
        stop_server(server)
    assert server.process.returncode == 0, server.log_text()
    assert backend.problems == []
    with Ledger(server.ledger) as ledger:
        expected = list(OpenLineageExport("pods").events(ledger.records()))
    assert canonical(backend.events) == canonical(expected)
