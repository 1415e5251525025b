"""Functions that declare their Triggers' delivery (`--functions govfn_manifest_delivery`)."""

from __future__ import annotations

from typing import Any

from govfn import Delivery, FunctionContext, governed_function

POLICY = Delivery(
    retry=5,
    backoff_policy="exponential",
    backoff_delay="PT0.5S",
    dead_letter_sink="broker:dlq",
    timeout="PT10S",
)


@governed_function(
    "payments", trigger_events=["PAYMENT_REQUESTED", "PAYMENT_RETRIED"], delivery=POLICY
)
def payments(event: Any, context: FunctionContext) -> Any:
    return None


@governed_function(
    "refunds",
    trigger_events=["REFUND_REQUESTED"],
    delivery=Delivery(dead_letter_sink="https://dlq.example/refunds"),
)
def refunds(event: Any, context: FunctionContext) -> Any:
    return None


@governed_function("audit", trigger_events=["PAYMENT_SETTLED"])
def audit(event: Any, context: FunctionContext) -> Any:
    return None
