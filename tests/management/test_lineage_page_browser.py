"""The lineage page in a real headless Chromium, against a real `govfn serve` on loopback:
the DOM holds a node per graph node, and the screenshot shows them in their colours."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from html import unescape
from pathlib import Path

import pytest

from govfn.chronicle.lineage.formats import COLOURS

from support.chromium import CHROMIUM, chromium
from support.http_server import Server, start_server, stop_server
from support.lineage_pipeline import FUNCTIONS, Broker
from support.png import read_png

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`"),
]
WINDOW = (760, 1120)
NODE_AREA = 330 * 46  # the page's node box (NODE_W x NODE_H)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, object]]]:
    tmp = tmp_path_factory.mktemp("lineage-page")
    server = start_server(tmp, "--functions", "govfn.functions", "--functions", FUNCTIONS, "--dev")
    try:

        def send(
            path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, dict[str, str], bytes]:
            request = urllib.request.Request(server.url + path, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return (
                        answer.status,
                        {k.lower(): v for k, v in answer.headers.items()},
                        answer.read(),
                    )
            except urllib.error.HTTPError as error:
                return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

        broker = Broker(send)
        broker.submit_cr("cr-1", quantity=7)  # billing -> meter -> archive, and quota fails
        broker.submit_cr("cr-2", quantity=1, customer="c-2")  # another lineage, not shown
        first_invoked = next(i for f, i, _ in broker.delivered if f == "billing")
        assert first_invoked == "cr-1"
        with urllib.request.urlopen(f"{server.url}/chronicle/lineage/{_billing_cid(server)}") as r:
            graph = json.load(r)
        yield server, graph
    finally:
        stop_server(server)


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _billing_cid(server: Server) -> str:
    from govfn.chronicle import Ledger

    with Ledger(server.ledger) as ledger:
        return next(
            r.cid
            for r in ledger.records()
            if r.payload["function_id"] == "billing" and r.payload.get("event_id") == "cr-1"
        )


def test_the_dom_holds_every_node_with_its_label_and_kind(
    served: tuple[Server, dict[str, object]],
) -> None:
    server, graph = served
    nodes = graph["nodes"]
    assert isinstance(nodes, list) and len(nodes) == 13
    url = f"{server.url}/chronicle/lineage/{graph['root']}/view"
    done = chromium(url, f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom")
    assert done.returncode == 0, done.stderr
    dom = done.stdout
    drawn = re.findall(r'<g class="node" data-cid="([^"]+)" data-kind="([^"]+)"', dom)
    assert sorted(drawn) == sorted((n["id"], n["kind"]) for n in nodes)
    labels = [
        unescape(t) for t in re.findall(r'<text x="10" y="19" class="label">([^<]*)</text>', dom)
    ]
    assert sorted(labels) == sorted(n["label"] for n in nodes)
    assert "FUNCTION_COMPLETED quota failed (permanent)" in labels
    assert len(re.findall(r'<path d="M [^"]*" class="edge-line', dom)) == len(graph["edges"])
    assert re.search(r'id="status"[^>]*>13 nodes, 12 edges<', dom)


def _near(pixel: tuple[int, int, int], colour: str, tolerance: int = 8) -> bool:
    wanted = bytes.fromhex(colour[1:])
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, wanted, strict=True))


def test_the_screenshot_shows_the_nodes_in_their_colours(
    served: tuple[Server, dict[str, object]], tmp_path: Path
) -> None:
    server, graph = served
    shot = tmp_path / "lineage.png"
    url = f"{server.url}/chronicle/lineage/{graph['root']}/view"
    done = chromium(url, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists(), done.stderr
    width, height, rows = read_png(shot.read_bytes())
    assert (width, height) == WINDOW
    palette = {colour: kind for kind, colour in COLOURS.items()}
    counts: Counter[str] = Counter()
    white = 0
    for row in rows:
        for x in range(0, len(row), 3):
            pixel = (row[x], row[x + 1], row[x + 2])
            if pixel == (255, 255, 255):
                white += 1
                continue
            for colour, kind in palette.items():
                if _near(pixel, colour):
                    counts[kind] += 1
                    break
    assert white < width * height * 0.9  # not blank
    shown = Counter(str(n["kind"]) for n in graph["nodes"])  # type: ignore[union-attr]
    assert shown == {"invoked": 4, "completed": 3, "failed": 1, "event": 1, "output": 2, "reply": 2}
    for kind in COLOURS:
        per_node = counts[kind] / shown[kind] if shown[kind] else counts[kind]
        if shown[kind]:
            # a node's box, less its text and, for the start node, its outline
            assert 0.8 * NODE_AREA < per_node < NODE_AREA, (kind, per_node)
        else:
            assert counts[kind] < 400, kind  # at most the legend's swatch
