"""A three-stage pipeline of governed functions and a broker double that forwards replies.

    GSAP_CR_RECEIVED ─billing→ BILLABLE_EVENT ─meter→ USAGE_METERED ─archive→ (no reply)
                                             └─quota→ fails (PermanentError) above 5 units

`Broker` does what a Knative Broker does with a reply: it posts the reply event, as it
came (binary mode: the same `ce-*` headers and body), to the receiver of every function
whose trigger matches its type, and so on with their replies (bounded in hops).
Serve the functions with `--functions govfn.functions --functions support.lineage_functions`;
the `pipeline` fixture (a pytest plugin) serves them in-process over a real ledger.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from govfn.app import HttpConfig, create_app
from govfn.chronicle import Ledger, LedgerChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime
from govfn.testing import test_client

FUNCTIONS = "support.lineage_functions"
SUBSCRIPTIONS = {
    "GSAP_CR_RECEIVED": ("billing",),
    "BILLABLE_EVENT": ("meter", "quota"),
    "USAGE_METERED": ("archive",),
}


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
    client: Any = None  # the app's test client, when the fixture made one
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


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[Ledger, Broker]]:
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = load_functions(
        ("govfn.functions", FUNCTIONS),
        FunctionRegistry(),
        include_entry_points=False,
    )
    app = create_app(
        runtime=FunctionRuntime(registry, LedgerChronicle(ledger)), config=HttpConfig(dev=True)
    )
    client = test_client(app)

    def send(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        answer = client.post(path, headers=headers, data=body)
        return answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.data

    yield ledger, Broker(send, client)
    app.loop.stop()
    ledger.close()
