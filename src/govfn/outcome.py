"""Why an invocation failed: `ErrorKind`, one table of Knative's delivery rules.

Each kind carries the HTTP status a receiver answers with, whether Knative's broker
redelivers an event answered with that status (404, 408, 409, 429 and 5xx; every other
status is final and goes to the dead-letter sink), and its severity: when several
invocations answer one request, the most severe failure decides the answer, retried
kinds first, so the broker redelivers rather than dead-letters.

The value of a kind is what the Chronicle's FUNCTION_COMPLETED record holds as
`error_kind`: renaming one changes the records, and their CIDs.
"""

from __future__ import annotations

from enum import StrEnum

KNATIVE_RETRIED_STATUSES = frozenset({404, 408, 409, 429}) | frozenset(range(500, 600))


class ErrorKind(StrEnum):
    status: int
    retried: bool
    severity: int

    def __new__(cls, value: str, status: int, severity: int) -> ErrorKind:
        kind = str.__new__(cls, value)
        kind._value_ = value
        kind.status = status
        kind.retried = status in KNATIVE_RETRIED_STATUSES
        kind.severity = severity
        return kind

    # value, HTTP status, severity
    UNAVAILABLE = "unavailable", 503, 8  # a store or the Chronicle failed: nothing ran, or
    #                                      nothing durable holds the records; retry later
    ERROR = "error", 500, 7  # the handler raised, or returned something that is not a result
    TIMEOUT = "timeout", 504, 6  # the function's own `timeout` passed
    CANCELLED = "cancelled", 504, 5  # stopped from outside, as when the request's time is up
    IN_PROGRESS = "in_progress", 409, 4  # an idempotent function is running the same event
    UNKNOWN_FUNCTION = "unknown_function", 404, 3  # it may be rolling out
    GSAP_REQUIRED = "gsap_required", 400, 1
    INVALID_DATA = "invalid_data", 400, 1  # the data does not fit the handler's event type
    PERMANENT = "permanent", 422, 1  # the event will never succeed (PermanentError)
    CONFLICT = "conflict", 422, 1  # the same event id came again with another payload

    @classmethod
    def of(cls, value: str | None) -> ErrorKind:
        """The kind named `value`; a missing or unknown name is an ERROR."""
        if isinstance(value, ErrorKind):
            return value
        return _BY_VALUE.get(value or "", cls.ERROR)


_BY_VALUE = {kind.value: kind for kind in ErrorKind}
