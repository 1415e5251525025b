"""The PostgreSQL idempotency store when its database fails and comes back, and under
concurrent claims of one key, and a serving role that may not run DDL; a real server,
crashed with `pg_ctl stop -m immediate`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from govfn.idempotency import IdempotencyUnavailable, idempotency_key
from govfn.idempotency.postgres import PostgresIdempotencyStore

from support.postgres import PostgresServer


async def settled(store: PostgresIdempotencyStore) -> bool:
    """Wait (bounded) until the store's kept outcomes are written."""
    for _ in range(100):
        if await store.flush():
            return True
        await asyncio.sleep(0.1)
    return False


def test_outcomes_wait_for_the_database(private_postgres: Callable[..., PostgresServer]) -> None:
    server = private_postgres()
    uri = server.create_database()
    key = idempotency_key("billing", "/s", "cr-1")

    async def scenario() -> None:
        runner, other = PostgresIdempotencyStore(uri, wait_s=0.3), PostgresIdempotencyStore(uri)
        try:
            assert (await runner.claim(key, "fp")).status == "run"
            server.crash()
            await runner.complete(key, {"n": 1})  # the database is gone: kept
            assert runner.kept == 1
            assert await runner.claim(key, "fp") == ("replay", key, {"n": 1})  # from memory
            assert (await runner.claim(key, "other")).status == "conflict"
            other_key = idempotency_key("billing", "/s", "cr-2")
            failed = await asyncio.gather(
                runner.claim(other_key, "fp"), runner.claim(other_key, "fp"), return_exceptions=True
            )
            assert all(isinstance(f, IdempotencyUnavailable) for f in failed)
            assert runner.kept == 3  # the result, and a release owed for each unanswered claim
            server.start()
            assert await settled(runner) and runner.kept == 0
            assert (await other.claim(other_key, "fp")).status == "run"  # nothing left held
            assert await other.claim(key, "fp") == ("replay", key, {"n": 1})
        finally:
            await runner.aclose()
            await other.aclose()

    asyncio.run(scenario())


def test_a_claim_after_a_restart_succeeds_at_once(
    private_postgres: Callable[..., PostgresServer],
) -> None:
    """The pool's connections died with the server: the first claim after it is back
    checks the pool and goes through, rather than answering 503 once per dead connection."""
    server = private_postgres()
    uri = server.create_database()

    async def scenario() -> list[str]:
        store = PostgresIdempotencyStore(uri)
        try:
            keys = [idempotency_key("f", "/s", str(i)) for i in range(4)]
            statuses = [
                c.status for c in await asyncio.gather(*(store.claim(k, "fp") for k in keys))
            ]
            server.crash()
            server.start()
            statuses.append((await store.claim(idempotency_key("f", "/s", "after"), "fp")).status)
            return statuses
        finally:
            await store.aclose()

    assert asyncio.run(scenario()) == ["run"] * 5


def test_concurrent_claims_of_one_key_run_it_once(postgres_uri: str) -> None:
    async def scenario() -> list[Any]:
        stores = [PostgresIdempotencyStore(postgres_uri, max_connections=8) for _ in range(3)]
        try:
            keys = [idempotency_key("f", "/s", str(i)) for i in range(20)]
            claims = [store.claim(key, "fp") for key in keys for store in stores for _ in range(3)]
            return [c.status for c in await asyncio.gather(*claims)]
        finally:
            for store in stores:
                await store.aclose()

    statuses = asyncio.run(scenario())
    per_key = [statuses[i : i + 9] for i in range(0, len(statuses), 9)]
    assert all(group.count("run") == 1 for group in per_key)
    assert all(set(group) == {"run", "in_progress"} for group in per_key)


def test_a_release_touches_only_its_own_claim(postgres_uri: str) -> None:
    """A holder whose lease lapsed and was taken over cannot free the new holder's claim."""
    key = idempotency_key("f", "/s", "lease")

    async def scenario() -> tuple[str, str]:
        lapsed = PostgresIdempotencyStore(postgres_uri, min_lease_s=0)
        current = PostgresIdempotencyStore(postgres_uri)
        try:
            assert (await lapsed.claim(key, "fp")).status == "run"
            assert (await current.claim(key, "fp")).status == "run"  # took it over
            await lapsed.release(key)  # late: must not free the current claim
            await lapsed.complete(key, {"stale": True})  # nothing held any more: no effect
            during = (await lapsed.claim(key, "fp")).status
            await current.complete(key, {"n": 1})
            after = await lapsed.claim(key, "fp")
            return during, after.status
        finally:
            await lapsed.aclose()
            await current.aclose()

    assert asyncio.run(scenario()) == ("in_progress", "replay")


def test_the_schema_is_created_once_by_many_processes_at_once(postgres_uri: str) -> None:
    async def scenario() -> list[None]:
        stores = [PostgresIdempotencyStore(postgres_uri) for _ in range(6)]
        try:
            return list(await asyncio.gather(*(store.check() for store in stores)))
        finally:
            for store in stores:
                await store.aclose()

    assert asyncio.run(scenario()) == [None] * 6


def test_a_serving_role_without_ddl_rights_uses_what_init_created(
    postgres_server: PostgresServer, postgres_uri: str
) -> None:
    database = postgres_uri.rsplit("/", 1)[1]
    role = f"claims_{database}"
    postgres_server.create_role(role)
    serving = PostgresIdempotencyStore(postgres_server.uri_as(role, database))
    with pytest.raises(IdempotencyUnavailable, match="run `govfn chronicle init`"):
        serving.prepare()

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFN_")}
    init = subprocess.run(
        [sys.executable, "-m", "govfn", "chronicle", "init", "--ledger", postgres_uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    assert "ok: idempotency schema ready in database" in init.stdout
    with psycopg.connect(postgres_uri, autocommit=True) as conn:  # what the README says
        conn.execute(f'GRANT USAGE ON SCHEMA idempotency TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency.claims TO "{role}"')
        conn.execute(f'GRANT SELECT ON idempotency.schema_version TO "{role}"')
    key = idempotency_key("f", "/s", "granted")

    async def scenario() -> tuple[str, Any]:
        try:
            serving.prepare()
            assert (await serving.claim(key, "fp")).status == "run"
            await serving.complete(key, {"n": 1})
            return (await serving.claim(key, "fp")).status, serving.kept
        finally:
            await serving.aclose()

    assert asyncio.run(scenario()) == ("replay", 0)
