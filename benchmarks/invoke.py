"""In-process cost of `FunctionRuntime.invoke()`, with the Chronicle ledger on and off.

    python -m benchmarks.invoke [--calls 5000] [--repeats 5]

A no-op function (and `echo` with the 200-byte benchmark event) is invoked in a loop inside
one event loop; the ledger is the real SQLite file in a temp dir, at its default durability
(GOVFN_CHRONICLE_SYNC=normal: WAL, committed before `append` returns). Then the parts of one
invocation are timed on their own: the invocation id, the event's CID, building the two
records (canonical JSON + CID), the two ledger commits, and, for comparison, commits that
carry several records (what group commit would pay per record), and the metrics observer
the app adds (counted on an event loop and published to prometheus_client in one process
and in the pod's multiprocess mode, which stays on for the rest of the process and so is
measured last). µs per operation, median
over the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import event, results
from govfn.chronicle.client import LedgerChronicle
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record, function_record
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.functions.echo import EchoFunction
from govfn.observability.metrics import Metrics, PodMetrics
from govfn.registry import FunctionRegistry
from govfn.runtime import FunctionRuntime, content_cid


class NoOpFunction(FunctionPlugin):
    function_id = "noop"
    trigger_events = ("NOOP_REQUESTED",)

    async def handle(self, event: Any, context: FunctionContext) -> FunctionResult:
        return FunctionResult(success=True)


class PureNoOpFunction(NoOpFunction):
    """The no-op declared pure: its two records go in one commit, after the handler."""

    function_id = "noop-pure"
    pure = True


def _median_us(
    run: Callable[[int], None],
    count: int,
    repeats: int,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> float:
    """Median over `repeats` of the mean µs per operation of `run(count)`, by `clock`
    (wall-clock time; `time.process_time_ns` for the process's CPU time)."""
    samples = []
    for _ in range(repeats):
        started = clock()
        run(count)
        samples.append((clock() - started) / count / 1000)
    return statistics.median(samples)


def invoke_us(
    runtime: FunctionRuntime,
    function_id: str,
    data: Any,
    calls: int,
    rep: int,
    *,
    at_once: int = 1,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> float:
    """µs per call of `invoke()`, `at_once` calls under way together (gathered, as the
    HTTP worker's 16 connections are), on the event loop the govfn worker serves with."""
    context = FunctionContext(trigger_event_kind="BENCH", event_source="/benchmarks")

    async def one() -> None:
        result = await runtime.invoke(function_id, data, context)
        if not result.success:
            raise RuntimeError(f"{function_id} failed: {result.error}")

    async def loop(count: int) -> None:
        if at_once == 1:
            for _ in range(count):
                await one()
            return
        for _ in range(count // at_once):
            await asyncio.gather(*(one() for _ in range(at_once)))

    def run(count: int) -> None:
        event_loop = asyncio.new_event_loop()
        try:
            event_loop.run_until_complete(loop(count))
        finally:
            event_loop.close()

    run(min(calls, 200))  # warm-up: the ledger's connection, the code paths
    return _median_us(run, calls, rep, clock)


def _record_pair(data_cid: str) -> tuple[Record, Record]:
    """The two records of one invocation, as the runtime builds them."""
    invocation_id = str(uuid.uuid4())
    invoked = function_record(
        FUNCTION_INVOKED,
        function_id="echo",
        function_version="1.0.0",
        invocation_id=invocation_id,
        trigger_event_kind="ECHO_REQUESTED",
        trigger_event_cid=data_cid,
        input_cid=data_cid,
        gsap_context_id=None,
        chronicle_session_id=None,
        pipeline_run_id=None,
        event_id="bench-1",
        event_source="/benchmarks",
        traceparent=None,
        invoked_at=_timestamp(),
    )
    completed = function_record(
        FUNCTION_COMPLETED,
        function_id="echo",
        invocation_id=invocation_id,
        invoked_cid=invoked.cid,
        trigger_event_cid=data_cid,
        success=True,
        duration_ms=0.012,
        output_cid=data_cid,
        error=None,
        error_kind=None,
        completed_at=_timestamp(),
    )
    return invoked, completed


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parts_us(data: Any, scratch: Path, count: int, repeats: int) -> dict[str, float]:
    """µs of each part of one invocation, and of batched commits per record."""
    ledger = Ledger(scratch / "parts.db")
    data_cid = content_cid(data)
    pairs = [_record_pair(data_cid) for _ in range(count * (repeats + 1) * 2)]
    records = [r for pair in pairs for r in pair]
    cursor = 0

    def take(n: int) -> list[Record]:
        nonlocal cursor
        chunk = records[cursor : cursor + n]
        cursor += n
        return chunk

    def appends(batch: int) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n // batch):
                ledger.append(take(batch))

        return run

    ledger.append(take(10))  # opens the connection, creates the schema
    parts = {
        "invocation id (uuid4)": _median_us(lambda n: [uuid.uuid4() for _ in range(n)], count, 5),
        "timestamp": _median_us(lambda n: [_timestamp() for _ in range(n)], count, 5),
        "event CID (200-byte JSON)": _median_us(
            lambda n: [content_cid(data) for _ in range(n)], count, repeats
        ),
        "both records, INVOKED + COMPLETED (canonical JSON + CID)": _median_us(
            lambda n: [_record_pair(data_cid) for _ in range(n)], count, repeats
        ),
        "ledger append, 1 record per commit": _median_us(appends(1), count, repeats),
        "ledger append, 2 records per commit (per record)": _median_us(appends(2), count, repeats),
        "ledger append, 32 records per commit (per record)": _median_us(
            appends(32), count, repeats
        ),
    }
    ledger.close()
    return parts


def metrics_us(scratch: Path, count: int, repeats: int) -> dict[str, float]:
    """µs of the app's metrics observer per invocation, alone, then as a pod's worker counts."""
    context = FunctionContext()
    results = [
        FunctionResult(success=True, function_id="echo", duration_ms=0.3),
        FunctionResult(success=False, function_id="echo", duration_ms=2.0, error_kind="error"),
    ]

    def observing(metrics: Metrics) -> Callable[[int], None]:
        async def observe(n: int) -> None:
            for i in range(n):
                metrics.observe(None, context, results[i & 1])

        def run(n: int) -> None:  # on an event loop, as the runtime calls its observers
            asyncio.run(observe(n))
            metrics.publish()  # what the loop's timer would have published

        return run

    alone = Metrics()
    alone.load()  # as a worker has a second after it started
    one_process = _median_us(observing(alone), count, repeats)
    pod = PodMetrics(scratch / "metrics")
    pod.reset()
    in_pod = Metrics(pod)
    in_pod.load()
    return {
        "metrics observer, one process (prometheus_client)": one_process,
        "metrics observer, pod mode (prometheus_client mmap files)": _median_us(
            observing(in_pod), count, repeats
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    data = json.loads(event.body())
    registry = FunctionRegistry()
    registry.register(NoOpFunction())
    registry.register(PureNoOpFunction())
    registry.register(EchoFunction())
    with tempfile.TemporaryDirectory(prefix="govfn-invoke-") as scratch_dir:
        scratch = Path(scratch_dir)
        ledger = Ledger(scratch / "chronicle.db")
        on = FunctionRuntime(registry, LedgerChronicle(ledger), spool_dir=str(scratch / "spool"))
        off = FunctionRuntime(registry)
        figures = {
            "ledger_on_us": invoke_us(on, "noop", data, args.calls, args.repeats),
            "ledger_off_us": invoke_us(off, "noop", data, args.calls, args.repeats),
            "echo_ledger_on_us": invoke_us(on, "echo", data, args.calls, args.repeats),
            "echo_ledger_off_us": invoke_us(off, "echo", data, args.calls, args.repeats),
            "ledger_on_16_us": invoke_us(on, "noop", data, args.calls, args.repeats, at_once=16),
            "pure_ledger_on_us": invoke_us(on, "noop-pure", data, args.calls, args.repeats),
            "pure_ledger_on_16_us": invoke_us(
                on, "noop-pure", data, args.calls, args.repeats, at_once=16
            ),
            "echo_ledger_on_16_us": invoke_us(
                on, "echo", data, args.calls, args.repeats, at_once=16
            ),
            # The same 16 at once in the process's CPU time: steadier on a shared machine.
            "ledger_on_16_cpu_us": invoke_us(
                on, "noop", data, args.calls, args.repeats, at_once=16, clock=time.process_time_ns
            ),
            "pure_ledger_on_16_cpu_us": invoke_us(
                on,
                "noop-pure",
                data,
                args.calls,
                args.repeats,
                at_once=16,
                clock=time.process_time_ns,
            ),
        }
        ledger.close()
        parts = parts_us(data, scratch, args.calls, args.repeats)
        parts |= metrics_us(scratch, args.calls, args.repeats)

    print(f"FunctionRuntime.invoke(), µs per call (median of {args.repeats} x {args.calls:,}):")
    print(f"  no-op, ledger on   {figures['ledger_on_us']:8.1f}")
    print(f"  no-op, ledger off  {figures['ledger_off_us']:8.1f}")
    print(f"  echo 200 B, on     {figures['echo_ledger_on_us']:8.1f}")
    print(f"  echo 200 B, off    {figures['echo_ledger_off_us']:8.1f}")
    print(f"  no-op, on, 16 at once  {figures['ledger_on_16_us']:8.1f}")
    print(f"  echo, on, 16 at once   {figures['echo_ledger_on_16_us']:8.1f}")
    print(f"  pure no-op, on         {figures['pure_ledger_on_us']:8.1f}")
    print(f"  pure no-op, on, 16     {figures['pure_ledger_on_16_us']:8.1f}")
    print(f"  no-op, on, 16, CPU     {figures['ledger_on_16_cpu_us']:8.1f}")
    print(f"  pure no-op, 16, CPU    {figures['pure_ledger_on_16_cpu_us']:8.1f}")
    print("parts of one invocation, µs:")
    for part, us in parts.items():
        print(f"  {part:58} {us:8.1f}")
    document = {
        "calls": args.calls,
        "repeats": args.repeats,
        "ledger_sync": "normal",
        **figures,
        "parts_us": parts,
    }
    print(f"wrote {results.save('invoke', document)}")


if __name__ == "__main__":
    main()
