"""Ablation: what each part of govfn's receiver path costs under load, by taking parts away.

    python -m benchmarks.ablation [--rounds 2] [--duration 8]      measure every variant
    python -m benchmarks.ablation serve VARIANT PORT [WORKERS]     serve one (used by the above)

Each variant is govfn's own app (`create_app`, single-function mode, `echo`, Chronicle ledger
in a temp file) on gunicorn's threaded worker with `govfn serve`'s settings (what
`govfn serve --worker-class gthread` runs), changed cumulatively from the bench side only
(nothing in src/ is modified):

    as-served         what `govfn serve --function echo --worker-class gthread` runs
    thread-loop       each request thread runs the invocation on an event loop it owns
                      (no hand-over to the shared loop thread and back)
    one-commit        FUNCTION_INVOKED is held and committed with FUNCTION_COMPLETED, in one
                      transaction per invocation
    group-commit      (instead of one-commit) records go to one writer thread that commits all
                      queued records in one transaction; a request waits only for its
                      FUNCTION_COMPLETED record (FUNCTION_INVOKED is queued ahead of it)
    no-log            one-commit, and no per-invocation log line
    no-ledger         ... and no Chronicle records (no CIDs of records, no SQLite commits)
    no-runtime        ... and no FunctionRuntime: the receiver parses and replies only

The req/s differences between neighbours bound what each change can win.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from collections.abc import Coroutine
from typing import Any

from benchmarks import event, results
from benchmarks.http import measure
from benchmarks.servers import BENCH_DIR, HOST, PEERS, REPO, THREADS, ServerSpec

_STEPS = ("thread-loop", "one-commit", "no-log", "no-ledger", "no-runtime")
# Each variant takes away its own step and every step before it in _STEPS.
VARIANTS: dict[str, frozenset[str]] = {
    "as-served": frozenset(),
    **{step: frozenset(_STEPS[: i + 1]) for i, step in enumerate(_STEPS[:2])},
    "group-commit": frozenset({"thread-loop", "group-commit"}),
    **{step: frozenset(_STEPS[: i + 3]) for i, step in enumerate(_STEPS[2:])},
}


class ThreadLoop:
    """Runs a coroutine to completion on an event loop owned by the calling thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)


class OneCommitChronicle:
    """Holds each request thread's FUNCTION_INVOKED record and commits it together with the
    FUNCTION_COMPLETED record that follows it on the same thread: one transaction each."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._held = threading.local()

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        from govfn.chronicle.records import Record

        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Any) -> str:
        if record.type == "FUNCTION_INVOKED":
            self._held.record = record
            return str(record.cid)
        invoked = getattr(self._held, "record", None)
        self._held.record = None
        self.ledger.append([invoked, record] if invoked is not None else [record])
        return str(record.cid)


class GroupCommitChronicle:
    """A Chronicle client that shares commits: one writer thread per process drains the queue
    into one transaction; `emit_record` of a FUNCTION_COMPLETED record returns once committed."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._cond = threading.Condition()
        self._queue: list[Any] = []
        self._queued = 0
        self._committed = 0
        self._writer_pid = 0

    async def emit(self, event_type: str, payload: dict[str, Any]) -> str:
        from govfn.chronicle.records import Record

        return await self.emit_record(Record.build(event_type, payload))

    async def emit_record(self, record: Any) -> str:
        import os

        with self._cond:
            if self._writer_pid != os.getpid():  # the writer starts after gunicorn forks
                self._writer_pid = os.getpid()
                threading.Thread(target=self._write_forever, daemon=True).start()
            self._queue.append(record)
            self._queued += 1
            mine = self._queued
            self._cond.notify_all()
            if record.type != "FUNCTION_INVOKED":
                while self._committed < mine:
                    self._cond.wait()
        return str(record.cid)

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                batch, self._queue = self._queue, []
                upto = self._queued
            self.ledger.append(batch)
            with self._cond:
                self._committed = upto
                self._cond.notify_all()


