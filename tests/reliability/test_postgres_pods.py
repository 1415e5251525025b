"""Three `govfn serve --function billing` pods sharing one real PostgreSQL, as Knative runs
them: each pod has its own var/ folder, the broker delivers every CR three times to
different pods and retries what is not acknowledged. Billed once, lineage never lost: also
when PostgreSQL crashes (`pg_ctl -m immediate`) and comes back in the middle."""

from __future__ import annotations

import http.client
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from govfn.chronicle.postgres.ledger import PostgresLedger

from support.http_server import Server, binary_headers, start_server, stop_server
from support.postgres import PostgresServer

PODS, CRS, DELIVERIES = 3, 100, 3
RETRIED = frozenset({404, 408, 409, 429}) | frozenset(range(500, 600))
MAX_ATTEMPTS, MAX_DELIVERY_S, MAX_BACKOFF_S = 200, 60.0, 1.0


class Answer(NamedTuple):
    cr: int
    status: int
    reply_id: str
    lineage_cid: str
    attempts: int


def cr_event(cr: int) -> tuple[dict[str, str], bytes]:
    headers = binary_headers(
        "GSAP_CR_RECEIVED", f"cr-{cr}", gsapcontextid=f"gsap-{cr % 5}", subject=f"cust-{cr % 7}"
    )
    return headers, json.dumps({"customer_id": f"cust-{cr % 7}", "quantity": 1 + cr % 3}).encode()


def post(server: Server, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    except OSError:
        return 503, {}  # refused or reset: a broker retries that too
    finally:
        connection.close()


def deliver(pods: list[Server], cr: int, first_pod: int) -> Answer:
    """One delivery, retried the way a broker does: on 404/408/409/429/5xx, with a backoff
    that doubles up to a second (or what Retry-After asks, at most that), each retry going to
    the next pod; bounded in attempts and time."""
    headers, body = cr_event(cr)
    deadline = time.monotonic() + MAX_DELIVERY_S
    backoff = 0.02
    for attempt in range(1, MAX_ATTEMPTS + 1):
        status, reply = post(pods[(first_pod + attempt - 1) % len(pods)], headers, body)
        if status not in RETRIED:
            return Answer(
                cr, status, reply.get("ce-id", ""), reply.get("ce-lineagecid", ""), attempt
            )
        if time.monotonic() > deadline:
            break
        asked = reply.get("retry-after", "")
        time.sleep(min(float(asked) if asked.isdigit() else backoff, MAX_BACKOFF_S))
        backoff = min(backoff * 2, MAX_BACKOFF_S)
    return Answer(cr, status, "", "", attempt)


def deliver_all(pods: list[Server], during: Callable[[int], None] | None = None) -> list[Answer]:
    """Every CR three times, to three different pods, shuffled and concurrent; `during(n)`
    runs in its own thread once n answers are in (n = a third of them)."""
    deliveries = [(cr, (cr + d) % len(pods)) for cr in range(CRS) for d in range(DELIVERIES)]
    random.Random(11).shuffle(deliveries)
    answers: list[Answer] = []
    third = len(deliveries) // 3
    started = threading.Event()
    lock = threading.Lock()
    side: list[threading.Thread] = []

    def one(cr: int, pod: int) -> None:
        answer = deliver(pods, cr, pod)
        with lock:
            answers.append(answer)
            if during is not None and len(answers) >= third and not started.is_set():
                started.set()
                side.append(threading.Thread(target=during, args=(len(answers),)))
                side[0].start()

    with ThreadPoolExecutor(max_workers=24) as pool:
        for future in [pool.submit(one, cr, pod) for cr, pod in deliveries]:
            future.result(timeout=MAX_DELIVERY_S * 2)
    for thread in side:
        thread.join(timeout=120)
    return answers


@pytest.fixture
def start_pods(tmp_path: Path) -> Iterator[Callable[[str], list[Server]]]:
    started: list[Server] = []

    def start(uri: str) -> list[Server]:
        for index in range(PODS):
            folder = tmp_path / f"pod-{index}"
            folder.mkdir()
            started.append(
                start_server(
                    folder, "--function", "billing", cwd=folder, env={"GOVFN_CHRONICLE": uri}
                )
            )
        return started

    yield start
    for server in started:
        stop_server(server)


def scale_to_zero(pods: list[Server], tmp_path: Path) -> None:
    """SIGTERM every pod, wait for it to exit, and delete its folder (its emptyDir)."""
    for server in pods:
        stop_server(server)
        assert server.process.returncode == 0, server.log_text()
    for index in range(PODS):
        folder = tmp_path / f"pod-{index}"
        shutil.copy(folder / "server.log", tmp_path / f"pod-{index}.log")  # for a failure's story
        shutil.rmtree(folder)


def billing_records(uri: str) -> tuple[Counter[str], set[str]]:
    """How many records of each kind billing left in the database, and every CID stored."""
    kinds: Counter[str] = Counter()
    cids: set[str] = set()
    with PostgresLedger(uri) as ledger:
        for record in ledger.records():
            cids.add(record.cid)
            if record.payload.get("function_id") != "billing":
                continue
            if record.type == "FUNCTION_COMPLETED":
                kinds["completed ok" if record.payload.get("success") else "completed failed"] += 1
            else:
                kinds[record.type] += 1
    return kinds, cids


def verify(uri: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govfn", "chronicle", "verify", "--ledger", uri],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_billed_once_and_kept(answers: list[Answer], uri: str) -> None:
    assert len(answers) == CRS * DELIVERIES
    assert Counter(a.status for a in answers) == {200: CRS * DELIVERIES}, answers
    reply_ids: dict[int, set[str]] = {}
    for answer in answers:
        reply_ids.setdefault(answer.cr, set()).add(answer.reply_id)
    assert all(len(ids) == 1 for ids in reply_ids.values())  # a redelivery: the same reply
    assert len({a.reply_id for a in answers}) == CRS
    kinds, stored = billing_records(uri)
    assert kinds == {"FUNCTION_INVOKED": CRS, "completed ok": CRS}  # 100 handler executions
    answered = {a.lineage_cid for a in answers}
    assert len(answered) == CRS and answered <= stored  # every acknowledged lineage is held
    verified = verify(uri)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok:")


def test_three_pods_bill_each_cr_once_and_keep_every_record(
    postgres_uri: str, start_pods: Callable[[str], list[Server]], tmp_path: Path
) -> None:
    pods = start_pods(postgres_uri)
    answers = deliver_all(pods)
    scale_to_zero(pods, tmp_path)
    assert_billed_once_and_kept(answers, postgres_uri)


def test_a_database_crash_under_load_loses_nothing_and_bills_once(
    private_postgres: Callable[..., PostgresServer],
    start_pods: Callable[[str], list[Server]],
    tmp_path: Path,
) -> None:
    database = private_postgres()
    uri = database.create_database()
    pods = start_pods(uri)
    outage: list[float] = []

    def crash_and_restart(answered: int) -> None:
        database.crash()  # pg_ctl stop -m immediate, with deliveries in flight
        began = time.monotonic()
        time.sleep(1.0)
        database.start()
        outage.append(time.monotonic() - began)

    answers = deliver_all(pods, during=crash_and_restart)
    assert outage, "the database was never stopped"
    retried = [a for a in answers if a.attempts > 1]
    assert retried  # the outage was felt: some deliveries were answered only on a retry
    scale_to_zero(pods, tmp_path)
    assert_billed_once_and_kept(answers, uri)
