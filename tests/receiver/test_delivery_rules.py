"""Knative's delivery rules: one table (ErrorKind) decides status, redelivery and precedence."""

from __future__ import annotations

import json

import pytest

from govfn.function import FunctionResult
from govfn.outcome import KNATIVE_RETRIED_STATUSES, ErrorKind
from govfn.receiver.delivery import failure_problem, status_for, worst_failure

# What each kind is answered with and whether the broker redelivers: Knative's contract
# (404, 408, 409, 429 and 5xx are retried; everything else goes to the dead-letter sink).
EXPECTED = {
    "unavailable": (503, True),
    "error": (500, True),
    "timeout": (504, True),
    "cancelled": (504, True),
    "in_progress": (409, True),
    "unknown_function": (404, True),
    "gsap_required": (400, False),
    "invalid_data": (400, False),
    "permanent": (422, False),
    "conflict": (422, False),
}


def failed(kind: str | None, **fields: object) -> FunctionResult:
    return FunctionResult(success=False, error="e", error_kind=kind, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), EXPECTED.items())
def test_each_kind_carries_its_status_and_whether_knative_retries_it(
    value: str, expected: tuple[int, bool]
) -> None:
    kind = ErrorKind(value)
    assert (kind.status, kind.retried) == expected
    assert kind.retried == (kind.status in KNATIVE_RETRIED_STATUSES)
    assert status_for(failed(value)) == kind.status == failure_problem(failed(value), 3).status


def test_the_table_names_every_kind_once() -> None:
    assert sorted(kind.value for kind in ErrorKind) == sorted(EXPECTED)


def test_a_missing_or_unknown_kind_is_an_error() -> None:
    assert ErrorKind.of(None) is ErrorKind.of("no-such-kind") is ErrorKind.ERROR
    assert status_for(failed("no-such-kind")) == 500
    assert failure_problem(failed(None), 3).body()["error_kind"] == "error"


def test_retried_failures_decide_over_final_ones() -> None:
    order = [
        ErrorKind.UNAVAILABLE,
        ErrorKind.ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.CANCELLED,
        ErrorKind.IN_PROGRESS,
        ErrorKind.UNKNOWN_FUNCTION,
    ]
    assert [kind.severity for kind in order] == sorted((k.severity for k in order), reverse=True)
    assert all(kind.retried for kind in order)
    final = [kind for kind in ErrorKind if not kind.retried]
    assert max(kind.severity for kind in final) < min(kind.severity for kind in order)
    results = [failed("permanent"), failed("in_progress"), FunctionResult(success=True)]
    worst = worst_failure(results)
    assert worst is not None and worst.error_kind == "in_progress"
    assert worst_failure([FunctionResult(success=True)]) is None


def test_success_answers_200_with_a_reply_and_202_without() -> None:
    assert status_for(FunctionResult(success=True, data={"a": 1}, reply_type="R")) == 200
    assert status_for(FunctionResult(success=True, data={"a": 1})) == 202


def test_a_cancelled_invocation_asks_for_a_retry_and_names_its_kind() -> None:
    problem = failure_problem(failed("cancelled", function_id="f", invocation_id="i"), 7)
    body = json.loads(problem.to_bytes())
    assert problem.status == 504 and ("Retry-After", "7") in problem.headers()
    assert body["error_kind"] == "cancelled" and body["function_id"] == "f"