def build_app(variant: str) -> Any:
    """govfn's app for `echo` in single-function mode, with the variant's parts taken away."""
    from govfn.app import create_app
    from govfn.cli.serve import configure_logging
    from govfn.function import FunctionResult
    from govfn.observability.invocation_log import InvocationLog

    configure_logging(False)  # as `govfn serve` does without --dev
    app = create_app(function_id="echo")
    steps = VARIANTS[variant]
    if "thread-loop" in steps:
        app.receivers.loop = ThreadLoop()
    backstop = app.runtime.backstop
    if "one-commit" in steps:
        backstop.client = OneCommitChronicle(backstop.client.ledger)
    if "group-commit" in steps:
        backstop.client = GroupCommitChronicle(backstop.client.ledger)
    if "no-log" in steps:
        runtime = app.runtime
        runtime.observers = [o for o in runtime.observers if not isinstance(o, InvocationLog)]
    if "no-ledger" in steps:
        app.runtime.backstop = None
    if "no-runtime" in steps:
        plugin = app.registry.get("echo")

        async def reply_only(function_id: str, data: Any, context: Any = None) -> Any:
            return FunctionResult(
                success=True, data=data, function_id=function_id, reply_type=plugin.reply_type
            )

        app.receivers.runtime = type("NoRuntime", (), {"invoke": staticmethod(reply_only)})()
    return app


def serve(variant: str, port: int, workers: int) -> None:
    """Serve one variant with the gunicorn options `govfn serve` uses."""
    from govfn.cli.serve import HEADER_LIMITS
    from govfn.server.gunicorn_app import GunicornServer

    options = {
        "bind": f"{HOST}:{port}",
        "workers": workers,
        "threads": THREADS,
        "worker_class": "gthread",
        "preload_app": True,
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "control_socket_disable": True,
        "loglevel": "warning",
        **HEADER_LIMITS,
    }
    GunicornServer(build_app(variant), options).run()


def spec(variant: str, workers: int = 1) -> ServerSpec:
    def launch(port: int, scratch: Any) -> tuple[list[str], dict[str, str]]:
        python = str(REPO / ".venv" / "bin" / "python")
        argv = [python, "-m", "benchmarks.ablation", "serve", variant, str(port), str(workers)]
        return argv, {"GOVFN_CHRONICLE": str(scratch / "chronicle.db")}

    return ServerSpec(f"govfn {variant} {workers}x{THREADS}", "govfn-variant", workers, launch)


def main(argv: list[str] | None = None) -> None:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["serve"]:
        variant, port = args_in[1], int(args_in[2])
        serve(variant, port, int(args_in[3]) if len(args_in) > 3 else 1)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args(args_in)

    script = event.write_wrk_script(BENCH_DIR / "cloudevent.lua")
    raw = PEERS[0]  # the raw WSGI app at 1x8, measured every round as the yardstick
    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    for number in range(args.rounds):
        raw_m = measure(raw, script, args.duration, args.warmup)
        print(f"round {number + 1}  {raw.name}: {raw_m['req_s']:7.0f} req/s", flush=True)
        for variant in args.variants:
            m = measure(spec(variant), script, args.duration, args.warmup)
            m["x_raw"] = m["req_s"] / raw_m["req_s"]
            rows[variant].append(m)
            print(
                f"round {number + 1}  {variant:12} {m['req_s']:7.0f} req/s  "
                f"p50 {m['p50_ms']:6.2f}  p99 {m['p99_ms']:6.2f}  non-2xx {m['non_2xx']}  "
                f"{m['x_raw']:.2f}x raw",
                flush=True,
            )
    summary = {
        v: {
            key: results.median([m[key] for m in ms])
            for key in ("req_s", "p50_ms", "p99_ms", "x_raw")
        }
        for v, ms in rows.items()
    }
    results.save("ablation", {"rounds": rows, "summary": summary})
    print(
        "\n| variant | req/s | µs/request | saves µs vs the row above | p50 ms | p99 ms "
        "| vs raw 1x8 |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    previous: float | None = None
    for variant, s in summary.items():
        us = 1e6 / s["req_s"]
        step = f"{previous - us:.0f}" if previous is not None else "-"
        print(
            f"| {variant} | {s['req_s']:,.0f} | {us:.0f} | {step} "
            f"| {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['x_raw']:.2f}x |"
        )
        previous = us


if __name__ == "__main__":
    main()
