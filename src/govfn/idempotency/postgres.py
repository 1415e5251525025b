"""The idempotency store in PostgreSQL: one claim per function + source + event id across
every process of every pod that shares the database.

A claim is one statement (`INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`): the
primary key makes concurrent claims of one key wait for each other, and exactly one of
them inserts (or takes over an expired claim); the others read the row it left. Times are
the database's clock (`now()`), so pods whose clocks differ agree on leases and expiry.

Every claim carries a holder (a random token): `complete` and `release` touch the row only
while it is still the holder's, so a pod whose lease was taken over cannot overwrite the
new holder's claim. When the database fails:

- `claim` raises IdempotencyUnavailable; the function must not run. The claim may have
  been committed before the connection broke, so its release is kept and written as soon
  as the database answers (the holder makes that release touch only this claim).
- `complete` / `release` keep the outcome in memory and retry it in the background; until
  it is written, redeliveries see the claim running (409) and this process answers them
  from the kept result, and keeps renewing the claim's lease. A process that dies first
  leaves the claim to lapse one lease later (`LEASE_S`).

When the Chronicle is in the same database (`settles_with_records`), a success is not
written here at all: `settlement` hands the outcome to the ledger, whose append commits it
with the FUNCTION_COMPLETED record (`govfn.chronicle.settlement`), so no delivery can find
the record stored and the claim still running.

Connections come from a psycopg_pool pool opened on the event loop that first uses the
store (one per process and loop; a forked worker opens its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from psycopg.conninfo import conninfo_to_dict

from govfn.chronicle.settlement import Settlement
from govfn.databases.postgres import (
    SchemaError,
    describe_database,
    ensure_schema,
    ensure_schema_async,
)
from govfn.idempotency import postgres_sql as sql
from govfn.idempotency.claims import (
    DEFAULT_EXPIRY_S,
    LEASE_S,
    Claim,
    Heartbeat,
    IdempotencyUnavailable,
    Recorded,
)

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("govfn.idempotency")

_CLAIM_ATTEMPTS = 3  # a claim that vanishes between the two reads is claimed again
_FIRST_RETRY_S, _MAX_RETRY_S = 0.1, 5.0
_CONNECT_TIMEOUT_S = 5


class _Outcome(NamedTuple):
    """What this process owes the database for one claim: a result, or (None) a release."""

    key: str
    holder: str
    fingerprint: str
    result: str | None


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


class PostgresIdempotencyStore:
    """Claims in the `idempotency.claims` table of the database at `uri`."""

    def __init__(
        self,
        uri: str,
        *,
        expiry_s: float = DEFAULT_EXPIRY_S,
        min_lease_s: float = LEASE_S,
        max_connections: int = 4,
        wait_s: float = 2.0,
        settles_with_records: bool = False,
    ) -> None:
        self.uri = uri
        self.where = describe_database(uri)
        self.expiry_s = expiry_s
        self.lease_s = min_lease_s
        self.settles_with_records = settles_with_records
        self.max_connections = max_connections
        self.wait_s = wait_s  # longest wait for a connection before a claim gives up
        self._connect_options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in conninfo_to_dict(uri):
            self._connect_options["connect_timeout"] = _CONNECT_TIMEOUT_S
        self._pool: AsyncConnectionPool | None = None
        self._pool_owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._schema_ready = False
        self._held: dict[str, tuple[str, str]] = {}  # key -> (holder, fingerprint) run here
        # by (key, holder): two claims of one key that both lost their answer owe two releases
        self._kept: dict[tuple[str, str], _Outcome] = {}
        self._retry: asyncio.Task[None] | None = None
        self._heartbeat = Heartbeat(min_lease_s, self._renew)

    @property
    def kept(self) -> int:
        """Outcomes waiting for the database."""
        return len(self._kept)

    # -- connections ----------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> IdempotencyUnavailable:
        if isinstance(exc, psycopg.OperationalError):
            return IdempotencyUnavailable(
                f"cannot reach the idempotency store in {self.where}: {_reason(exc)}"
            )
        return IdempotencyUnavailable(f"idempotency store in {self.where}: {_reason(exc)}")

    async def _open_pool(self) -> AsyncConnectionPool:
        owner = (os.getpid(), asyncio.get_running_loop())
        if self._pool is None or self._pool_owner != owner:
            from psycopg_pool import AsyncConnectionPool

            self._pool = pool = AsyncConnectionPool(
                self.uri,
                kwargs=self._connect_options,
                min_size=1,
                max_size=self.max_connections,
                timeout=self.wait_s,
                open=False,
                name="govfn-idempotency",
            )
            self._pool_owner = owner
            await pool.open()
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await self._open_pool()
        async with pool.connection() as conn:
            if not self._schema_ready:
                await ensure_schema_async(conn, sql.SCHEMA, self.where)
                self._schema_ready = True
            yield conn

    async def _execute(self, query: str, params: Any) -> tuple[list[tuple[Any, ...]], int]:
        """Rows and row count of one statement. A connection that broke while idle (the
        server restarted) fails once: the pool is checked and the statement sent again."""
        for attempt in range(2):
            try:
                async with self._connection() as conn:
                    cursor = await conn.execute(query, params)
                    rows = await cursor.fetchall() if cursor.description else []
                    return rows, cursor.rowcount
            except psycopg.OperationalError as exc:
                from psycopg_pool import PoolTimeout

                if attempt or isinstance(exc, PoolTimeout) or self._pool is None:
                    raise
                await self._pool.check()
        raise AssertionError("unreachable")

    def prepare(self) -> None:
        """Connect once (no pool) and create the schema; IdempotencyUnavailable names the
        server when the database cannot be reached or used."""
        try:
            with psycopg.connect(self.uri, **self._connect_options) as conn:
                ensure_schema(conn, sql.SCHEMA, self.where)
        except (psycopg.Error, SchemaError) as exc:
            raise self._unavailable(exc) from exc
        self._schema_ready = True

    async def check(self) -> None:
        try:
            await self._execute("SELECT 1", None)
        except (psycopg.Error, SchemaError) as exc:
            raise self._unavailable(exc) from exc

    # -- claims ---------------------------------------------------------------------------

    async def claim(
        self,
        key: str,
        fingerprint: str,
        lease_s: float | None = None,
        *,
        recorded: Recorded | None = None,
    ) -> Claim:
        owed = [outcome for outcome in self._kept.values() if outcome.key == key]
        for outcome in owed:
            if outcome.result is not None:  # done here; not yet written
                if outcome.fingerprint != fingerprint:
                    return Claim("conflict", key)
                return Claim("replay", key, json.loads(outcome.result))
        holder = os.urandom(12).hex()
        params = {"key": key, "fingerprint": fingerprint, "holder": holder, "lease": self.lease_s}
        try:
            for outcome in owed:  # earlier claims here whose outcome is unknown: free them first
                await self._write(outcome)
        except (psycopg.Error, SchemaError) as exc:
            raise self._unavailable(exc) from exc
        try:
            rows: list[tuple[Any, ...]] = []
            for _ in range(_CLAIM_ATTEMPTS):
                rows, _ = await self._execute(sql.CLAIM, params)
                if not rows:
                    rows, _ = await self._execute(sql.READ, (key,))
                if rows:
                    break
        except (psycopg.Error, SchemaError) as exc:
            # The claim may have been committed before the connection broke.
            self._keep(_Outcome(key, holder, fingerprint, None))
            raise self._unavailable(exc) from exc
        if not rows:
            raise IdempotencyUnavailable(f"idempotency store in {self.where}: claim of {key} raced")
        state, stored_fingerprint, result, earlier, record, lapsed = rows[0]
        if state == "run":
            return self._hold(key, holder, fingerprint)
        if stored_fingerprint != fingerprint:
            return Claim("conflict", key)
        if state == "done":
            return Claim("replay", key, json.loads(result))
        if lapsed and record is not None:  # its holder is gone after noting an outcome
            done = recorded is not None and await recorded(record)
            try:
                if done:
                    _, count = await self._execute(sql.FINISH_LAPSED, (self.expiry_s, key, earlier))
                    return (
                        Claim("replay", key, json.loads(result))
                        if count
                        else Claim("in_progress", key)
                    )
                taken = (holder, self.lease_s, self.lease_s, key, earlier)
                _, count = await self._execute(sql.TAKE_LAPSED, taken)
            except (psycopg.Error, SchemaError) as exc:
                raise self._unavailable(exc) from exc
            if count:
                return self._hold(key, holder, fingerprint)
        return Claim("in_progress", key)

    def _hold(self, key: str, holder: str, fingerprint: str) -> Claim:
        self._held[key] = (holder, fingerprint)
        self._heartbeat.hold(key, holder)
        return Claim("run", key)

    async def _renew(self, holders: list[str]) -> None:
        await self._execute(sql.RENEW, (holders,))

    def settlement(self, key: str, result: dict[str, Any]) -> Settlement | None:
        held = self._held.get(key)
        if held is None or not self.settles_with_records:
            return None
        return Settlement(key, held[0], json.dumps(result, separators=(",", ":")), self.expiry_s)

    def holds(self, key: str) -> bool:
        return key in self._held

    def settled(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            self._heartbeat.drop(held[0])

    async def note_outcome(self, key: str, result: dict[str, Any], record_cid: str) -> None:
        held = self._held.get(key)
        if held is None:
            return
        text = json.dumps(result, separators=(",", ":"))
        try:
            await self._execute(sql.NOTE, (text, record_cid, key, held[0]))
        except (psycopg.Error, SchemaError) as exc:
            log.warning("idempotency: could not note the outcome of %s (%s)", key, _reason(exc))

    async def complete(self, key: str, result: dict[str, Any]) -> None:
        await self._settle(key, json.dumps(result, separators=(",", ":")))

    async def release(self, key: str) -> None:
        await self._settle(key, None)

    async def _settle(self, key: str, result: str | None) -> None:
        held = self._held.pop(key, None)
        if held is None:
            log.warning("idempotency: no claim of %s is held here; nothing written", key)
            return
        outcome = _Outcome(key, held[0], held[1], result)
        try:
            await self._write(outcome)
        except (psycopg.Error, SchemaError) as exc:
            log.warning(
                "idempotency store in %s failed (%s); the outcome of %s is kept and retried",
                self.where,
                _reason(exc),
                key,
            )
            self._keep(outcome)

    async def _write(self, outcome: _Outcome) -> None:
        key = outcome.key
        if outcome.result is None:
            await self._execute(sql.RELEASE, (key, outcome.holder))
        else:
            _, count = await self._execute(
                sql.COMPLETE, (outcome.result, self.expiry_s, key, outcome.holder)
            )
            if count == 0:
                log.warning("idempotency: the claim of %s was taken over before it completed", key)
        if self._kept.get((key, outcome.holder)) is outcome:
            del self._kept[key, outcome.holder]
        self._heartbeat.drop(outcome.holder)  # kept outcomes keep their claim alive till now

    # -- outcomes kept while the database failed -----------------------------------------

    def _keep(self, outcome: _Outcome) -> None:
        self._kept[outcome.key, outcome.holder] = outcome
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_kept())

    async def _retry_kept(self) -> None:
        delay = _FIRST_RETRY_S
        while self._kept:
            await asyncio.sleep(delay)
            if await self.flush():
                log.info("idempotency store in %s answers again: kept outcomes written", self.where)
                return
            delay = min(delay * 2, _MAX_RETRY_S)

    async def flush(self) -> bool:
        for outcome in list(self._kept.values()):
            try:
                await self._write(outcome)
            except (psycopg.Error, SchemaError):
                return False
        return not self._kept

    async def purge_expired(self) -> int:
        try:
            _, count = await self._execute(sql.PURGE, None)
        except (psycopg.Error, SchemaError) as exc:
            raise self._unavailable(exc) from exc
        return count

    async def aclose(self) -> None:
        """Stop retrying and close this loop's pool (kept outcomes are dropped: flush first)."""
        await self._heartbeat.stop()
        if self._retry is not None and not self._retry.done():
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        pool, owner = self._pool, self._pool_owner
        self._pool = self._pool_owner = None
        if pool is not None and owner == (os.getpid(), asyncio.get_running_loop()):
            await pool.close()
