"""`billing`: turns a GSAP change request (GSAP_CR_RECEIVED) into one billable usage event.

The usage event is a CloudEvent-shaped dict that a CloudEvents usage meter (OpenMeter)
ingests as is: `subject` is the billed customer, the rest lives in `data`. Its `id`
depends only on the trigger event (`source` + `id`) and this function's id and version,
so a redelivered CR produces the same id and the meter counts it once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from govfn.chronicle.cid import content_cid
from govfn.errors import PermanentError
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult

METER = "gsap_cr"


def billable_event_id(source: str, event_id: str, function_id: str, version: str) -> str:
    """Deterministic id of the usage event billed for one trigger event."""
    key = "\x1f".join((source, event_id, function_id, version)).encode("utf-8")
    return "bill-" + hashlib.sha256(key).hexdigest()[:32]


class BillingProcessor(FunctionPlugin):
    function_id = "billing"
    version = "1.0.0"
    description = "Turns a GSAP change request into a billable usage event (OpenMeter-ready)."
    trigger_events = ("GSAP_CR_RECEIVED",)
    emits = ("BILLABLE_EVENT",)
    gsap_required = True
    idempotent = True
    reply_is_event = True  # the reply *is* the usage event a meter ingests

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=True, data=self.billable_event(event, context))

    def billable_event(self, event: Any, context: FunctionContext) -> dict[str, Any]:
        if not isinstance(event, dict):
            raise PermanentError(f"GSAP CR data must be a JSON object, got {type(event).__name__}")
        customer = event.get("customer_id") or context.event_subject
        if not isinstance(customer, str) or not customer:
            raise PermanentError(
                "GSAP CR names no customer: set data.customer_id or the event subject; not billed"
            )
        quantity = event.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            raise PermanentError(f"GSAP CR quantity must be a positive number, got {quantity!r}")
        if not context.event_id or not context.event_source:
            raise PermanentError(
                "the trigger event's id and source are needed to bill it exactly once"
            )
        input_cid = content_cid(event)
        return {
            "specversion": "1.0",
            "id": billable_event_id(
                context.event_source, context.event_id, self.function_id, self.version
            ),
            "source": f"/govfn/functions/{self.function_id}",
            "type": self.emits[0],
            "subject": customer,
            "time": context.event_time
            or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": {
                "meter": METER,
                "quantity": quantity,
                "chronicle_cid": context.trigger_event_cid or input_cid,
                "input_cid": input_cid,
                "gsap_context_id": context.gsap_context_id,
                "function": self.function_id,
                "version": self.version,
            },
        }
