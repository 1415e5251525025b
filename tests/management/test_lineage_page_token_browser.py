"""The lineage page of a `govfn serve` holding GOVFN_API_TOKEN (no --dev), in a real headless
Chromium: opened without the token it asks for it and draws nothing; opened with
`#token=...` (a fragment, never sent to the server) it fetches the graph with the token."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from govfn.chronicle import FUNCTION_INVOKED, Ledger

from support.chromium import CHROMIUM, chromium
from support.http_server import Server, start_server, stop_server
from support.lineage_pipeline import FUNCTIONS, Broker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`"),
]
TOKEN = "page-token-42"
WAIT = "--virtual-time-budget=15000"  # let the page's fetch finish before the DOM is dumped


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp = tmp_path_factory.mktemp("lineage-token-page")
    server = start_server(
        tmp, "--functions", "govfn.functions", "--functions", FUNCTIONS,
        env={"GOVFN_API_TOKEN": TOKEN},
    )  # fmt: skip
    try:

        def send(
            path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, dict[str, str], bytes]:
            request = urllib.request.Request(server.url + path, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, dict(answer.headers), answer.read()
            except urllib.error.HTTPError as error:
                return error.code, dict(error.headers), error.read()

        Broker(send).submit_cr("cr-page-1", quantity=2)
        with Ledger(server.ledger) as ledger:
            cid = next(
                r.cid
                for r in ledger.records()
                if r.type == FUNCTION_INVOKED and r.payload["function_id"] == "billing"
            )
        yield server, cid
    finally:
        stop_server(server)


def _nodes(dom: str) -> list[str]:
    return re.findall(r'<g class="node" data-cid="([^"]+)"', dom)


def test_without_the_token_the_page_asks_for_it(served: tuple[Server, str]) -> None:
    server, cid = served
    done = chromium(f"{server.url}/chronicle/lineage/{cid}/view", WAIT, "--dump-dom")
    assert done.returncode == 0, done.stderr
    assert _nodes(done.stdout) == []
    assert re.search(r'<form id="auth">', done.stdout)  # shown: no `hidden` attribute
    assert "cr-page-1" not in done.stdout
    assert re.search(r'id="status" class="error">the lineage API needs Authorization', done.stdout)


def test_with_the_token_in_the_fragment_the_page_draws_the_graph(
    served: tuple[Server, str], tmp_path: Path
) -> None:
    server, cid = served
    url = f"{server.url}/chronicle/lineage/{cid}/view#token={TOKEN}"
    done = chromium(url, WAIT, "--dump-dom")
    assert done.returncode == 0, done.stderr
    nodes = _nodes(done.stdout)
    assert cid in nodes and len(nodes) >= 4, done.stdout[-2000:]
    assert re.search(r'<form id="auth" hidden="">', done.stdout)
    wrong = chromium(url.replace(TOKEN, "not-it"), WAIT, "--dump-dom")
    assert _nodes(wrong.stdout) == []
    assert "the bearer token is not valid" in wrong.stdout
