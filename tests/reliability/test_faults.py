"""Billed once and lineage kept, under each fault kind: three real `govfn serve --function
billing` pods on one real PostgreSQL, 30 CRs delivered three times each, eight at once, with
a Knative broker's retries landing on any live pod, while faults are injected
(`support.chaos.faults`: every kind once, in four runs). Short runs of the harness that `make chaos` runs seeded and long."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chaos.broker import RetryPolicy
from support.chaos.scenario import Scenario, run
from support.postgres import PostgresServer

pytestmark = pytest.mark.slow

POLICY = RetryPolicy(retry=10, backoff_delay_s=0.2)


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    """One PostgreSQL of this module's own (the faults stop it); a database per run."""
    server = PostgresServer().start()
    yield server
    server.destroy()


@pytest.mark.parametrize(
    "faults",
    [
        ("kill-same", "kill-fresh"),
        ("db-restart", "kill-same"),  # issue 19's: a pod dies while outcomes wait in memory
        ("terminate", "cut", "slow-db"),
        ("spool-full",),
    ],
    ids=lambda kinds: "+".join(kinds),
)
@pytest.mark.timeout(300)
def test_each_cr_is_billed_once_and_its_lineage_kept(
    faults: tuple[str, ...], database: PostgresServer, tmp_path: Path
) -> None:
    scenario = Scenario(seed=19, pods=3, crs=30, copies=3, concurrency=8, faults=faults)
    report = run(scenario, database, tmp_path)
    assert not report.violations, report.story()
    assert all(fault.began_s is not None for fault in report.faults)
