"""The lineage graph over a real ledger filled by real receivers and a broker double."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from govfn import FunctionContext
from govfn.chronicle import FUNCTION_COMPLETED, FUNCTION_INVOKED, Ledger, LedgerChronicle
from govfn.chronicle.cid import content_cid
from govfn.chronicle.lineage.formats import render
from govfn.chronicle.lineage.graph import LineageGraph, LineageIndex
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.lineage_pipeline import Broker

REPO = Path(__file__).resolve().parents[2]


def records_of(ledger: Ledger, record_type: str, function_id: str) -> list[dict[str, object]]:
    return [
        {"cid": r.cid, **r.payload}
        for r in ledger.records()
        if r.type == record_type and r.payload["function_id"] == function_id
    ]


def kinds(graph: LineageGraph) -> dict[str, str]:
    return {node.cid: node.kind for node in graph.nodes}


def edges(graph: LineageGraph) -> set[tuple[str, str, str, str | None]]:
    return {(e.source, e.target, e.label, e.via) for e in graph.edges}


def test_a_billable_events_chronicle_cid_leads_from_the_cr_to_every_downstream_invocation(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=7)
    assert sorted(broker.delivered) == sorted(
        [("billing", "cr-1", 200)]
        + [(f, broker.delivered[1][1], s) for f, s in (("meter", 200), ("quota", 422))]
        + [("archive", broker.delivered[-1][1], 202)]
    )
    [billing_in] = records_of(ledger, FUNCTION_INVOKED, "billing")
    [billing_out] = records_of(ledger, FUNCTION_COMPLETED, "billing")
    [meter_in] = records_of(ledger, FUNCTION_INVOKED, "meter")
    [meter_out] = records_of(ledger, FUNCTION_COMPLETED, "meter")
    [quota_in] = records_of(ledger, FUNCTION_INVOKED, "quota")
    [quota_out] = records_of(ledger, FUNCTION_COMPLETED, "quota")
    [archive_in] = records_of(ledger, FUNCTION_INVOKED, "archive")
    [archive_out] = records_of(ledger, FUNCTION_COMPLETED, "archive")
    # the recorded reply identity is what the downstream invocations name as their trigger
    assert billing_out["reply_id"] == meter_in["event_id"] == quota_in["event_id"]
    assert billing_out["reply_source"] == meter_in["event_source"] == "/govfn/functions/billing"
    assert billing_out["reply_cid"] == meter_in["trigger_event_cid"] != billing_out["output_cid"]
    assert meter_out["reply_cid"] == meter_out["output_cid"] == archive_in["trigger_event_cid"]
    assert archive_out["reply_id"] is None and quota_out["reply_id"] is None

    # the billable event's chronicle_cid: the billing invocation's trigger event
    billable = next(r for r in ledger.records() if r.cid == billing_out["cid"])
    chronicle_cid = str(billing_in["trigger_event_cid"])
    assert billable.payload["output_cid"]
    graph = LineageIndex.build(ledger).lineage(chronicle_cid)
    assert graph.root == chronicle_cid
    trigger = chronicle_cid
    output = str(billing_out["output_cid"])
    reply = str(billing_out["reply_cid"])
    metered = str(meter_out["output_cid"])
    assert kinds(graph) == {
        trigger: "event",
        str(billing_in["cid"]): "invoked",
        str(billing_out["cid"]): "completed",
        output: "output",
        reply: "reply",
        str(meter_in["cid"]): "invoked",
        str(meter_out["cid"]): "completed",
        str(quota_in["cid"]): "invoked",
        str(quota_out["cid"]): "failed",
        metered: "reply",
        str(archive_in["cid"]): "invoked",
        str(archive_out["cid"]): "completed",
        str(archive_out["output_cid"]): "output",
    }
    assert edges(graph) == {
        (trigger, str(billing_in["cid"]), "triggered", "content"),
        (str(billing_in["cid"]), str(billing_out["cid"]), "completed", None),
        (str(billing_out["cid"]), output, "output", None),
        (output, reply, "reply data", None),
        (reply, str(meter_in["cid"]), "triggered", "reply"),
        (reply, str(quota_in["cid"]), "triggered", "reply"),
        (str(meter_in["cid"]), str(meter_out["cid"]), "completed", None),
        (str(quota_in["cid"]), str(quota_out["cid"]), "completed", None),
        (str(meter_out["cid"]), metered, "output", None),
        (metered, str(archive_in["cid"]), "triggered", "reply"),
        (str(archive_in["cid"]), str(archive_out["cid"]), "completed", None),
        (str(archive_out["cid"]), str(archive_out["output_cid"]), "output", None),
    }


def test_from_a_downstream_record_the_graph_goes_up_to_the_cr_and_not_into_siblings(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=2)
    [meter_out] = records_of(ledger, FUNCTION_COMPLETED, "meter")
    [quota_in] = records_of(ledger, FUNCTION_INVOKED, "quota")
    [billing_in] = records_of(ledger, FUNCTION_INVOKED, "billing")
    [archive_out] = records_of(ledger, FUNCTION_COMPLETED, "archive")
    graph = LineageIndex.build(ledger).lineage(str(meter_out["cid"]))
    found = kinds(graph)
    assert billing_in["trigger_event_cid"] in found  # upstream: the CR
    assert archive_out["cid"] in found  # downstream: what its reply triggered
    assert quota_in["cid"] not in found  # a sibling branch is neither


def test_every_cid_of_an_invocation_and_its_invocation_id_start_the_same_graph(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    broker.submit_cr("cr-2", quantity=3)
    index = LineageIndex.build(ledger)
    [meter_in, _] = records_of(ledger, FUNCTION_INVOKED, "meter")
    [meter_out, _] = records_of(ledger, FUNCTION_COMPLETED, "meter")
    by_record = index.lineage(str(meter_in["cid"]))
    for start in (meter_out["cid"], meter_in["invocation_id"]):
        graph = index.lineage(str(start))
        assert kinds(graph) == kinds(by_record)
    # the other CR's invocations are not in this lineage
    other = records_of(ledger, FUNCTION_INVOKED, "billing")[1]
    assert other["cid"] not in kinds(by_record)
    with pytest.raises(KeyError):
        index.lineage("bafkreinotacidatall")


def test_the_same_content_from_another_event_is_linked_by_content_not_as_the_reply(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    [billing_out] = records_of(ledger, FUNCTION_COMPLETED, "billing")
    reply = str(billing_out["reply_cid"])
    # another producer publishes a BILLABLE_EVENT whose data is the very same content
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "elsewhere-1",
        "ce-source": "/tests/elsewhere",
        "ce-type": "BILLABLE_EVENT",
        "content-type": "application/json",
    }
    status, _, _ = broker.send(
        "/functions/meter/events", headers, broker.bodies[str(billing_out["reply_id"])]
    )
    assert status == 200
    first, second = records_of(ledger, FUNCTION_INVOKED, "meter")
    assert first["trigger_event_cid"] == second["trigger_event_cid"] == reply
    graph = LineageIndex.build(ledger).lineage(reply)
    triggered = {(e.target, e.via) for e in graph.edges if e.source == reply}
    assert (first["cid"], "reply") in triggered
    assert (second["cid"], "content") in triggered


def test_text_and_dot_show_every_node(pipeline: tuple[Ledger, Broker]) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=9)
    [billing_in] = records_of(ledger, FUNCTION_INVOKED, "billing")
    graph = LineageIndex.build(ledger).lineage(str(billing_in["cid"]))
    text = render(graph, "text")
    dot = render(graph, "dot")
    body = text.split("\n", 1)[1]  # after the heading that names the query
    for node in graph.nodes:
        assert body.count(node.cid) == 1
        assert f'"{node.cid}" [label=' in dot
    assert "<- start" in text and "FUNCTION_COMPLETED quota failed (permanent)" in text
    assert text.splitlines()[1].startswith("trigger event GSAP_CR_RECEIVED")
    assert dot.count(" -> ") == len(graph.edges)
    as_json = json.loads(render(graph, "json"))
    assert {n["id"] for n in as_json["nodes"]} == {n.cid for n in graph.nodes}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govfn", "chronicle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_the_cli_prints_the_lineage_and_refuses_an_unknown_cid_with_exit_2(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    [billing_out] = records_of(ledger, FUNCTION_COMPLETED, "billing")
    output = str(billing_out["output_cid"])
    shown = run_cli("lineage", "--ledger", str(ledger.path), "--format", "json", output)
    assert shown.returncode == 0, shown.stderr
    graph = json.loads(shown.stdout)
    assert graph["root"] == output
    shown_kinds = {n["kind"] for n in graph["nodes"]}
    assert {"event", "invoked", "completed", "output", "reply"} <= shown_kinds
    dot = run_cli("lineage", "--ledger", str(ledger.path), "--format", "dot", output)
    assert dot.returncode == 0 and dot.stdout.startswith("digraph lineage {")
    unknown = run_cli("lineage", "--ledger", str(ledger.path), "bnotacid")
    assert unknown.returncode == 2
    assert "'bnotacid' is no CID or invocation id in the Chronicle" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def _runtime(ledger: Ledger) -> FunctionRuntime:
    registry = load_functions(("govfn.functions",), FunctionRegistry(), include_entry_points=False)
    return FunctionRuntime(registry, LedgerChronicle(ledger))


def test_a_function_that_returns_its_input_makes_a_cycle_the_walk_and_the_tree_survive(
    ledger: Ledger,
) -> None:
    context = FunctionContext(event_id="e-1", event_source="/tests")
    result = asyncio.run(_runtime(ledger).invoke("echo", {"same": True}, context))
    assert result.success and result.output_cid() == content_cid({"same": True})
    graph = LineageIndex.build(ledger).lineage(str(result.output_cid()))
    assert len(graph.nodes) == 3 and len(graph.edges) == 3
    text = render(graph, "text")
    assert text.count("FUNCTION_INVOKED echo") == 1 and "(above)" in text


def test_a_dispatch_with_its_own_trigger_cid_links_the_input_too(ledger: Ledger) -> None:
    trigger = content_cid({"the": "upstream event"})
    runtime = _runtime(ledger)
    [result] = asyncio.run(runtime.dispatch("ECHO_REQUESTED", {"part": 1}, trigger))
    index = LineageIndex.build(ledger)
    from_trigger = index.lineage(trigger)
    from_input = index.lineage(content_cid({"part": 1}))
    assert {n.cid for n in from_trigger.nodes} == {n.cid for n in from_input.nodes}
    assert {e.label for e in from_input.edges} >= {"triggered", "input", "completed", "output"}
    assert result.lineage_cid in {n.cid for n in from_trigger.nodes}


def test_records_written_before_replies_were_named_still_link_by_content(ledger: Ledger) -> None:
    from govfn.chronicle.records import function_record

    def pair(function_id: str, run: str, trigger: str, output: str) -> None:
        invoked = function_record(
            FUNCTION_INVOKED,
            function_id=function_id,
            function_version="1.0.0",
            invocation_id=run,
            trigger_event_kind="KIND",
            trigger_event_cid=trigger,
            input_cid=trigger,
            event_id=f"{run}-event",
            event_source="/old",
            invoked_at="2026-01-01T00:00:00.000000Z",
        )
        completed = function_record(  # no reply_id / reply_source / reply_cid
            FUNCTION_COMPLETED,
            function_id=function_id,
            invocation_id=run,
            invoked_cid=invoked.cid,
            trigger_event_cid=trigger,
            success=True,
            duration_ms=1.0,
            output_cid=output,
            error=None,
            error_kind=None,
            completed_at="2026-01-01T00:00:01.000000Z",
        )
        ledger.append([invoked, completed])

    first, middle, last = (content_cid({"step": n}) for n in range(3))
    pair("upstream", "run-1", first, middle)
    pair("downstream", "run-2", middle, last)
    graph = LineageIndex.build(ledger).lineage(first)
    assert kinds(graph)[middle] == "output"
    assert (middle, "triggered", "content") in {(e.source, e.label, e.via) for e in graph.edges}
    assert any(n.label == "FUNCTION_COMPLETED downstream ok" for n in graph.nodes)


def test_several_logs_join_into_one_graph(pipeline: tuple[Ledger, Broker], tmp_path: Path) -> None:
    """One log per serving process: upstream and downstream records live in different files."""
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=7)
    records = list(ledger.records())
    upstream, downstream = Ledger(tmp_path / "a.db"), Ledger(tmp_path / "b.db")
    upstream.append([r for r in records if r.payload["function_id"] == "billing"])
    downstream.append([r for r in records if r.payload["function_id"] != "billing"])
    start = str(records[0].payload["trigger_event_cid"])
    whole = LineageIndex.build(ledger).lineage(start).to_dict()
    assert LineageIndex.build(upstream, downstream).lineage(start).to_dict() == whole
    assert len(LineageIndex.build(upstream).lineage(start).nodes) == 5  # up to the reply
    shown = run_cli(
        "lineage",
        "--ledger",
        str(upstream.path),
        "--ledger",
        str(downstream.path),
        "--format",
        "json",
        start,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == whole
    upstream.close()
    downstream.close()
