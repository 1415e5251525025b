"""The CloudEvents receivers: an async core, no web framework on the way.

    POST /functions/<id>/events   that function's receiver
    POST /                        single-function mode: that function's receiver;
                                  otherwise routed by `type` (several matches: all run, 202)

`Receivers.respond()` runs on the event loop of govfn's own worker; `Receivers.__call__`
is the WSGI path (a request thread hands the same coroutine to the loop thread).

Order of refusals: method (405), starting or draining (503), unknown function (404),
overload (429), size (413), media type (415), malformed event (400), unhandled type or
missing GSAP context (400), data that does not fit a typed function's event type
(400, naming the field). Every check happens before any function runs, batch elements
included. A server that is not ready (starting, draining, or its Chronicle or idempotency
store not answering) never answers 400, which Knative's broker does not retry: it answers
503 with Retry-After, and a ready pod gives the final answer.
(govfn's worker refuses a declared oversized body (413) as soon as it has read the head.)
On the WSGI path an answer given before the body is read lingers (`linger.py`), so that a
client still sending reads it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from govfn.cloudevents.decode import IncomingEvent, is_batch, parse_request
from govfn.cloudevents.encode import binary_reply, structured_reply
from govfn.execution import new_invocation_id
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.identity import Sender, SenderRefused
from govfn.observability.metrics import Metrics
from govfn.problem import HttpProblem, status_line
from govfn.receiver.arguments import argument_of
from govfn.receiver.config import HttpConfig
from govfn.receiver.deadlines import Deadlines
from govfn.receiver.delivery import failure_problem, worst_failure
from govfn.receiver.linger import LingeringAnswer, rest_may_be_large
from govfn.receiver.loop_thread import LoopThread
from govfn.receiver.state import ServerState
from govfn.replies import has_reply
from govfn.runtime import FunctionRuntime

if TYPE_CHECKING:
    from govfn.identity.verifier import SenderVerifier

log = logging.getLogger("govfn.receiver")

StartResponse = Callable[..., Any]
Answer = tuple[int, list[tuple[str, str]], bytes]
Work = tuple[IncomingEvent, FunctionPlugin, Any]  # an event, a function, the handler's argument


class EventRequest:
    """What a receiver reads from a request's head, whichever server parsed it."""

    __slots__ = ("authorization", "ce_headers", "content_type", "method", "traceparent")

    def __init__(
        self,
        method: str,
        content_type: str,
        ce_headers: dict[str, str],  # lower-case text after `ce-` -> raw (Latin-1) value
        traceparent: str | None,
        authorization: str | None = None,
    ) -> None:
        self.method = method
        self.content_type = content_type
        self.ce_headers = ce_headers
        self.traceparent = traceparent
        self.authorization = authorization

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> EventRequest:
        return cls(
            environ.get("REQUEST_METHOD") or "",
            environ.get("CONTENT_TYPE") or "",
            ce_headers(environ),
            environ.get("HTTP_TRACEPARENT") or None,
            environ.get("HTTP_AUTHORIZATION") or None,
        )


