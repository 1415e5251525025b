"""The lineage page of a busy node, in a real headless Chromium: a graph far wider than the
window still shows the node asked about (its black outline is in the screenshot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govfn.chronicle.lineage.formats import COLOURS
from govfn.management.lineage import page_html

from support.chromium import CHROMIUM, chromium
from support.png import read_png

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: run `make browser`"),
]
WINDOW = (760, 900)
FAN_OUT = 24  # children of the root: ~9,000 px wide, the root in the middle


def busy_graph() -> dict[str, object]:
    root = "b" + "r" * 58
    nodes = [{"id": root, "kind": "invoked", "label": "FUNCTION_INVOKED busy"}]
    edges = []
    for i in range(FAN_OUT):
        child = f"b{i:02d}" + "c" * 56
        nodes.append({"id": child, "kind": "event", "label": f"EVENT {i}"})
        edges.append({"from": root, "to": child, "label": "emits", "via": "reply"})
    return {"root": root, "query": root, "nodes": nodes, "edges": edges, "truncated": False}


def outline_pixels(shot: Path) -> int:
    """Pure black pixels: only the root node's outline is drawn in #000."""
    _, _, rows = read_png(shot.read_bytes())
    return sum(
        1
        for row in rows
        for x in range(0, len(row), 3)
        if (row[x], row[x + 1], row[x + 2]) == (0, 0, 0)
    )


def test_the_root_of_a_busy_graph_is_on_screen(tmp_path: Path) -> None:
    page = tmp_path / "lineage.html"
    page.write_text(page_html({"colours": COLOURS, "graph": busy_graph()}), encoding="utf-8")
    shot = tmp_path / "lineage.png"
    done = chromium(
        page.as_uri(),
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=2000",
        f"--screenshot={shot}",
    )
    assert done.returncode == 0 and shot.exists(), done.stderr
    # the outline (3 px) around a 330 x 46 box: about 2 x 3 x (330 + 46) pixels
    assert outline_pixels(shot) > 1500
