"""The fault-injection harness checks what it claims to: a CR billed twice, a reply id
that differs, an acknowledged lineage the ledger lacks and an unanswered delivery are each
a violation; the broker's backoff is Knative's; a seed always draws the same faults; the
proxy delays and cuts (in-process, on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.chaos.broker import Delivery, RetryPolicy
from support.chaos.faults import KINDS, plan
from support.chaos.proxy import TcpProxy
from support.chaos.scenario import Scenario, check_deliveries, check_records


def invoked(invocation: str, cr: int) -> dict[str, Any]:
    payload = {"function_id": "billing", "invocation_id": invocation, "event_id": f"cr-{cr}"}
    return {"cid": f"b-inv-{invocation}", "type": "FUNCTION_INVOKED", "payload": payload}


def completed(invocation: str, *, success: bool = True) -> dict[str, Any]:
    payload = {"function_id": "billing", "invocation_id": invocation, "success": success}
    return {"cid": f"b-done-{invocation}", "type": "FUNCTION_COMPLETED", "payload": payload}


def answered(cr: int, copy: int, reply: str, lineage: str) -> Delivery:
    delivery = Delivery(cr, copy, statuses=[409, 200], reply_id=reply, lineage_cid=lineage)
    delivery.seconds = 0.5
    return delivery


def test_one_execution_per_cr_and_every_acknowledged_lineage_held_pass() -> None:
    records = [invoked("i0", 0), completed("i0"), invoked("i1", 1), completed("i1")]
    records += [invoked("i2", 1), completed("i2", success=False)]  # failed, released: rerun
    deliveries = [answered(0, 0, "r0", "b-done-i0"), answered(1, 0, "r1", "b-done-i1")]
    executions, violations = check_records(records, deliveries, crs=2)
    assert violations == [] and executions == {0: 1, 1: 1}


def test_a_cr_billed_twice_or_never_is_a_violation() -> None:
    records = [invoked("i0", 0), completed("i0"), invoked("i1", 0), completed("i1")]
    _, violations = check_records(records, [], crs=2)
    assert violations == [
        "cr-0: billing ran 2 times (one expected) [i0: b-done-i0; i1: b-done-i1]",
        "cr-1: billing ran 0 times (one expected)",
    ]


def test_a_record_stored_twice_is_one_execution_and_a_violation() -> None:
    records = [invoked("i0", 0), completed("i0"), completed("i0")]
    executions, violations = check_records(records, [], crs=1)
    assert executions == {0: 1}
    assert violations == ["FUNCTION_COMPLETED b-done-i0 (cr-0) stored 2 times (once expected)"]


def test_an_acknowledged_lineage_missing_from_the_ledger_is_a_violation() -> None:
    records = [invoked("i0", 0), completed("i0")]
    _, violations = check_records(records, [answered(0, 0, "r0", "b-lost")], crs=1)
    assert violations == ["cr-0: acknowledged lineage 'b-lost' not in ledger"]


def test_unanswered_slow_and_mismatched_deliveries_are_violations() -> None:
    scenario = Scenario(seed=1, crs=3, policy=RetryPolicy(retry=2))
    slow = answered(2, 0, "r2", "l2")
    slow.seconds = 61.0
    deliveries = [
        answered(0, 0, "r0", "l0"),
        answered(0, 1, "r0-other", "l0"),
        Delivery(1, 0, statuses=[503, 0, 409], pods=["pod-0", "-", "pod-1"]),
        slow,
        answered(2, 1, "r0", "l2"),  # a reply id two CRs share (cr-0 has two: not counted)
    ]
    violations = check_deliveries(deliveries, scenario)
    assert violations[0].startswith("cr-1 delivery 0: no 2xx in 3 of 3 attempts")
    assert violations[1].startswith("cr-2 delivery 0: answered after 61.0 s (> 60 s)")
    assert violations[2] == "cr-0: reply ids ['r0', 'r0-other'] (one expected)"
    assert violations[3] == "cr-2: reply ids ['r0', 'r2'] (one expected)"
    assert len(violations) == 4


def test_the_backoff_is_knatives_exponential_with_retry_after_capped() -> None:
    policy = RetryPolicy(retry=10, backoff_delay_s=0.2, retry_after_max_s=5.0)
    assert [policy.delay(n, "") for n in range(4)] == [0.2, 0.4, 0.8, 1.6]
    assert policy.delay(0, "1") == 1.0  # Retry-After longer than the backoff: honoured
    assert policy.delay(0, "60") == 5.0  # at most retryAfterMax
    assert policy.delay(6, "1") == pytest.approx(12.8)  # shorter: the backoff
    assert RetryPolicy(exponential=False).backoff(2) == pytest.approx(0.6)
    assert policy.budget_s > 200


def test_a_seed_draws_the_same_faults_and_moments() -> None:
    assert plan(7) == plan(7)
    assert {f.kind for seed in range(200) for f in plan(seed)} == set(KINDS)
    fixed = plan(3, ("db-restart", "kill-same"))
    assert [f.kind for f in fixed] == ["db-restart", "kill-same"]
    assert 0.05 <= fixed[0].at <= fixed[1].at <= 0.6
    with pytest.raises(ValueError, match="unknown fault kinds"):
        plan(1, ("meteor",))


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback echo server (one thread per connection)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_the_proxy_forwards_delays_and_cuts(echo_port: int) -> None:
    proxy = TcpProxy(echo_port)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(b"ping")
            assert client.recv(16) == b"ping"
            proxy.latency_s = 0.1
            began = time.monotonic()
            client.sendall(b"slow")
            assert client.recv(16) == b"slow"
            assert time.monotonic() - began >= 0.2  # 0.1 s each way
            proxy.latency_s = 0.0
            assert proxy.cut() == 1
            client.settimeout(5)
            try:
                closed = client.recv(16) == b""
            except ConnectionResetError:
                closed = True
            assert closed
    finally:
        proxy.close()