class Receivers:
    """The receivers' logic: `respond()` on an event loop, `__call__` as a WSGI path."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        config: HttpConfig,
        state: ServerState,
        loop: LoopThread,
        metrics: Metrics,
    ) -> None:
        self.runtime = runtime
        self.registry = runtime.registry
        self.config = config
        self.state = state
        self.loop = loop
        self.metrics = metrics
        self._deadlines: dict[asyncio.AbstractEventLoop, Deadlines] = {}  # loops with requests
        self.senders: SenderVerifier | None = None
        if config.oidc is not None:
            from govfn.identity.verifier import SenderVerifier

            self.senders = SenderVerifier(config.oidc)

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse, function_id: str | None
    ) -> Iterable[bytes]:
        """The WSGI path: the request thread waits while the loop thread invokes."""
        request = EventRequest.from_environ(environ)
        body_read = False
        try:
            plugin = self.admit(request.method, function_id)
            self.enter()
            try:
                body = read_body(environ, self.config.max_body_bytes)
                body_read = True
                status, headers, payload = self.loop.run(self.answer(request, body, plugin))
            finally:
                self.state.leave()
        except HttpProblem as problem:
            status, headers, payload = self.refused(problem)
        except Exception:
            status, headers, payload = self.internal_error()
        headers.append(("Content-Length", str(len(payload))))
        start_response(status_line(status), headers)
        if not body_read and rest_may_be_large(environ):  # an early answer (RFC 9112 §9.6)
            return LingeringAnswer(payload, environ, start_response)
        return [payload]

    async def respond(self, request: EventRequest, body: bytes, function_id: str | None) -> Answer:
        """The answer to one receiver request whose body is read; never raises."""
        try:
            plugin = self.admit(request.method, function_id)
            self.enter()
            try:
                return await self.answer(request, body, plugin)
            finally:
                self.state.leave()
        except HttpProblem as problem:
            return self.refused(problem)
        except Exception:
            return self.internal_error()

    def admit(self, method: str, function_id: str | None) -> FunctionPlugin | None:
        """Refusals that need neither the body nor a slot: 405, 503, 404."""
        if method != "POST":
            raise HttpProblem(405, "receivers accept POST only", extra_headers=[("Allow", "POST")])
        if not self.state.ready:
            why = "shutting down" if self.state.draining else "starting"
            raise HttpProblem(503, f"{why}; retry later", retry_after=self.config.retry_after_s)
        if function_id is None:
            return None
        plugin = self.registry.get(function_id)
        if plugin is None:
            raise HttpProblem(404, f"unknown function {function_id!r}", function_id=function_id)
        return plugin

    def enter(self) -> None:
        """Take an in-flight slot (429 when none is free); `state.leave()` gives it back."""
        if not self.state.try_enter():
            raise HttpProblem(
                429,
                f"more than {self.state.max_in_flight} invocations in flight; retry later",
                retry_after=self.config.retry_after_s,
            )

    def refused(self, problem: HttpProblem) -> Answer:
        if problem.status == 400 and not (self.state.ready and self.runtime.usable):
            problem = HttpProblem(
                503,
                f"not ready; retry later ({problem.detail})",
                retry_after=self.config.retry_after_s,
            )
        self.metrics.rejected(problem.status)
        return problem.status, problem.headers(), problem.to_bytes()

    def internal_error(self) -> Answer:
        log.exception("receiver failed")
        internal = HttpProblem(500, "internal error; see the server log")
        return 500, internal.headers(), internal.to_bytes()

    async def answer(
        self, request: EventRequest, body: bytes, plugin: FunctionPlugin | None
    ) -> Answer:
        """Validate, invoke, reply. Raises HttpProblem for what it refuses."""
        sender = None
        if self.senders is not None:  # a kept token needs no await
            authorization = request.authorization
            sender = self.senders.accepted(authorization) or await self._sender(authorization)
        content_type = request.content_type
        events = parse_request(content_type, request.ce_headers, body)
        traceparent = request.traceparent
        batch = is_batch(content_type)
        work = [
            (
                event,
                target,
                event.data  # untyped: as decoded, no call
                if target.event_model is None
                else argument_of(event, target, index if batch else None),
            )
            for index, event in enumerate(events)
            for target in self._targets(event, plugin)
        ]
        results = await self._run(work, traceparent, sender) if work else []
        worst = worst_failure(results)
        if worst is not None:
            problem = failure_problem(worst, self.config.retry_after_s)
            return problem.status, problem.headers(), problem.to_bytes()
        if batch:
            replies = [
                structured_reply(event, result)
                for (event, _, _), result in zip(work, results, strict=True)
                if has_reply(result)
            ]
            if not replies:
                return 202, [], b""
            payload = json.dumps(replies, separators=(",", ":")).encode("utf-8")
            return 200, [("Content-Type", "application/cloudevents-batch+json")], payload
        if len(results) == 1 and has_reply(results[0]):
            headers, payload = binary_reply(events[0], results[0])
            if traceparent:
                headers.append(("traceparent", traceparent))
            return 200, headers, payload
        return 202, [], b""

    async def _sender(self, authorization: str | None) -> Sender:
        """The verified sender of a delivery; HttpProblem 401, 403 or 503 otherwise."""
        assert self.senders is not None
        try:
            return await self.senders.verify(authorization)
        except SenderRefused as refused:
            if refused.status == 503:
                raise HttpProblem(
                    503, refused.detail, retry_after=self.config.retry_after_s
                ) from None
            challenge = 'Bearer error="invalid_token"' if authorization else "Bearer"
            if refused.status == 403:
                challenge = 'Bearer error="insufficient_scope"'
            raise HttpProblem(
                refused.status,
                refused.detail,
                attribute="authorization",
                extra_headers=[("WWW-Authenticate", challenge)],
            ) from None

    async def _run(
        self,
        work: list[Work],
        traceparent: str | None,
        sender: Sender | None = None,
    ) -> list[FunctionResult]:
        loop = asyncio.get_running_loop()
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            deadlines = self._deadlines[loop] = Deadlines(loop, self.config.request_timeout_s)
        deadline = deadlines.start()
        try:
            if len(work) == 1:
                event, plugin, argument = work[0]
                context = context_of(event, traceparent, sender)
                return [
                    await self.runtime.invoke(
                        plugin.function_id, event.data, context, argument=argument
                    )
                ]
            return await self._invoke_all(work, traceparent, sender)
        except asyncio.CancelledError:
            if not deadline.expired:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            limit = self.config.request_timeout_s
            raise HttpProblem(504, f"no answer within {limit:g}s; cancelled") from None
        finally:
            deadlines.finish(deadline)
            if not deadlines:  # no request under way on this loop: keep no reference to it
                del self._deadlines[loop]

    def _targets(self, event: IncomingEvent, plugin: FunctionPlugin | None) -> list[FunctionPlugin]:
        """The functions `event` goes to; refuses what no function may run."""
        if plugin is None and self.config.function_id is not None:
            plugin = self.registry.get(self.config.function_id)
        if plugin is not None:
            if event.type not in plugin.trigger_events:
                raise HttpProblem(
                    400,
                    f"function {plugin.function_id!r} does not handle event type "
                    f"{event.type!r} (it handles: {', '.join(plugin.trigger_events)})",
                    attribute="type",
                    function_id=plugin.function_id,
                    accepted_types=list(plugin.trigger_events),
                )
            targets = [plugin]
        else:
            targets = list(self.registry.by_trigger(event.type))
            if not targets:
                kinds = self.registry.trigger_kinds()
                raise HttpProblem(
                    400,
                    f"no function handles event type {event.type!r} (handled here: "
                    f"{', '.join(kinds) or 'none'})",
                    attribute="type",
                    accepted_types=kinds,
                )
        for target in targets:
            if target.gsap_required and not event.attributes.get("gsapcontextid"):
                raise HttpProblem(
                    400,
                    f"function {target.function_id!r} requires a GSAP context (gsapcontextid)",
                    attribute="gsapcontextid",
                    function_id=target.function_id,
                )
        return targets

    async def _invoke_all(
        self,
        work: list[Work],
        traceparent: str | None,
        sender: Sender | None,
    ) -> list[FunctionResult]:
        return list(
            await asyncio.gather(
                *(
                    self.runtime.invoke(
                        plugin.function_id,
                        event.data,
                        context_of(event, traceparent, sender),
                        argument=argument,
                    )
                    for event, plugin, argument in work
                )
            )
        )


def context_of(
    event: IncomingEvent, traceparent: str | None, sender: Sender | None = None
) -> FunctionContext:
    """The context of one invocation of `event`, its invocation id drawn already (the
    runtime would otherwise copy the context to set it)."""
    attributes = event.attributes
    return FunctionContext(
        invocation_id=new_invocation_id(),
        trigger_event_kind=event.type,
        chronicle_session_id=attributes.get("chroniclesessionid"),
        gsap_context_id=attributes.get("gsapcontextid"),
        pipeline_run_id=attributes.get("pipelinerunid"),
        event_id=event.id,
        event_source=event.source,
        event_subject=attributes.get("subject"),
        event_time=attributes.get("time"),
        traceparent=traceparent or attributes.get("traceparent"),
        sender_issuer=sender.iss if sender is not None else None,
        sender_subject=sender.sub if sender is not None else None,
    )


def ce_headers(environ: dict[str, Any]) -> dict[str, str]:
    """`ce-*` request headers, keyed by the lower-case text after the prefix."""
    return {key[8:].lower(): value for key, value in environ.items() if key.startswith("HTTP_CE_")}


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """At most `limit` bytes; a declared length over it is refused before reading."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        if not declared.isdigit():
            raise HttpProblem(400, "Content-Length is not a number", attribute="content-length")
        length = int(declared)
        if length > limit:
            raise HttpProblem(
                413,
                f"body of {length} bytes is over the {limit}-byte limit",
                attribute="content-length",
            )
        body: bytes = stream.read(length) if length else b""
        if len(body) < length:
            raise HttpProblem(400, "body shorter than Content-Length", attribute="content-length")
        return body
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise HttpProblem(413, f"body is over the {limit}-byte limit", attribute="body")
    return body
