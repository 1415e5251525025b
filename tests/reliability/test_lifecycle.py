"""The worker lifecycle hooks `govfn serve` gives gunicorn: drain on SIGTERM, flush on exit."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govfn import FunctionRegistry, FunctionRuntime, governed_function
from govfn.app import HttpConfig, create_app
from govfn.chronicle import MemoryChronicle, Record
from govfn.lifecycle import worker_started, worker_stopping


class DownThenUp(MemoryChronicle):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def emit_record(self, record: Record) -> str:
        if self.down:
            raise ConnectionError("down")
        return await super().emit_record(record)


@pytest.fixture
def restore_sigterm() -> Iterator[list[Any]]:
    calls: list[Any] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(signal.SIGTERM, original)


def test_sigterm_turns_readiness_false_then_chains(restore_sigterm: list[Any]) -> None:
    registry = FunctionRegistry()
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: e)
    app = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()), config=HttpConfig())
    try:
        client = app.test_client()
        assert client.get("/health/readiness").status_code == 200
        worker_started(app)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)  # what the kernel's SIGTERM would run
        answer = client.get("/health/readiness")
        assert answer.status_code == 503 and answer.get_json()["draining"] is True
        assert restore_sigterm == [signal.SIGTERM]  # gunicorn's own handler still runs
    finally:
        app.loop.stop()


def test_exit_hands_kept_records_over(tmp_path: Path) -> None:
    registry = FunctionRegistry()
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: e)
    chronicle = DownThenUp()
    runtime = FunctionRuntime(registry, chronicle, spool_dir=str(tmp_path))
    app = create_app(runtime=runtime, config=HttpConfig())
    app.loop.run(runtime.invoke("f", {"a": 1}))
    assert runtime.backstop is not None and runtime.backstop.pending == 2
    chronicle.down = False
    worker_stopping(app, drain_timeout_s=5)
    assert runtime.backstop.pending == 0 and len(chronicle.records) == 2
    assert not app.loop.started


@pytest.mark.parametrize("pod_of_one", [False, True])
def test_the_metrics_library_loads_soon_or_at_the_first_scrape(
    restore_sigterm: list[Any], pod_of_one: bool
) -> None:
    registry = FunctionRegistry()
    governed_function("f", trigger_events=["T"], registry=registry)(lambda e, c: e)
    app = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()), config=HttpConfig())
    try:
        client = app.test_client()
        for i in range(3):
            headers = {"ce-specversion": "1.0", "ce-id": f"m{i}", "ce-source": "/t", "ce-type": "T"}
            answer = client.post("/functions/f/events", json={"i": i}, headers=headers)
            assert answer.status_code == 202  # no reply event: accepted
        worker_started(app, pod_of_one=pod_of_one)
        deadline = time.monotonic() + 5
        while not app.metrics.loaded and time.monotonic() < deadline and not pod_of_one:
            time.sleep(0.05)
        if pod_of_one:
            time.sleep(1.5)  # past the delay a worker of several loads it after
        assert app.metrics.loaded is not pod_of_one
        scraped = client.get("/metrics").get_data(as_text=True)
        assert app.metrics.loaded
        assert 'govfn_invocations_total{function="f",outcome="success"} 3.0' in scraped
    finally:
        app.loop.stop()
