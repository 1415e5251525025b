"""`GET /chronicle/lineage/<cid>` and its page, in-process over a real ledger."""

from __future__ import annotations

import json
import re

from govfn import testing
from govfn.app import HttpConfig, create_app
from govfn.chronicle import FUNCTION_COMPLETED, FUNCTION_INVOKED, Ledger, MemoryChronicle
from govfn.chronicle.lineage.graph import LineageIndex
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.lineage_pipeline import Broker, cr_headers

_INLINE = re.compile(r'<script id="lineage-data" type="application/json">(.*?)</script>', re.S)


def first(ledger: Ledger, record_type: str, function_id: str) -> dict[str, object]:
    return next(
        {"cid": r.cid, **r.payload}
        for r in ledger.records()
        if r.type == record_type and r.payload["function_id"] == function_id
    )


def test_the_api_answers_the_graph_the_index_builds_and_follows_a_growing_ledger(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    billing_in = first(ledger, FUNCTION_INVOKED, "billing")
    chronicle_cid = str(billing_in["trigger_event_cid"])
    answer = broker.client.get(f"/chronicle/lineage/{chronicle_cid}")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.json == LineageIndex.build(ledger).lineage(chronicle_cid).to_dict()
    broker.submit_cr("cr-2", quantity=4, customer="c-2")  # new records after the first read
    completions = [r for r in ledger.records() if r.type == FUNCTION_COMPLETED]
    earlier = next(r for r in completions if r.payload["function_id"] == "archive")
    latest = completions[-1]
    answer = broker.client.get(f"/chronicle/lineage/{latest.cid}")
    assert answer.status_code == 200
    assert answer.json == LineageIndex.build(ledger).lineage(latest.cid).to_dict()
    assert earlier.cid not in {n["id"] for n in answer.json["nodes"]}  # cr-1's, not cr-2's


def test_unknown_and_malformed_cids_are_problems_not_errors(
    pipeline: tuple[Ledger, Broker],
) -> None:
    _, broker = pipeline
    broker.submit_cr("cr-1", quantity=1)
    unknown = broker.client.get("/chronicle/lineage/bagaaieranotinthisledger")
    assert unknown.status_code == 404
    assert unknown.mimetype == "application/problem+json"
    assert "'bagaaieranotinthisledger' is no CID or invocation id" in unknown.json["detail"]
    malformed = broker.client.get("/chronicle/lineage/%3Cscript%3E")
    assert malformed.status_code == 400 and malformed.json["attribute"] == "cid"
    page = broker.client.get("/chronicle/lineage/bagaaieranotinthisledger/view")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert json.loads(_INLINE.search(page.text).group(1))["error"] == unknown.json["detail"]


def test_a_process_without_a_ledger_says_so() -> None:
    registry = load_functions(("govfn.functions",), FunctionRegistry(), include_entry_points=False)
    config = HttpConfig(dev=True)  # the lineage routes want --dev or GOVFN_API_TOKEN
    app = create_app(runtime=FunctionRuntime(registry, MemoryChronicle()), config=config)
    try:
        answer = testing.test_client(app).get("/chronicle/lineage/bagaaiera")
        assert answer.status_code == 404
        assert answer.json["detail"] == "this process keeps no Chronicle ledger"
    finally:
        app.loop.stop()


def test_the_page_is_self_contained_and_inlines_the_graph_safely(
    pipeline: tuple[Ledger, Broker],
) -> None:
    ledger, broker = pipeline
    hostile = "</script><script>alert(1)</script>"
    body = json.dumps({"customer_id": "c-1", "quantity": 1}).encode()
    status, _, _ = broker.send("/functions/billing/events", cr_headers(hostile), body)
    assert status == 200
    billing_in = first(ledger, FUNCTION_INVOKED, "billing")
    page = broker.client.get(f"/chronicle/lineage/{billing_in['cid']}/view")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.text
    assert html.count("<script") == 2 and "alert(1)</script>" not in html
    # nothing is loaded from elsewhere: no src, no stylesheet link, no URL but the SVG namespace
    assert " src=" not in html and "<link" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    data = json.loads(_INLINE.search(html).group(1))
    graph = LineageIndex.build(ledger).lineage(str(billing_in["cid"])).to_dict()
    assert data["graph"] == graph
    event = next(n for n in data["graph"]["nodes"] if n["id"] == billing_in["cid"])
    assert event["event_id"] == hostile
