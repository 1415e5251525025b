"""Cost of the lineage graph and the OpenLineage export on a ledger of N records.

    python -m benchmarks.lineage [--sizes 10000,100000] [--queries 200]

The ledger (a real SQLite file in a temp dir) holds N/4 two-stage chains as the runtime
writes them: a trigger event -> FUNCTION_INVOKED/COMPLETED of `billing` whose reply
triggers FUNCTION_INVOKED/COMPLETED of `meter`. Timed: reading every record
(`Ledger.records()`), building the `LineageIndex` from them (one pass), one `lineage()`
walk from a random trigger CID (median), and turning every record into an OpenLineage
RunEvent. Also the resident memory the index adds. Then the same walks through the
ledger's lookup keys (`LedgerLineage`, what `GET /chronicle/lineage/<cid>` does): the
one-time filing of every record's links (`file_links`, paid by the first walk), the
median walk, and the peak memory one walk allocates (tracemalloc), measured before the
whole-log index exists.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from govfn.chronicle.cid import content_cid
from govfn.chronicle.lineage.graph import LineageIndex
from govfn.chronicle.lineage.lookup import LedgerLineage
from govfn.chronicle.lineage.openlineage import OpenLineageExport
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record, function_record
from govfn.chronicle.sqlite.ledger import Ledger
from govfn.execution import new_invocation_id
from govfn.execution import now as _now
from govfn.replies import reply_event_id


def _pair(
    function_id: str, trigger: str, event_id: str, source: str, output: str, reply: str | None
) -> list[Record]:
    run = new_invocation_id()
    invoked = function_record(
        FUNCTION_INVOKED,
        function_id=function_id,
        function_version="1.0.0",
        invocation_id=run,
        trigger_event_kind="KIND",
        trigger_event_cid=trigger,
        input_cid=trigger,
        gsap_context_id="gsap-1",
        chronicle_session_id=None,
        pipeline_run_id=None,
        event_id=event_id,
        event_source=source,
        traceparent=None,
        invoked_at=_now(),
    )
    completed = function_record(
        FUNCTION_COMPLETED,
        function_id=function_id,
        invocation_id=run,
        invoked_cid=invoked.cid,
        trigger_event_cid=trigger,
        success=True,
        duration_ms=0.1,
        output_cid=output,
        reply_id=reply_event_id(source, event_id, function_id) if reply else None,
        reply_source=f"/govfn/functions/{function_id}" if reply else None,
        reply_cid=reply,
        error=None,
        error_kind=None,
        completed_at=_now(),
    )
    return [invoked, completed]


def fill(ledger: Ledger, size: int) -> list[str]:
    triggers = []
    batch: list[Record] = []
    for n in range(size // 4):
        trigger = content_cid({"cr": n})
        output = content_cid({"billed": n})
        reply = content_cid({"reply": n})
        triggers.append(trigger)
        batch += _pair("billing", trigger, f"cr-{n}", "/gsap", output, reply)
        reply_id = reply_event_id("/gsap", f"cr-{n}", "billing")
        batch += _pair("meter", reply, reply_id, "/govfn/functions/billing", content_cid(n), None)
        if len(batch) >= 2000:
            ledger.append(batch)
            batch = []
    ledger.append(batch)
    return triggers


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(size: int, queries: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "chronicle.db")
        triggers = fill(ledger, size)
        started = time.perf_counter()
        count = sum(1 for _ in ledger.records())
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        ledger.file_links()
        links_s = time.perf_counter() - started
        sample = random.sample(triggers, min(queries, len(triggers)))
        lookups = []
        for trigger in sample:
            started = time.perf_counter()
            graph = LedgerLineage(ledger).lineage(trigger)
            lookups.append(time.perf_counter() - started)
            assert len(graph.nodes) == 8, len(graph.nodes)
        tracemalloc.start()
        for trigger in sample[:20]:
            LedgerLineage(ledger).lineage(trigger)
        walk_peak_kb = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        gc.collect()
        before = _rss_mb()
        started = time.perf_counter()
        index = LineageIndex.build(ledger)
        build_s = time.perf_counter() - started
        grown = _rss_mb() - before
        walks = []
        for trigger in sample:
            started = time.perf_counter()
            graph = index.lineage(trigger)
            walks.append(time.perf_counter() - started)
            assert len(graph.nodes) == 8, len(graph.nodes)
        started = time.perf_counter()
        events = sum(1 for _ in OpenLineageExport("ns").events(ledger.records()))
        export_s = time.perf_counter() - started
        ledger.close()
    assert count == events == size - size % 4
    return {
        "records": count,
        "read_s": read_s,
        "index_s": build_s,
        "index_mb": grown,
        "walk_us": statistics.median(walks) * 1e6,
        "export_s": export_s,
        "links_s": links_s,
        "lookup_walk_us": statistics.median(lookups) * 1e6,
        "lookup_walk_peak_kb": walk_peak_kb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(
        "records  read(s)  index(s)  index(MB, RSS growth)  walk(µs, median)  export(s)"
        "  | links filed once(s)  walk by keys(µs, median)  walk by keys(KB, peak)"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        m = measure(size, args.queries)
        print(
            f"{m['records']:>7}  {m['read_s']:7.2f}  {m['index_s']:8.2f}  {m['index_mb']:21.0f}"
            f"  {m['walk_us']:16.0f}  {m['export_s']:9.2f}"
            f"  | {m['links_s']:19.2f}  {m['lookup_walk_us']:24.0f}"
            f"  {m['lookup_walk_peak_kb']:22.0f}"
        )


if __name__ == "__main__":
    main()
