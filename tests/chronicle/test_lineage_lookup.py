"""Lineage walked through the ledger's lookup keys draws the same graph as the index of
the whole log, from every CID and invocation id a real pipeline recorded, reading only
the records around the graph."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from govfn import FunctionContext
from govfn.chronicle import Ledger, LedgerChronicle, Record
from govfn.chronicle.lineage.graph import LineageIndex
from govfn.chronicle.lineage.lookup import LedgerLineage
from govfn.chronicle.lookup_keys import LINKS
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.lineage_pipeline import Broker


class CountingLedger(Ledger):
    """A real ledger that counts the records lineage lookups read."""

    read = 0

    def records_naming(self, text: str, limit: int) -> list[tuple[int, Record]]:
        found = super().records_naming(text, limit)
        self.read += len(found)
        return found


def canonical(graph: dict[str, Any]) -> dict[str, Any]:
    return {
        "root": graph["root"],
        "truncated": graph["truncated"],
        "nodes": sorted(json.dumps(node, sort_keys=True) for node in graph["nodes"]),
        "edges": sorted(json.dumps(edge, sort_keys=True) for edge in graph["edges"]),
    }


def every_name(ledger: Ledger) -> set[str]:
    names = set()
    for record in ledger.records():
        names.add(record.cid)
        names.update(str(record.payload[n]) for n in LINKS if record.payload.get(n))
    return names


def assert_same_graphs(ledger: Ledger) -> int:
    whole = LineageIndex.build(ledger)
    names = every_name(ledger)
    for name in sorted(names):
        expected = canonical(whole.lineage(name).to_dict())
        walked = canonical(LedgerLineage(ledger).lineage(name).to_dict())
        for part in ("nodes", "edges"):
            assert walked[part] == expected[part], (
                name,
                set(walked[part]) - set(expected[part]),
                set(expected[part]) - set(walked[part]),
            )
        assert walked == expected, name
    return len(names)


def test_the_same_graph_from_every_name_of_a_real_pipeline(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    for n in range(3):
        broker.submit_cr(f"cr-{n}", quantity=n + 1)
    broker.submit_cr("cr-0", quantity=1)  # a redelivery
    assert assert_same_graphs(ledger) > 40
    for missing in ("bafynothere", "no-such-run"):
        try:
            LedgerLineage(ledger).lineage(missing)
        except KeyError:
            continue
        raise AssertionError(f"{missing} was found")


def test_the_same_graph_for_cycles_dispatches_and_shared_inputs(tmp_path: Path) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        registry = load_functions(
            ("govfn.functions",), FunctionRegistry(), include_entry_points=False
        )
        runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
        for n in range(3):
            context = FunctionContext(event_id=f"e-{n}", event_source="/tests")
            asyncio.run(runtime.invoke("echo", {"same": True}, context))  # shared, a cycle
            asyncio.run(runtime.dispatch("ECHO_REQUESTED", {"part": n}, "bafy-upstream"))
        assert assert_same_graphs(ledger) > 10


def test_a_walk_reads_the_records_around_its_graph_not_the_log(tmp_path: Path) -> None:
    ledger = CountingLedger(tmp_path / "c.db")
    registry = load_functions(("govfn.functions",), FunctionRegistry(), include_entry_points=False)
    runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
    results = [
        asyncio.run(runtime.invoke("echo", {"n": n}, FunctionContext(event_id=f"e-{n}")))
        for n in range(300)
    ]
    graph = LedgerLineage(ledger).lineage(str(results[150].output_cid()))
    assert len(graph.nodes) == 3 and len(ledger) == 600  # echo: its output is its input
    assert 0 < ledger.read <= 12
    ledger.close()


def test_a_key_named_by_more_records_than_a_walk_reads_marks_the_graph_truncated(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "c.db") as ledger:
        registry = load_functions(
            ("govfn.functions",), FunctionRegistry(), include_entry_points=False
        )
        runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
        for n in range(6):
            asyncio.run(runtime.dispatch("ECHO_REQUESTED", {"part": n}, "bafy-shared"))
        assert not LedgerLineage(ledger).lineage("bafy-shared").truncated
        assert LedgerLineage(ledger, per_key=4).lineage("bafy-shared").truncated
