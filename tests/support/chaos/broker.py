"""A Knative broker's delivery, as its Trigger's `delivery` spec says: every CR delivered
`copies` times (at-least-once), `concurrency` at once, each attempt to any live pod, and
retried on 404, 408, 409, 429, 5xx, a connection error or a timeout, with the backoff of
`RetryPolicy` (Knative's `retry`, `backoffPolicy`, `backoffDelay`, `retryAfterMax`,
`timeout`). With a `rate`, deliveries begin at most that many a second (events arriving
over time, so that faults meet traffic before and after them). A delivery whose attempts
run out stays unanswered (its last status is kept), as the broker would hand it to the
dead-letter sink.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from support.chaos.pods import Pod
from support.http_server import binary_headers

RETRIED = frozenset({404, 408, 409, 429}) | frozenset(range(500, 600))
CONNECTION_ERROR = 0  # the status recorded for a refused, reset or timed-out attempt


@dataclass(frozen=True)
class RetryPolicy:
    """Knative's delivery spec: `retry` retries after the first attempt, waiting
    `backoff_delay_s * 2**n` before retry n (n from 0; linear: `* (n + 1)`), or what
    Retry-After asks when that is longer, at most `retry_after_max_s`."""

    retry: int = 10
    backoff_delay_s: float = 0.2
    exponential: bool = True
    retry_after_max_s: float = 5.0
    timeout_s: float = 15.0  # one attempt (Knative's delivery.timeout)

    def backoff(self, retry: int) -> float:
        factor = 2**retry if self.exponential else retry + 1
        return float(self.backoff_delay_s * factor)

    def delay(self, retry: int, retry_after: str) -> float:
        wait = self.backoff(retry)
        if retry_after.strip().isdigit():
            wait = max(wait, min(float(retry_after), self.retry_after_max_s))
        return wait

    @property
    def budget_s(self) -> float:
        """The longest a delivery may take: every backoff (Retry-After at its longest)
        plus every attempt timing out."""
        waits = sum(max(self.backoff(n), self.retry_after_max_s) for n in range(self.retry))
        return waits + (self.retry + 1) * self.timeout_s


@dataclass
class Delivery:
    cr: int
    copy: int
    statuses: list[int] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)
    reply_id: str = ""
    lineage_cid: str = ""
    seconds: float = 0.0

    @property
    def status(self) -> int:
        return self.statuses[-1] if self.statuses else CONNECTION_ERROR

    @property
    def answered(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retries(self) -> int:
        return max(len(self.statuses) - 1, 0)


def cr_event(cr: int) -> tuple[dict[str, str], bytes]:
    """The CloudEvent of CR number `cr` (the same bytes on every delivery of it)."""
    headers = binary_headers(
        "GSAP_CR_RECEIVED", f"cr-{cr}", gsapcontextid=f"gsap-{cr % 5}", subject=f"cust-{cr % 7}"
    )
    data = {"customer_id": f"cust-{cr % 7}", "quantity": 1 + cr % 3}
    return headers, json.dumps(data).encode()


class Broker:
    """Delivers to the pods `live()` returns at each attempt (the ready ones)."""

    def __init__(
        self, live: Callable[[], list[Pod]], policy: RetryPolicy, *, seed: int = 0
    ) -> None:
        self.live = live
        self.policy = policy
        self.seed = seed
        self.deliveries: list[Delivery] = []
        self.started = 0
        self.finished = 0
        self._lock = threading.Lock()

    def run(
        self, crs: int, copies: int, concurrency: int, rate: float | None = None
    ) -> list[Delivery]:
        """Deliver every CR `copies` times in an order the seed shuffles; returns once every
        delivery is answered or has run out of attempts (bounded by the policy's budget)."""
        order = [(cr, copy) for cr in range(crs) for copy in range(copies)]
        random.Random(self.seed).shuffle(order)
        self.deliveries = [Delivery(cr, copy) for cr, copy in order]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = []
            for n, delivery in enumerate(self.deliveries):
                rng = random.Random(self.seed * 1_000_003 + n)
                futures.append(pool.submit(self._deliver, delivery, rng))
                if rate:
                    time.sleep(1 / rate)
            for future in futures:
                future.result(timeout=self.policy.budget_s + 60)
        return self.deliveries

    def _deliver(self, delivery: Delivery, rng: random.Random) -> None:
        headers, body = cr_event(delivery.cr)
        with self._lock:
            self.started += 1
        began = time.monotonic()
        answer: dict[str, str] = {}
        for retry in range(self.policy.retry + 1):
            if retry:
                time.sleep(self.policy.delay(retry - 1, answer.get("retry-after", "")))
            pods = self.live()
            pod = rng.choice(pods) if pods else None
            answer = self._attempt(pod, headers, body)
            delivery.statuses.append(int(answer["status"]))
            delivery.pods.append(pod.name if pod else "-")
            if int(answer["status"]) not in RETRIED | {CONNECTION_ERROR}:
                delivery.reply_id = answer.get("ce-id", "")
                delivery.lineage_cid = answer.get("ce-lineagecid", "")
                break
        delivery.seconds = time.monotonic() - began
        with self._lock:
            self.finished += 1

    def _attempt(self, pod: Pod | None, headers: dict[str, str], body: bytes) -> dict[str, str]:
        if pod is None:
            return {"status": str(CONNECTION_ERROR)}
        pod.enter()
        connection = http.client.HTTPConnection("127.0.0.1", pod.port, self.policy.timeout_s)
        try:
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            answer = {name.lower(): value for name, value in response.getheaders()}
            answer["status"] = str(response.status)
            return answer
        except (OSError, http.client.HTTPException):
            return {"status": str(CONNECTION_ERROR)}  # refused, reset or timed out
        finally:
            connection.close()
            pod.leave()
