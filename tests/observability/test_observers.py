"""The runtime observers of the HTTP layer: the invocation log (batched when govfn set
logging up, through `logging` otherwise) and the duration histogram of the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govfn.function import FunctionContext, FunctionResult
from govfn.observability import invocation_log
from govfn.observability.invocation_log import InvocationLog, JsonLineFormatter
from govfn.observability.metrics import Metrics, PodMetrics


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


texts = st.none() | st.text()


@given(
    st.tuples(texts, texts, texts, texts, texts, texts, texts),
    st.text(min_size=1),
    st.floats() | st.integers(),
)
def test_a_line_is_what_json_writes_for_its_fields(
    texts: tuple[str | None, ...], outcome: str, duration: float
) -> None:
    function, invocation, event_id, source, event_type, lineage, traceparent = texts
    context = FunctionContext(
        event_id=event_id,
        event_source=source,
        trigger_event_kind=event_type,
        traceparent=traceparent,
    )
    outcome_of = FunctionResult(
        success=False,
        function_id=function,
        invocation_id=invocation,
        duration_ms=duration,
        lineage_cid=lineage,
    )
    fields = {
        "function": function,
        "invocation_id": invocation,
        "event_id": event_id,
        "event_source": source,
        "event_type": event_type,
        "outcome": outcome,
        "duration_ms": duration,
        "lineage_cid": lineage,
        "traceparent": traceparent,
    }
    expected = json.dumps(fields, separators=(",", ":"), ensure_ascii=True)
    assert invocation_log.json_line(context, outcome_of, outcome) == expected


def test_lines_of_a_loop_stopped_before_it_flushed_them_are_written_with_the_next(
    own_logging: io.StringIO,
) -> None:
    log = InvocationLog()

    def log_and_stop(loop: asyncio.AbstractEventLoop) -> None:
        log(None, *result(1))
        loop.stop()  # the loop stops after this pass: the flush it scheduled never runs

    async def one(n: int) -> None:
        log(None, *result(n))

    with no_root_handlers():
        loop = asyncio.new_event_loop()
        loop.call_soon(log_and_stop, loop)
        loop.run_forever()
        loop.close()
        assert own_logging.getvalue() == ""
        asyncio.run(one(2))
    lines = [json.loads(line) for line in own_logging.getvalue().splitlines()]
    assert [line["event_id"] for line in lines] == ["e-1", "e-2"]


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
        line.split('le="')[1].split('"')[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("govfn_invocation_duration_seconds_bucket")
    }
    assert buckets["0.001"] == 2  # 0.5 ms, and 1.0 ms on the bound itself
    assert buckets["0.0025"] == 2 and buckets["0.005"] == 3 and buckets["10.0"] == 3
    assert buckets["+Inf"] == 4
    assert "govfn_invocation_duration_seconds_count" in text


# A worker of a pod: counts in PodMetrics' directory, then prints what a scrape of it shows.
WORKER = """
import sys
from govfn.function import FunctionContext, FunctionResult
from govfn.observability.metrics import Metrics, PodMetrics
pod = PodMetrics(sys.argv[1])
metrics = Metrics(pod)
for ok in filter(None, sys.argv[2].split(",")):
    result = FunctionResult(success=ok == "ok", function_id="f", duration_ms=2.0, error_kind="x")
    metrics.observe(None, FunctionContext(), result)
for status in sys.argv[3:]:
    metrics.rejected(int(status))
print(metrics.render(chronicle_failures=0, chronicle_pending=0, in_flight=0))
"""


def run_worker(directory: Path, outcomes: str, *rejected: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(directory), outcomes, *rejected],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_pod_metrics_add_up_every_worker_s_counters(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"a previous server's counts")
    pod = PodMetrics(directory)
    pod.reset()  # a new server starts from zero
    assert list(directory.iterdir()) == []
    run_worker(directory, "ok,fail")
    answering = run_worker(directory, "ok,ok", "400")  # its own counts, live, and its peer's
    scraped = run_worker(directory, "")  # a worker that has counted nothing itself
    for text in (answering, scraped):
        assert 'govfn_invocations_total{function="f",outcome="success"} 3' in text
        assert 'govfn_invocations_total{function="f",outcome="x"} 1' in text
        assert 'govfn_invocation_duration_seconds_bucket{function="f",le="0.0025"} 4' in text
        assert 'govfn_requests_rejected_total{status="400"} 1' in text
    # prometheus_client's files: one per kind of metric and worker that counted
    assert len({path.stem.rsplit("_", 1)[1] for path in directory.glob("*.db")}) == 2


# A worker that counts on its event loop and exits before its publication timer fires.
LOOP_WORKER = """
import asyncio, sys
from govfn.function import FunctionContext, FunctionResult
from govfn.observability.metrics import Metrics, PodMetrics
metrics = Metrics(PodMetrics(sys.argv[1]))
metrics.load()

