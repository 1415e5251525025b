"""The runtime observers of the HTTP layer: the invocation log (batched when govfn set
logging up, through `logging` otherwise) and the duration histogram of the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.function import FunctionContext, FunctionResult
from govfn.observability import invocation_log
from govfn.observability.invocation_log import InvocationLog, JsonLineFormatter
from govfn.observability.metrics import Metrics, SharedMetrics


@pytest.fixture
def own_logging() -> Iterator[io.StringIO]:
    """govfn's own JSON handler on the `govfn` logger, writing to a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger("govfn")
    saved = (logger.handlers[:], logger.level)
    handler = invocation_log._OwnHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    yield stream
    logger.handlers, level = saved
    logger.setLevel(level)


@contextlib.contextmanager
def no_root_handlers() -> Iterator[None]:
    """As in `govfn serve`: nothing on the root logger (pytest puts its capture there)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = saved


def result(n: int) -> tuple[FunctionContext, FunctionResult]:
    context = FunctionContext(event_id=f"e-{n}", event_source="/s", trigger_event_kind="T")
    outcome = FunctionResult(
        success=True, function_id="f", invocation_id=f"i-{n}", lineage_cid=f"cid-{n}"
    )
    return context, outcome


def test_lines_of_one_loop_pass_are_written_together(own_logging: io.StringIO) -> None:
    log = InvocationLog()
    writes: list[str] = []
    original_write = own_logging.write

    def counting_write(text: str) -> int:
        writes.append(text)
        return original_write(text)

    own_logging.write = counting_write  # type: ignore[method-assign]

    async def three_invocations() -> str:
        for n in range(3):
            log(None, *result(n))
        before = own_logging.getvalue()
        await asyncio.sleep(0)  # the end of this pass of the loop
        await asyncio.sleep(0)
        return before

    with no_root_handlers():
        before = asyncio.run(three_invocations())
    assert before == ""  # nothing written while the pass runs
    lines = [json.loads(line) for line in own_logging.getvalue().splitlines()]
    assert [line["event_id"] for line in lines] == ["e-0", "e-1", "e-2"]
    assert lines[0] == {
        "function": "f",
        "invocation_id": "i-0",
        "event_id": "e-0",
        "event_source": "/s",
        "event_type": "T",
        "outcome": "success",
        "duration_ms": 0.0,
        "lineage_cid": "cid-0",
        "traceparent": None,
    }
    assert len(writes) == 1


def test_without_a_loop_the_line_is_written_at_once(own_logging: io.StringIO) -> None:
    with no_root_handlers():
        InvocationLog()(None, *result(7))
    assert json.loads(own_logging.getvalue())["event_id"] == "e-7"


def test_a_host_logging_setup_gets_log_records(
    own_logging: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="govfn.invocations"):  # a root handler
        InvocationLog()(None, *result(3))
    assert json.loads(own_logging.getvalue())["event_id"] == "e-3"  # via the handler too
    records = [r for r in caplog.records if r.name == "govfn.invocations"]
    assert len(records) == 1 and json.loads(records[0].getMessage())["event_id"] == "e-3"


def test_duration_buckets_are_cumulative() -> None:
    metrics = Metrics()
    for milliseconds in (0.5, 1.0, 3.0, 20_000.0):
        outcome = FunctionResult(success=True, function_id="f", duration_ms=milliseconds)
        metrics.observe(None, FunctionContext(), outcome)
    text = metrics.render(chronicle_failures=0, chronicle_pending=0, in_flight=0)
    buckets = {
        line.split('le="')[1].split('"')[0]: int(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("govfn_invocation_duration_seconds_bucket")
    }
    assert buckets["0.001"] == 2  # 0.5 ms, and 1.0 ms on the bound itself
    assert buckets["0.0025"] == 2 and buckets["0.005"] == 3 and buckets["10.0"] == 3
    assert buckets["+Inf"] == 4
    assert "govfn_invocation_duration_seconds_count" in text


def test_shared_metrics_add_up_other_workers_snapshots(tmp_path: Path) -> None:
    mine, other = Metrics(), Metrics()
    for metrics, outcomes in ((mine, [True, False]), (other, [True, True])):
        for ok in outcomes:
            result = FunctionResult(success=ok, function_id="f", duration_ms=2.0, error_kind="x")
            metrics.observe(None, FunctionContext(), result)
    other.rejected(400)
    shared = SharedMetrics(tmp_path / "metrics")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "stale.json").write_text("{}")
    shared.reset()  # a new server starts from zero
    assert list((tmp_path / "metrics").iterdir()) == []
    (tmp_path / "metrics" / "1.json").write_text(json.dumps(other.snapshot()))
    (tmp_path / "metrics" / "2.json").write_text('{"invocations": ')  # half written: skipped
    shared.publish(mine)  # this process's file is never read back as another's
    text = mine.render(
        chronicle_failures=0, chronicle_pending=0, in_flight=0, others=shared.others()
    )
    assert 'govfn_invocations_total{function="f",outcome="success"} 3' in text
    assert 'govfn_invocations_total{function="f",outcome="x"} 1' in text
    assert 'govfn_invocation_duration_seconds_bucket{function="f",le="0.0025"} 4' in text
    assert 'govfn_requests_rejected_total{status="400"} 1' in text


def test_an_idle_worker_publishes_nothing_new(tmp_path: Path) -> None:
    metrics, shared = Metrics(), SharedMetrics(tmp_path)
    shared.publish(metrics)
    (published,) = tmp_path.glob("*.json")
    published.unlink()
    shared.publish(metrics)  # the same counters: no write
    assert list(tmp_path.glob("*.json")) == []
    metrics.rejected(413)
    shared.publish(metrics)
    assert json.loads(published.read_text())["rejected"] == {"413": 1}
