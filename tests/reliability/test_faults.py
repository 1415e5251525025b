"""Billed once and lineage kept, under each fault kind: three real `govfn serve --function
billing` pods on one real PostgreSQL, 30 CRs delivered three times each, eight at once, with
a Knative broker's retries landing on any live pod, while faults are injected
(`support.chaos.faults`: every kind once, in three runs). The session's PostgreSQL is
stopped and started again by these runs; each has a database of its own. Short runs of the
harness that `make chaos` runs seeded and long."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.chaos.broker import RetryPolicy
from support.chaos.scenario import Scenario, run
from support.postgres import PostgresServer

pytestmark = pytest.mark.slow

POLICY = RetryPolicy(retry=10, backoff_delay_s=0.2)


@pytest.mark.parametrize(
    ("faults", "crs"),
    [
        # issue 19's: pods die after an outage (outcomes waited in memory before the fix)
        (("db-restart", "kill-same", "kill-fresh"), 30),
        (("terminate", "cut", "slow-db", "answer-lost"), 40),
        (("spool-full", "ledger-refuses"), 30),
    ],
    ids=lambda value: "+".join(value) if isinstance(value, tuple) else str(value),
)
@pytest.mark.timeout(300)
def test_each_cr_is_billed_once_and_its_lineage_kept(
    faults: tuple[str, ...], crs: int, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    if not postgres_server.running():  # a test before this one stopped it and failed
        postgres_server.start()
    scenario = Scenario(
        seed=19, pods=3, crs=crs, copies=3, concurrency=8, faults=faults, policy=POLICY
    )
    report = run(scenario, postgres_server, tmp_path)  # stops and starts it: it is back after
    assert not report.violations, report.story()
    assert all(fault.began_s is not None for fault in report.faults)
