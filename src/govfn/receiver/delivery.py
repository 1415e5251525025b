"""From a FunctionResult to an HTTP status, following Knative's delivery contract.

success, data and a reply type  → 200, the reply CloudEvent (see `govfn.cloudevents.encode`)
success otherwise               → 202, empty body
a failure                       → its `ErrorKind`'s status, with a problem body that names
                                  the kind and never holds a handler's exception text

The table itself (status, retried or not, severity per kind) is `govfn.outcome.ErrorKind`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from govfn.function import FunctionResult
from govfn.outcome import ErrorKind
from govfn.problem import HttpProblem
from govfn.replies import has_reply


def status_for(result: FunctionResult) -> int:
    if result.success:
        return 200 if has_reply(result) else 202
    return ErrorKind.of(result.error_kind).status


def worst_failure(results: Sequence[FunctionResult]) -> FunctionResult | None:
    """The failure that decides the answer when several invocations answer one request."""
    failures = [result for result in results if not result.success]
    if not failures:
        return None
    return max(failures, key=lambda result: ErrorKind.of(result.error_kind).severity)


def failure_problem(result: FunctionResult, retry_after_s: int) -> HttpProblem:
    """The problem body for a failed result; handler exception text is never exposed."""
    kind = ErrorKind.of(result.error_kind)
    extra: dict[str, Any] = {
        "function_id": result.function_id,
        "invocation_id": result.invocation_id,
    }
    if kind is ErrorKind.GSAP_REQUIRED:
        detail = result.error or "a GSAP context is required"
        return HttpProblem(kind.status, detail, attribute="gsapcontextid", **extra)
    if kind is ErrorKind.INVALID_DATA:  # govfn's own words: never a handler's text
        detail = result.error or "the event data does not fit the function's event type"
        return HttpProblem(kind.status, detail, attribute="data", error_kind=kind.value, **extra)
    if kind is ErrorKind.UNKNOWN_FUNCTION:
        return HttpProblem(kind.status, f"unknown function {result.function_id!r}", **extra)
    if kind in (ErrorKind.PERMANENT, ErrorKind.CONFLICT):
        return HttpProblem(kind.status, result.error or kind, error_kind=kind.value, **extra)
    if kind is ErrorKind.IN_PROGRESS:
        return HttpProblem(
            kind.status,
            "the same event is being processed; retry later",
            retry_after=retry_after_s,
            error_kind=kind.value,
            **extra,
        )
    if kind is ErrorKind.UNAVAILABLE:
        detail = result.error or "a dependency is unavailable; retry later"
        return HttpProblem(
            kind.status, detail, retry_after=retry_after_s, error_kind=kind.value, **extra
        )
    if kind is ErrorKind.TIMEOUT:
        detail = "the function timed out"
        return HttpProblem(kind.status, detail, error_kind=kind.value, **extra)
    if kind is ErrorKind.CANCELLED:
        detail = "the invocation was cancelled before it finished; retry later"
        return HttpProblem(
            kind.status, detail, retry_after=retry_after_s, error_kind=kind.value, **extra
        )
    return HttpProblem(
        kind.status,
        "the function failed; see the server log for this invocation id",
        error_kind=ErrorKind.ERROR.value,
        **extra,
    )
