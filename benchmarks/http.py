"""HTTP load: wrk posts the benchmark CloudEvent to each server; rounds, a fresh server each.

    python -m benchmarks.http [--rounds 3] [--duration 10] [--warmup 3] [--only NAME ...]

Per round and server: start it on a free loopback port, check it answers the event with 2xx,
warm up, then `wrk -t2 -c16 -d<duration> --latency` with the script from `benchmarks.event`.
After the measured run, the proportional set size of every process of the server (gunicorn's
arbiter and workers included) is summed from /proc/<pid>/smaps_rollup. The order of servers
rotates from round to round so that drift of the machine spreads evenly. govfn runs as `govfn
serve --function echo` with the Chronicle ledger on (a temp file); its row with sender
verification on has an OIDC issuer on loopback (`benchmarks.oidc`), and wrk sends the one token
that server accepts with every request. Raw per-round figures go to
.bench/results/http.json; `benchmarks.report` derives the ratios within each round and their
medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import event, report, results
from benchmarks.servers import (
    BENCH_DIR,
    HOST,
    RunningServer,
    ServerFailed,
    ServerSpec,
    all_servers,
    post_event,
    select,
)

WRK_THREADS = 2
WRK_CONNECTIONS = 16


def run_wrk(
    script: Path, port: int, path: str, duration_s: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One wrk run, every request with `headers` besides the script's; its `done()` summary
    as a dict (latencies in µs)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run `python -m benchmarks.prepare` first")
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{duration_s}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-s", str(script), f"http://{HOST}:{port}{path}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            summary: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
            return summary
    output = done.stdout + done.stderr
    raise RuntimeError(f"wrk printed no summary (rc {done.returncode}):\n{output}")


def measure(spec: ServerSpec, script: Path, duration_s: int, warmup_s: int) -> dict[str, Any]:
    """Start `spec` fresh, check it answers 2xx, warm it up, measure, stop it."""
    load_before = round(os.getloadavg()[0], 2)  # others' work on this machine skews figures
    with tempfile.TemporaryDirectory(prefix="govfn-bench-") as scratch:
        with RunningServer(spec, Path(scratch)) as server:
            server.wait_until_answering()
            status, _ = post_event(server.port, spec.path, headers=server.headers)
            if not 200 <= status < 300:
                raise ServerFailed(f"{spec.name} answered the benchmark event with {status}")
            load = (script, server.port, spec.path)
            warmup = run_wrk(*load, warmup_s, server.headers) if warmup_s else None
            cpu_before = server.cpu_seconds()
            summary = run_wrk(*load, duration_s, server.headers)
            cpu_s = server.cpu_seconds() - cpu_before
            pss_mb = server.pss_mb()  # after load: what a pod holds once it has served
        # The server is stopped: count what its ledger holds against the events answered
        # (the two probes, the warm-up, the measured run).
        answered = 2 + (warmup["requests"] if warmup else 0) + summary["requests"]
        ledger_records = count_ledger_records(server.chronicle)
    seconds = summary["duration_us"] / 1e6
    return {
        "load_average_1m_before": load_before,
        "kind": spec.kind,
        "layout": spec.layout,
        "workers": spec.workers,
        "requests": summary["requests"],
        "req_s": summary["requests"] / seconds,
        "p50_ms": summary["p50_us"] / 1000,
        "p90_ms": summary["p90_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "max_ms": summary["max_us"] / 1000,
        "pss_mb": pss_mb,
        "cpu_us_per_request": cpu_s * 1e6 / summary["requests"] if summary["requests"] else None,
        "non_2xx": summary["status"],
        "socket_errors": {k: summary[k] for k in ("connect", "read", "write", "timeout")},
        "answered": answered,
        "ledger_records": ledger_records,
    }


def count_ledger_records(chronicle: str | None) -> int | None:
    """Records in a Chronicle: an SQLite ledger file or a PostgreSQL database (None when
    the server has none, or wrote no file)."""
    if chronicle is None:
        return None
    if chronicle.startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(chronicle) as database:
            row = database.execute("SELECT count(*) FROM chronicle.records").fetchone()
            return int(row[0]) if row else 0
    path = Path(chronicle)
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as ledger:
        return int(ledger.execute("SELECT count(*) FROM records").fetchone()[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    parser.add_argument("--only", nargs="*", help="servers whose name or kind contains these")
    args = parser.parse_args(argv)

    servers = select(args.only, all_servers())
    script = event.write_wrk_script(BENCH_DIR / "cloudevent.lua")
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        shift = number % len(servers)
        order = servers[shift:] + servers[:shift]
        measured: dict[str, Any] = {}
        for spec in order:
            try:
                measured[spec.name] = measure(spec, script, args.duration, args.warmup)
            except (ServerFailed, RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"round {number + 1}: {spec.name} failed: {exc}", file=sys.stderr)
                measured[spec.name] = {"kind": spec.kind, "layout": spec.layout, "error": str(exc)}
                continue
            m = measured[spec.name]
            errors = sum(m["socket_errors"].values())
            print(
                f"round {number + 1}/{args.rounds}  {spec.name:34} {m['req_s']:8.0f} req/s  "
                f"p50 {m['p50_ms']:6.2f} ms  p99 {m['p99_ms']:6.2f} ms  "
                f"non-2xx {m['non_2xx']}  socket errors {errors}",
                flush=True,
            )
        rounds.append(measured)

    settings = {
        "wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s --latency",
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "event": f"binary-mode CloudEvent, {event.BODY_SIZE}-byte JSON body",
        "govfn_chronicle": "embedded SQLite ledger on (GOVFN_CHRONICLE in a temp dir)",
    }
    path = results.save("http", {"settings": settings, "rounds": rounds})
    print(f"\nwrote {path}\n")
    print(report.http_table(results.load("http")))


if __name__ == "__main__":
    main()
