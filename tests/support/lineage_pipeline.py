"""A three-stage pipeline of governed functions and a broker double that forwards replies.

    GSAP_CR_RECEIVED ─billing→ BILLABLE_EVENT ─meter→ USAGE_METERED ─archive→ (no reply)
                                             └─quota→ fails (PermanentError) above 5 units

`Broker` does what a Knative Broker does with a reply: it posts the reply event, as it
came (binary mode: the same `ce-*` headers and body), to the receiver of every function
whose trigger matches its type, and so on with their replies (bounded in hops).
Serve the functions with `--functions govfn.functions --functions support.lineage_pipeline`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govfn import FunctionContext, PermanentError, governed_function

SUBSCRIPTIONS = {
    "GSAP_CR_RECEIVED": ("billing",),
    "BILLABLE_EVENT": ("meter", "quota"),
    "USAGE_METERED": ("archive",),
}


@governed_function("meter", trigger_events=["BILLABLE_EVENT"], emits=["USAGE_METERED"])
async def meter(event: Any, context: FunctionContext) -> Any:
    return {"metered": event["quantity"], "chronicle_cid": event["chronicle_cid"]}


@governed_function("quota", trigger_events=["BILLABLE_EVENT"], emits=["QUOTA_CHECKED"])
async def quota(event: Any, context: FunctionContext) -> Any:
    if event["quantity"] > 5:
        raise PermanentError(f"quota exceeded: {event['quantity']} units")
    return {"within_quota": True}


@governed_function("archive", trigger_events=["USAGE_METERED"])
async def archive(event: Any, context: FunctionContext) -> Any:
    return {"archived": event["metered"]}


# (status, lower-case headers, body) of one POST
Answer = tuple[int, dict[str, str], bytes]
Send = Callable[[str, dict[str, str], bytes], Answer]


def cr_headers(event_id: str, customer: str = "c-1") -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/gsap",
        "ce-type": "GSAP_CR_RECEIVED",
        "ce-subject": customer,
        "ce-gsapcontextid": "gsap-1",
        "content-type": "application/json",
    }


@dataclass
class Broker:
    send: Send
    max_hops: int = 8
    delivered: list[tuple[str, str, int]] = field(default_factory=list)  # (function, id, status)
    bodies: dict[str, bytes] = field(default_factory=dict)  # event id -> data, as delivered

    def publish(self, headers: dict[str, str], body: bytes) -> None:
        pending = [(headers, body, 0)]
        while pending:
            headers, body, hops = pending.pop(0)
            if hops >= self.max_hops:
                raise AssertionError(f"more than {self.max_hops} hops")
            self.bodies[headers["ce-id"]] = body
            for function_id in SUBSCRIPTIONS.get(headers["ce-type"], ()):
                status, reply_headers, reply_body = self.send(
                    f"/functions/{function_id}/events", headers, body
                )
                self.delivered.append((function_id, headers["ce-id"], status))
                if status == 200 and "ce-type" in reply_headers:
                    forwarded = {
                        k: v
                        for k, v in reply_headers.items()
                        if k.startswith("ce-") or k == "content-type"
                    }
                    pending.append((forwarded, reply_body, hops + 1))

    def submit_cr(self, event_id: str, quantity: int, customer: str = "c-1") -> None:
        body = json.dumps({"customer_id": customer, "quantity": quantity}).encode()
        self.publish(cr_headers(event_id, customer), body)
