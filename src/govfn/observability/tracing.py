"""OpenTelemetry traces of invocations (the `govfn[otel]` extra).

Each invocation is a span named for the function, a child of the delivery's `traceparent`
(Knative Eventing propagates W3C trace context), current while the handler runs, and
carrying the invocation id, the event's attributes, the outcome and the lineage CID of its
FUNCTION_COMPLETED record (FUNCTION_INVOKED records the traceparent: trace and proof name
each other). The span starts when the invocation starts (a runtime start hook) and ends
when its result is known.

Imported only when `Settings.traces` says the OTEL_* variables ask for traces; then the
exporters are the standard OTEL_TRACES_EXPORTER list (otlp over HTTP/protobuf, console)
and the SDK reads the rest (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER,
OTEL_BSP_*).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from govfn.function import FunctionContext, FunctionResult
from govfn.outcome import ErrorKind
from govfn.runtime import FunctionRuntime, InvocationEnd
from govfn.version import __version__

log = logging.getLogger("govfn.tracing")

_PROPAGATOR = TraceContextTextMapPropagator()

# Attribute names: OpenTelemetry's FaaS and CloudEvents conventions, and govfn's own.
INVOCATION_ID = "faas.invocation_id"
TRIGGER = "faas.trigger"
EVENT_ID = "cloudevents.event_id"
EVENT_SOURCE = "cloudevents.event_source"
EVENT_TYPE = "cloudevents.event_type"
EVENT_SUBJECT = "cloudevents.event_subject"
FUNCTION_ID = "govfn.function.id"
OUTCOME = "govfn.outcome"
LINEAGE_CID = "govfn.lineage_cid"
GSAP_CONTEXT = "govfn.gsap_context_id"
REPLAYED = "govfn.replayed"


class InvocationTracer:
    """A runtime start hook: one span per invocation on `provider`'s tracer."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("govfn", __version__)

    def install(self, runtime: FunctionRuntime) -> InvocationTracer:
        runtime.on_start.append(self)
        return self

    def __call__(self, function_id: str, context: FunctionContext) -> InvocationEnd:
        parent = (
            _PROPAGATOR.extract({"traceparent": context.traceparent})
            if context.traceparent
            else otel_context.Context()  # a root span, whatever is current in this thread
        )
        attributes = {
            FUNCTION_ID: function_id,
            TRIGGER: "pubsub",
            INVOCATION_ID: context.invocation_id,
            EVENT_ID: context.event_id,
            EVENT_SOURCE: context.event_source,
            EVENT_TYPE: context.trigger_event_kind,
            EVENT_SUBJECT: context.event_subject,
            GSAP_CONTEXT: context.gsap_context_id,
        }
        span = self.tracer.start_span(
            function_id,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        token = otel_context.attach(trace.set_span_in_context(span))

        def end(result: FunctionResult | None) -> None:
            try:
                if result is None:
                    span.set_attribute(OUTCOME, ErrorKind.CANCELLED.value)
                    span.set_status(Status(StatusCode.ERROR, ErrorKind.CANCELLED.value))
                else:
                    kind = result.error_kind or ErrorKind.ERROR
                    outcome = "success" if result.success else str(kind)
                    span.set_attribute(OUTCOME, outcome)
                    if result.lineage_cid:
                        span.set_attribute(LINEAGE_CID, result.lineage_cid)
                    if result.replayed:
                        span.set_attribute(REPLAYED, True)
                    if not result.success:  # the kind only: error texts stay in the ledger
                        span.set_status(Status(StatusCode.ERROR, outcome))
                span.end()
            finally:
                otel_context.detach(token)

        return end

    def shutdown(self) -> None:
        """Export what is still queued; called when a worker exits."""
        shutdown = getattr(self.provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def exporters_from_env(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters OTEL_TRACES_EXPORTER names (default otlp); unknown names are logged."""
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    exporters: list[SpanExporter] = []
    for name in filter(None, names):
        if name == "otlp":
            protocol = environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER %r is not supported (otlp, console, none)", name)
    return exporters


def provider_from_env(environ: Mapping[str, str]) -> TracerProvider:
    """A tracer provider exporting through the OTEL_*-configured exporters in batches.

    The service is named by OTEL_SERVICE_NAME, else Knative's K_SERVICE, else "govfn"."""
    env = environ
    attributes: dict[str, str] = {"service.version": __version__}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = env.get("K_SERVICE") or "govfn"
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters_from_env(env):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def trace_invocations(runtime: FunctionRuntime, environ: Mapping[str, str]) -> InvocationTracer:
    """Trace every invocation of `runtime` as `environ` (`Settings.telemetry`) configures."""
    return InvocationTracer(provider_from_env(environ)).install(runtime)
