"""A lineage graph as text (an indented tree), JSON, or Graphviz DOT."""

from __future__ import annotations

import json
from collections import defaultdict

from govfn.chronicle.lineage.graph import Edge, LineageGraph, Node

FORMATS = ("text", "json", "dot")

# One colour per node kind: the DOT output and the browser page use the same ones.
COLOURS = {
    "event": "#1f77b4",
    "invoked": "#ff7f0e",
    "completed": "#2ca02c",
    "failed": "#d62728",
    "output": "#17becf",
    "reply": "#9467bd",
}


def render(graph: LineageGraph, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(graph.to_dict(), indent=2)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "text":
        return to_text(graph)
    raise ValueError(f"unknown lineage format {fmt!r}; one of {', '.join(FORMATS)}")


def to_text(graph: LineageGraph) -> str:
    """Every node once, under the first node that leads to it; later visits say "(above)"."""
    nodes = {node.cid: node for node in graph.nodes}
    children: defaultdict[str, list[Edge]] = defaultdict(list)
    has_parent: set[str] = set()
    for edge in graph.edges:
        children[edge.source].append(edge)
        has_parent.add(edge.target)
    roots = [node.cid for node in graph.nodes if node.cid not in has_parent] or [graph.root]
    heading = f"lineage of {graph.query}"
    lines = [heading if graph.query == graph.root else f"{heading} ({graph.root})"]
    shown: set[str] = set()

    def line(node: Node) -> str:
        mark = "  <- start" if node.cid == graph.root else ""
        sender = node.details.get("sender")
        sent_by = f"  sent by {sender.get('sub')}" if isinstance(sender, dict) else ""
        return f"{node.label}  {node.cid}{sent_by}{mark}"

    def walk(cid: str, prefix: str) -> None:
        edges = children.get(cid, [])
        for position, edge in enumerate(edges):
            last = position == len(edges) - 1
            branch, further = ("└─ ", "   ") if last else ("├─ ", "│  ")
            via = f" ({edge.via})" if edge.via == "reply" else ""
            target = nodes[edge.target]
            seen = edge.target in shown
            again = "  (above)" if seen else ""
            lines.append(f"{prefix}{branch}{edge.label}{via} → {line(target)}{again}")
            if not seen:
                shown.add(edge.target)
                walk(edge.target, prefix + further)

    for root in roots:
        if root in shown:
            continue
        shown.add(root)
        lines.append(line(nodes[root]))
        walk(root, "")
    if graph.truncated:
        lines.append(f"(truncated at {len(graph.nodes)} nodes)")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: LineageGraph) -> str:
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontcolor=white];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for node in graph.nodes:
        label = f"{node.label}\n{node.cid}"
        extra = ", penwidth=3, color=black" if node.cid == graph.root else ""
        lines.append(
            f"  {_quote(node.cid)} [label={_quote(label)}, "
            f"fillcolor={_quote(COLOURS[node.kind])}{extra}];"
        )
    for edge in graph.edges:
        style = ", style=dashed" if edge.via == "content" else ""
        lines.append(
            f"  {_quote(edge.source)} -> {_quote(edge.target)} [label={_quote(edge.label)}{style}];"
        )
    lines.append("}")
    return "\n".join(lines)
