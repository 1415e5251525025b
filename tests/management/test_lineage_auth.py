"""The lineage routes show event ids, sources and subjects: outside `--dev` they want
GOVFN_API_TOKEN, as the direct-invoke API does; the page without it carries no graph."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govfn import testing
from govfn.app import HttpConfig, create_app
from govfn.chronicle import FUNCTION_INVOKED, Ledger, LedgerChronicle
from govfn.registry import FunctionRegistry, load_functions
from govfn.runtime import FunctionRuntime

from support.lineage_pipeline import FUNCTIONS, Broker

TOKEN = "lineage-token-7"
_INLINE = re.compile(r'<script id="lineage-data" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, str, Any]]:
    """(a client of an app holding GOVFN_API_TOKEN, a billing record's CID, a closed app's
    client: neither --dev nor a token)."""
    ledger = Ledger(tmp_path / "chronicle.db")
    registry = load_functions(
        ("govfn.functions", FUNCTIONS), FunctionRegistry(), include_entry_points=False
    )
    runtime = FunctionRuntime(registry, LedgerChronicle(ledger))
    guarded = create_app(runtime=runtime, config=HttpConfig(api_token=TOKEN))
    closed = create_app(runtime=runtime, config=HttpConfig())
    client = testing.test_client(guarded)

    def send(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        answer = client.post(path, headers=headers, data=body)  # receivers need no API token
        return answer.status_code, dict(answer.headers), answer.data

    Broker(send).submit_cr("cr-secret-id", quantity=2, customer="customer-secret")
    cid = next(
        r.cid
        for r in ledger.records()
        if r.type == FUNCTION_INVOKED and r.payload["function_id"] == "billing"
    )
    yield client, cid, testing.test_client(closed)
    guarded.loop.stop()
    closed.loop.stop()
    ledger.close()


def test_the_graph_wants_the_token(served: tuple[Any, str, Any]) -> None:
    client, cid, closed = served
    path = f"/chronicle/lineage/{cid}"
    missing = client.get(path)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "the lineage API needs Authorization: Bearer" in missing.json["detail"]
    wrong = client.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    for refused in (missing, wrong):
        assert "cr-secret-id" not in refused.get_data(as_text=True)
    right = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.headers["Cache-Control"] == "no-store"
    assert "cr-secret-id" in right.get_data(as_text=True)  # what the token protects
    shut = closed.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert shut.status_code == 403
    closed_detail = "the lineage API is closed: serve with --dev or set GOVFN_API_TOKEN"
    assert shut.json["detail"] == closed_detail


def _inline(page: Any) -> dict[str, Any]:
    found = _INLINE.search(page.get_data(as_text=True))
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_page_without_the_token_asks_for_it_and_holds_no_graph(
    served: tuple[Any, str, Any],
) -> None:
    client, cid, _ = served
    locked = client.get(f"/chronicle/lineage/{cid}/view")
    assert locked.status_code == 401 and locked.mimetype == "text/html"
    assert locked.headers["WWW-Authenticate"].startswith("Bearer")
    assert locked.headers["Cache-Control"] == "no-store"
    text = locked.get_data(as_text=True)
    assert "cr-secret-id" not in text and "customer-secret" not in text
    data = _inline(locked)
    assert "graph" not in data and data["token"] is True and data["query"] == cid
    assert "needs Authorization: Bearer" in data["error"]
    wrong = client.get(f"/chronicle/lineage/{cid}/view", headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 403 and "graph" not in _inline(wrong)
    opened = client.get(
        f"/chronicle/lineage/{cid}/view", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert opened.status_code == 200
    assert _inline(opened)["graph"]["root"] == cid and "token" not in _inline(opened)


def test_a_malformed_key_is_not_echoed_into_the_locked_page(
    served: tuple[Any, str, Any],
) -> None:
    client, _, _ = served
    locked = client.get("/chronicle/lineage/%3Cscript%3E/view")
    assert locked.status_code == 401 and _inline(locked)["query"] == ""


def test_the_openapi_document_says_so(served: tuple[Any, str, Any]) -> None:
    client, _, _ = served
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/chronicle/lineage/{cid}", "/chronicle/lineage/{cid}/view"):
        operation = paths[path]["get"]
        assert operation["security"] == [{"bearer": []}]
        assert {"401", "403"} <= set(operation["responses"])
