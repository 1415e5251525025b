"""Traces from a real `govfn serve`, exported over OTLP/HTTP to a receiver on loopback
configured by the standard OTEL_* variables alone."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.chronicle import Ledger
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED

from support.http_server import SAMPLE_MODULES, binary_headers, start_server, stop_server
from support.otlp_receiver import OtlpReceiver

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
SPAN_KIND_SERVER = 2
STATUS_ERROR = 2


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}


def test_govfn_serve_exports_invocation_spans_over_otlp_http(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    modules = [arg for name in SAMPLE_MODULES for arg in ("--functions", name)]
    server = start_server(
        tmp_path,
        *modules,
        "--workers", "2",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "govfn-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        },
    )  # fmt: skip
    try:
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        sent = subprocess.run(
            [sys.executable, "-m", "govfn", "send", server.url + "/functions/echo/events",
             "--type", "ECHO_REQUESTED", "--id", "traced-1", "--data", '{"n": 1}',
             "--traceparent", traceparent],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        lineage = next(
            line.split(": ", 1)[1]
            for line in sent.stdout.splitlines()
            if line.startswith("lineagecid: ")
        )
        failed, _ = post(server.url + "/", binary_headers("FAIL_REQUESTED", "traced-2"), b"{}")
        assert failed >= 500
        spans = receiver.wait_for(2)
    finally:
        stop_server(server)
    assert sorted(span.name for span in spans) == ["echo", "fail"]
    echo = next(span for span in spans if span.name == "echo")
    assert echo.trace_id == TRACE_ID and echo.parent_span_id == PARENT_ID
    assert echo.kind == SPAN_KIND_SERVER
    assert echo.resource["service.name"] == "govfn-under-test"
    assert echo.attributes["cloudevents.event_type"] == "ECHO_REQUESTED"
    assert echo.attributes["cloudevents.event_id"] == "traced-1"
    assert echo.attributes["govfn.outcome"] == "success"
    assert echo.attributes["govfn.lineage_cid"] == lineage
    assert echo.start_ns <= echo.end_ns
    fail = next(span for span in spans if span.name == "fail")
    assert fail.parent_span_id == ""  # no traceparent: a root span
    assert fail.status_code == STATUS_ERROR
    assert fail.attributes["govfn.outcome"] == "error"

    # The trace leads to the proof: the ledger holds the span's records.
    ledger = Ledger(server.ledger)
    try:
        completed = ledger.get(echo.attributes["govfn.lineage_cid"])
        assert completed is not None and completed.type == FUNCTION_COMPLETED
        assert completed.payload["invocation_id"] == echo.attributes["faas.invocation_id"]
        invoked = ledger.get(completed.payload["invoked_cid"])
        assert invoked is not None and invoked.type == FUNCTION_INVOKED
        assert invoked.payload["traceparent"] == traceparent
    finally:
        ledger.close()
