"""Invocation spans in process, through the SDK's in-memory exporter: one span per
invocation, a child of the delivery's traceparent, current while the handler runs, named
for the function, with the invocation id, event type, outcome and lineage CID."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from govfn.app import GovfnApp, HttpConfig, create_app
from govfn.chronicle.client import MemoryChronicle
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED
from govfn.decorator import governed_function
from govfn.function import FunctionContext
from govfn.observability.tracing import InvocationTracer, exporters_from_env, provider_from_env
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.settings import Settings, traces_requested

from support.http_server import SAMPLE_MODULES, binary_headers
from support.http_wire import call_wsgi

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

seen: dict[str, Any] = {}
started = asyncio.Event()


def _current() -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    return {"span_id": f"{span.span_id:016x}", "at_ns": time.time_ns()}


traced_registry = FunctionRegistry()


@governed_function("inside-async", trigger_events=["INSIDE_ASYNC"], registry=traced_registry)
async def inside_async(event: Any, context: FunctionContext) -> Any:
    seen["async"] = _current()
    return None


@governed_function("inside-sync", trigger_events=["INSIDE_SYNC"], registry=traced_registry)
def inside_sync(event: Any, context: FunctionContext) -> Any:
    seen["sync"] = _current()  # runs in the executor, with the caller's context
    return None


@governed_function("waits", trigger_events=["WAITS"], registry=traced_registry)
async def waits(event: Any, context: FunctionContext) -> Any:
    started.set()
    await asyncio.sleep(3600)  # until cancelled


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def chronicle() -> MemoryChronicle:
    return MemoryChronicle()


@pytest.fixture
def traced_app(exporter: InMemorySpanExporter, chronicle: MemoryChronicle) -> Iterator[GovfnApp]:
    registry = load_functions(SAMPLE_MODULES, FunctionRegistry(), include_entry_points=False)
    runtime = FunctionRuntime(registry, chronicle)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    InvocationTracer(provider).install(runtime)
    app = create_app(runtime=runtime, config=HttpConfig())
    yield app
    app.loop.stop()


def hex_id(value: int, width: int = 16) -> str:
    return f"{value:0{width}x}"


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def test_an_invocation_is_a_child_span_of_the_delivery(
    traced_app: GovfnApp, exporter: InMemorySpanExporter, chronicle: MemoryChronicle
) -> None:
    headers = binary_headers(traceparent=TRACEPARENT, gsapcontextid="gsap-3", subject="s-1")
    answer = call_wsgi(traced_app, "POST", "/functions/echo/events", headers, b'{"a": 1}')
    assert answer.status == 200
    span = only_span(exporter)
    assert span.name == "echo"
    assert span.kind == trace.SpanKind.SERVER
    assert hex_id(span.context.trace_id, 32) == TRACE_ID
    assert span.parent is not None and hex_id(span.parent.span_id) == PARENT_ID
    assert span.parent.is_remote
    invoked = next(r.payload for r in chronicle.records if r.type == FUNCTION_INVOKED)
    completed = next(r for r in chronicle.records if r.type == FUNCTION_COMPLETED)
    assert invoked["traceparent"] == TRACEPARENT  # the proof names the trace ...
    assert dict(span.attributes or {}) == {  # ... and the trace names the proof
        "govfn.function.id": "echo",
        "faas.trigger": "pubsub",
        "faas.invocation_id": invoked["invocation_id"],
        "cloudevents.event_id": "e-1",
        "cloudevents.event_source": "/tests/http",
        "cloudevents.event_type": "ECHO_REQUESTED",
        "cloudevents.event_subject": "s-1",
        "govfn.gsap_context_id": "gsap-3",
        "govfn.outcome": "success",
        "govfn.lineage_cid": completed.cid,
    }
    assert answer.headers["ce-lineagecid"] == completed.cid
    assert span.status.status_code == StatusCode.UNSET


def test_without_a_traceparent_the_span_is_a_root(
    traced_app: GovfnApp, exporter: InMemorySpanExporter
) -> None:
    answer = call_wsgi(traced_app, "POST", "/", binary_headers(), b"{}")
    assert answer.status == 200
    span = only_span(exporter)
    assert span.parent is None
    assert span.name == "echo"


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [("FAIL_REQUESTED", "error"), ("REJECT_REQUESTED", "permanent")],
)
def test_a_failed_invocation_is_an_error_span_naming_its_outcome_only(
    traced_app: GovfnApp, exporter: InMemorySpanExporter, event_type: str, outcome: str
) -> None:
    headers = binary_headers(event_type, traceparent=TRACEPARENT)
    answer = call_wsgi(traced_app, "POST", "/", headers, b"{}")
    assert answer.status >= 400
    span = only_span(exporter)
    assert span.attributes is not None and span.attributes["govfn.outcome"] == outcome
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == outcome
    assert "govfn.lineage_cid" in span.attributes  # a failure is recorded too


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_the_span_is_current_while_the_handler_runs(
    exporter: InMemorySpanExporter, kind: str
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = FunctionRuntime(traced_registry, MemoryChronicle())
    InvocationTracer(provider).install(runtime)
    context = FunctionContext(traceparent=TRACEPARENT, trigger_event_kind=f"INSIDE_{kind.upper()}")
    result = asyncio.run(runtime.invoke(f"inside-{kind}", {}, context))
    assert result.success
    span = only_span(exporter)
    inside = seen.pop(kind)
    assert inside["span_id"] == hex_id(span.context.span_id)
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= inside["at_ns"] <= span.end_time  # opened before, closed after
    assert trace.get_current_span() is trace.INVALID_SPAN  # and detached when it ended


def test_a_cancelled_invocation_still_ends_its_span(exporter: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = FunctionRuntime(traced_registry, MemoryChronicle())
    InvocationTracer(provider).install(runtime)

    async def cancel_once_started() -> None:
        started.clear()
        task = asyncio.ensure_future(runtime.invoke("waits", {}, FunctionContext()))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_once_started())
    span = only_span(exporter)
    assert span.attributes is not None and span.attributes["govfn.outcome"] == "cancelled"
    assert span.status.status_code == StatusCode.ERROR


def test_a_failing_start_hook_does_not_fail_the_invocation() -> None:
    runtime = FunctionRuntime(traced_registry, MemoryChronicle())
    ended: list[Any] = []

    def broken(function_id: str, context: FunctionContext) -> Any:
        raise RuntimeError("tracing backend exploded")

    runtime.on_start.append(broken)
    runtime.on_start.append(lambda function_id, context: ended.append)
    result = asyncio.run(runtime.invoke("inside-async", {}, FunctionContext()))
    seen.pop("async")
    assert result.success
    assert ended == [result]


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SERVICE_NAME": "billing"}, False),
    ],
)
def test_the_standard_variables_decide_whether_to_trace(env: dict[str, str], wanted: bool) -> None:
    assert traces_requested(env) is wanted
    assert Settings.from_env(env).traces is wanted


def test_the_exporters_and_service_name_come_from_the_environment() -> None:
    assert [type(e) for e in exporters_from_env({"OTEL_TRACES_EXPORTER": "console"})] == [
        ConsoleSpanExporter
    ]
    assert exporters_from_env({"OTEL_TRACES_EXPORTER": "none"}) == []
    otlp = exporters_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert [type(e).__name__ for e in otlp] == ["OTLPSpanExporter"]
    provider = provider_from_env({"OTEL_TRACES_EXPORTER": "none", "K_SERVICE": "billing"})
    assert provider.resource.attributes["service.name"] == "billing"


def test_create_app_traces_when_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    registry = load_functions(SAMPLE_MODULES, FunctionRegistry(), include_entry_points=False)
    app = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()), config=HttpConfig())
    try:
        assert app.tracer is not None
        assert app.runtime.on_start == [app.tracer]
    finally:
        app.loop.stop()
        if app.tracer is not None:
            app.tracer.shutdown()
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    plain = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()), config=HttpConfig())
    assert plain.tracer is None and plain.runtime.on_start == []
    plain.loop.stop()


def test_without_the_extra_the_app_serves_untraced_and_says_why() -> None:
    code = (
        "import sys, io, json\n"
        "sys.modules['opentelemetry'] = None  # as if govfn[otel] were not installed\n"
        "from govfn.app import create_app\n"
        "from govfn.chronicle.client import MemoryChronicle\n"
        "from govfn.registry import FunctionRegistry, load_functions\n"
        "from govfn.runtime import FunctionRuntime\n"
        "app = create_app(runtime=FunctionRuntime(load_functions((), FunctionRegistry()),"
        " MemoryChronicle()))\n"
        "environ = {'REQUEST_METHOD': 'POST', 'PATH_INFO': '/', 'CONTENT_TYPE': 'application/json',"
        " 'HTTP_CE_ID': '1', 'HTTP_CE_SOURCE': '/s', 'HTTP_CE_TYPE': 'ECHO_REQUESTED',"
        " 'HTTP_CE_SPECVERSION': '1.0', 'CONTENT_LENGTH': '2', 'wsgi.input': io.BytesIO(b'{}')}\n"
        "statuses = []\n"
        "app(environ, lambda status, headers: statuses.append(status))\n"
        "print(json.dumps([statuses, app.tracer is None]))\n"
    )
    env = {"OTEL_TRACES_EXPORTER": "otlp", "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1]) == [["200 OK"], True]
    assert "ask for traces but" in ran.stderr and "install govfn[otel]" in ran.stderr