async def count() -> None:
    for _ in range(5):
        metrics.observe(None, FunctionContext(), FunctionResult(success=True, function_id="f"))
    assert metrics._tally.invocations == {("f", "success"): 5}  # not published yet

asyncio.run(count())
"""


def test_counts_on_an_event_loop_are_published_when_the_worker_exits(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    PodMetrics(directory).reset()
    subprocess.run([sys.executable, "-c", LOOP_WORKER, str(directory)], timeout=60, check=True)
    assert 'govfn_invocations_total{function="f",outcome="success"} 5' in run_worker(directory, "")


# A worker that counts on its event loop while a peer process scrapes the pod.
SCRAPED_WORKER = """
import asyncio, subprocess, sys
from govfn.function import FunctionContext, FunctionResult
from govfn.observability import metrics as m
metrics = m.Metrics(m.PodMetrics(sys.argv[1]))
metrics.load()
success = FunctionResult(success=True, function_id="f", duration_ms=3.0)
LINE = 'govfn_invocations_total{function="f",outcome="success"}'

def peer_scrape() -> str:
    peer = [sys.executable, "-c", sys.argv[2], sys.argv[1], ""]
    return subprocess.run(peer, capture_output=True, text=True, timeout=60, check=True).stdout

async def count() -> None:
    metrics.observe(None, FunctionContext(), success)
    assert f"{LINE} 1" not in peer_scrape()  # before the timer fired
    await asyncio.sleep(m.PUBLISH_DELAY_S * 2)
    assert f"{LINE} 1" in peer_scrape()
    metrics.observe(None, FunctionContext(), success)
    own = metrics.render(chronicle_failures=0, chronicle_pending=0, in_flight=0)
    assert f"{LINE} 2" in own, own  # the answering worker's own counts are live
    assert 'govfn_invocation_duration_seconds_bucket{function="f",le="0.005"} 2' in own, own

asyncio.run(count())
print("ok")
"""


def test_counts_on_an_event_loop_are_published_soon_and_before_a_scrape(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "metrics"
    PodMetrics(directory).reset()
    done = subprocess.run(
        [sys.executable, "-c", SCRAPED_WORKER, str(directory), WORKER],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_without_a_pod_an_app_counts_alone() -> None:
    first, second = Metrics(), Metrics()
    first.observe(None, FunctionContext(), FunctionResult(success=True, function_id="f"))
    assert (first.invocations("f", "success"), second.invocations("f", "success")) == (1, 0)
    text = second.render(chronicle_failures=2, chronicle_pending=1, in_flight=0)
    assert 'function="f"' not in text
    assert "govfn_chronicle_emit_failures_total 2" in text
    assert "govfn_chronicle_pending_records 1" in text


LATE_LOAD = """
import sys
from govfn.function import FunctionContext, FunctionResult
from govfn.observability import metrics as m
metrics = m.Metrics()
for _ in range(3):
    metrics.observe(None, FunctionContext(), FunctionResult(success=True, function_id="f"))
metrics.rejected(429)
assert "prometheus_client" not in sys.modules  # kept, not counted yet
text = metrics.render(chronicle_failures=0, chronicle_pending=0, in_flight=0)
assert 'govfn_invocations_total{function="f",outcome="success"} 3.0' in text, text
assert 'govfn_requests_rejected_total{status="429"} 1.0' in text, text
busy = m.Metrics()
for _ in range(10_001):  # counted in constant room, not kept one by one
    busy.rejected(400)
assert busy._counters is None
assert busy._tally.rejected == {400: 10_001}
text = busy.render(chronicle_failures=0, chronicle_pending=0, in_flight=0)
assert 'status="400"} 10001.0' in text
print("ok")
"""


def test_what_is_observed_before_the_library_loads_is_counted() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LATE_LOAD], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
