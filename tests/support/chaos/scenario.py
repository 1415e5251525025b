"""One run: N billing pods on a fresh database of one PostgreSQL (through the proxy), C CRs
each delivered D times, K at once, by the broker, while the faults of the plan are
injected; then scale-to-zero and the checks. Every broken promise is a line in
`Report.violations` (an empty list is a pass):

- every delivery answered 2xx within the retry policy, and within `max_delivery_s` (a
  dead holder's claim is taken over in seconds, not after a 60 s lease);
- one reply id per CR, and none shared by two CRs;
- exactly one successful billing execution per CR: FUNCTION_COMPLETED with success, for
  function billing, joined to its CR through FUNCTION_INVOKED's invocation id and event id;
- every lineage CID a delivery was answered with is in the ledger after scale-to-zero
  (every pod SIGTERMed, exited 0, its folder removed);
- `govfn chronicle verify` ok.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from support.chaos.broker import Broker, Delivery, RetryPolicy
from support.chaos.faults import Fault, Injector, Target, plan
from support.chaos.pods import Pods
from support.chaos.proxy import TcpProxy
from support.postgres import SUPERUSER, PostgresServer

_CLI_TIMEOUT_S = 300


@dataclass(frozen=True)
class Scenario:
    seed: int
    pods: int = 3
    crs: int = 40
    copies: int = 3
    concurrency: int = 8
    rate: float | None = 25.0  # deliveries begun a second at most
    faults: tuple[str, ...] | None = None  # kinds in order; None: `fault_count` drawn
    fault_count: int = 2
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # A delivery answered later waited for something it should not have (a dead pod's
    # claim held to a fixed lease, say); None: the policy's budget alone.
    max_delivery_s: float | None = 60.0


@dataclass
class Report:
    scenario: Scenario
    faults: list[Fault]
    deliveries: list[Delivery]
    executions: Counter[int]  # CR -> successful billing executions in the ledger
    violations: list[str]
    seconds: float
    logs: Path

    @property
    def retries(self) -> int:
        return sum(d.retries for d in self.deliveries)

    @property
    def max_delivery_s(self) -> float:
        return max((d.seconds for d in self.deliveries), default=0.0)

    def executions_range(self) -> str:
        counts = [self.executions.get(cr, 0) for cr in range(self.scenario.crs)]
        low, high = min(counts, default=0), max(counts, default=0)
        return str(low) if low == high else f"{low}-{high}"

    def story(self) -> str:
        """What a failed run did, for its assertion message."""
        lines = [f"seed {self.scenario.seed}: {len(self.violations)} violation(s)"]
        lines += [f"  {v}" for v in self.violations[:20]]
        lines += [f"  fault at {f.began_s} s: {f}" for f in self.faults]
        lines.append(f"  pod logs: {self.logs}")
        return "\n".join(lines)


def run(scenario: Scenario, database: PostgresServer, root: Path) -> Report:
    began = time.monotonic()
    name = f"chaos_{scenario.seed}_{int(time.time() * 1000) % 10**9}"
    database.create_database(name)
    proxy = TcpProxy(database.port)
    faults = plan(scenario.seed, scenario.faults, scenario.fault_count)
    pods = Pods(
        root / name,
        f"postgresql://{SUPERUSER}@127.0.0.1:{proxy.port}/{name}",
        small_spool=any(f.kind in ("spool-full", "ledger-refuses") for f in faults),
    )
    try:
        _start_pods(pods, scenario.pods)
        broker = Broker(pods.ready, scenario.policy, seed=scenario.seed)
        total = scenario.crs * scenario.copies
        injector = Injector(Target(pods, database, name, proxy), scenario.seed)
        side = threading.Thread(target=_inject_all, args=(injector, faults, broker, total, began))
        side.start()
        deliveries = broker.run(scenario.crs, scenario.copies, scenario.concurrency, scenario.rate)
        side.join(timeout=120)
        if not database.running():  # a fault thread that failed half-way
            database.start()
        pods.scale_to_zero()
        _count_enospc(faults, pods)
        violations = [f"fault {f.kind} never injected" for f in faults if f.began_s is None]
        violations += [
            f"{pod} exited {code} at SIGTERM" for pod, code in pods.exits.items() if code
        ]
        violations += check_deliveries(deliveries, scenario)
        executions, ledger_violations = _check_ledger(database.uri(name), deliveries, scenario)
        violations += ledger_violations
    finally:
        pods.close()
        proxy.close()
    if not violations:
        database.drop_database(name)
    return Report(
        scenario, faults, deliveries, executions, violations, time.monotonic() - began, pods.logs
    )


def _start_pods(pods: Pods, count: int) -> None:
    errors: list[BaseException] = []

    def one() -> None:
        try:
            pods.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def _inject_all(
    injector: Injector, faults: list[Fault], broker: Broker, total: int, began: float
) -> None:
    for fault in faults:
        while broker.started < fault.at * total and broker.finished < total:
            time.sleep(0.005)
        if broker.finished >= total:
            fault.note = "the deliveries were over first"
            continue
        fault.began_s = round(time.monotonic() - began, 2)
        injector.inject(fault)


def _count_enospc(faults: list[Fault], pods: Pods) -> None:
    """Say in each spool-full fault's note how many spool writes the pods logged as failed
    with ENOSPC (requests whose claim was refused never reach the spool)."""
    logs = [path.read_text(errors="replace") for path in pods.logs.glob("*.log")]
    failed = sum(text.count("No space left on device") for text in logs)
    for fault in faults:
        if fault.kind in ("spool-full", "ledger-refuses") and fault.began_s is not None:
            fault.note += f"; {failed} spool write(s) in the run failed with ENOSPC"


def check_deliveries(deliveries: list[Delivery], scenario: Scenario) -> list[str]:
    violations = []
    attempts = scenario.policy.retry + 1
    for d in deliveries:
        if not d.answered:
            violations.append(
                f"cr-{d.cr} delivery {d.copy}: no 2xx in {len(d.statuses)} of {attempts}"
                f" attempts ({d.seconds:.1f} s), statuses {d.statuses} on {d.pods}"
            )
    bound = scenario.max_delivery_s
    violations += [
        f"cr-{d.cr} delivery {d.copy}: answered after {d.seconds:.1f} s (> {bound:.0f} s),"
        f" statuses {d.statuses}"
        for d in deliveries
        if d.answered and bound is not None and d.seconds > bound
    ]
    replies: dict[int, set[str]] = {}
    for d in deliveries:
        if d.answered:
            replies.setdefault(d.cr, set()).add(d.reply_id)
    for cr, ids in sorted(replies.items()):
        if len(ids) != 1 or "" in ids:
            violations.append(f"cr-{cr}: reply ids {sorted(ids)} (one expected)")
    owners = Counter(next(iter(ids)) for ids in replies.values() if len(ids) == 1)
    violations += [f"reply id {rid} answered {n} CRs" for rid, n in owners.items() if n > 1]
    return violations


def _check_ledger(
    uri: str, deliveries: list[Delivery], scenario: Scenario
) -> tuple[Counter[int], list[str]]:
    records = _export(uri)
    executions, violations = check_records(records, deliveries, scenario.crs)
    twice = [cid for cid, n in Counter(r["cid"] for r in records).items() if n > 1]
    if twice:  # where the copies are: (log, seq) of each row
        with psycopg.connect(uri, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT cid, log_id, seq FROM chronicle.records WHERE cid = ANY(%s)"
                " ORDER BY cid, log_id, seq",
                (twice,),
            ).fetchall()
        places: dict[str, list[str]] = {}
        for cid, log_id, seq in rows:
            places.setdefault(cid, []).append(f"log {log_id} seq {seq}")
        violations += [f"{cid} is at {', '.join(at)}" for cid, at in places.items()]
    verified = _govfn("chronicle", "verify", "--ledger", uri)
    if verified.returncode != 0 or not verified.stdout.startswith("ok:"):
        violations.append(f"chronicle verify: {(verified.stdout + verified.stderr).strip()}")
    return executions, violations


def check_records(
    records: list[dict[str, Any]], deliveries: list[Delivery], crs: int
) -> tuple[Counter[int], list[str]]:
    """Successful billing executions per CR in the exported `records` (each must be 1:
    distinct FUNCTION_COMPLETED records with success), every record stored once (records
    are idempotent by CID), and every lineage CID a delivery was answered with among them.
    A failed execution (the handler's own failure, released for the retry by design) is
    not counted."""
    violations: list[str] = []
    copies = Counter(r["cid"] for r in records)
    cr_of: dict[str, int] = {}  # invocation id -> CR
    for r in records:
        payload = r["payload"]
        if r["type"] == "FUNCTION_INVOKED" and payload.get("function_id") == "billing":
            cr_of[payload["invocation_id"]] = int(str(payload["event_id"]).removeprefix("cr-"))
    successes: dict[int, set[str]] = {}  # CR -> "invocation id: record CID" of each success
    for r in records:
        payload = r["payload"]
        if r["type"] != "FUNCTION_COMPLETED" or payload.get("function_id") != "billing":
            continue
        if payload["invocation_id"] not in cr_of:
            violations.append(f"COMPLETED {r['cid']} without its FUNCTION_INVOKED")
        elif payload.get("success"):
            cr = cr_of[payload["invocation_id"]]
            successes.setdefault(cr, set()).add(f"{payload['invocation_id']}: {r['cid']}")
    executions = Counter({cr: len(runs) for cr, runs in successes.items()})
    for cr in range(crs):
        if executions[cr] != 1:
            violations.append(
                f"cr-{cr}: billing ran {executions[cr]} times (one expected)"
                + (f" [{'; '.join(sorted(successes[cr]))}]" if executions[cr] > 1 else "")
            )
    for r in records:
        if copies[r["cid"]] > 1:
            cr = cr_of.get(r["payload"].get("invocation_id", ""), -1)
            violations.append(
                f"{r['type']} {r['cid']} (cr-{cr}) stored {copies[r['cid']]} times (once expected)"
            )
            copies[r["cid"]] = 1  # named once
    for d in deliveries:
        if d.answered and d.lineage_cid not in copies:
            violations.append(f"cr-{d.cr}: acknowledged lineage {d.lineage_cid!r} not in ledger")
    return executions, violations


def _export(uri: str) -> list[dict[str, Any]]:
    done = _govfn("chronicle", "export", "--ledger", uri)
    if done.returncode != 0:
        raise RuntimeError(f"govfn chronicle export failed: {done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _govfn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govfn", *args],
        capture_output=True,
        text=True,
        timeout=_CLI_TIMEOUT_S,
        check=False,
    )
