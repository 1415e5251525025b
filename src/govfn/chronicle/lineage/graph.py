"""The lineage graph: where a CID came from and what it led to.

    trigger event ─triggered→ FUNCTION_INVOKED ─completed→ FUNCTION_COMPLETED ─output→ output
        output ─reply data→ reply event ─triggered→ FUNCTION_INVOKED (downstream) → ...

A node is a Chronicle record (named by its record CID) or a piece of content (named by
its content CID: a trigger event's data, a result, a reply's data). One content CID is
one node whatever its roles, so the output of one function *is* the trigger event of
the next when its reply carries it unchanged. A reply event's identity (`source` + `id`,
recorded in FUNCTION_COMPLETED) that a downstream FUNCTION_INVOKED names as its trigger
event marks that edge `via: "reply"`; an edge that only shares content is `via: "content"`.

`LineageIndex` reads the records once (any iterable of `Record`: a ledger's `records()`,
several logs chained) into maps keyed by every CID a hop follows, so each hop of a walk
is a dictionary lookup; it keeps only the fields a graph shows, not whole payloads.
`lineage_lookup.LedgerLineage` fills the same maps on demand, with only the records a
walk reaches, from a ledger that finds records by the CIDs they name.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from govfn.chronicle.lineage.runs import Completed, Invoked, Strings, completed_run, invoked_run
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, Record

MAX_NODES = 2000


class RecordSource(Protocol):
    """What lineage reads from a log: its records, in order."""

    def records(self) -> Iterator[Record]: ...


@dataclass
class LineageIndex:
    """Every FUNCTION_INVOKED / FUNCTION_COMPLETED record, reachable by each CID it names."""

    invoked: dict[str, Invoked] = field(default_factory=dict)
    completed: dict[str, Completed] = field(default_factory=dict)
    records: int = 0
    _by_trigger: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _by_input: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _by_output: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _by_reply: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _completions: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _invoked_by_run: dict[str, str] = field(default_factory=dict)
    _completed_by_run: dict[str, str] = field(default_factory=dict)
    _strings: Strings = field(default_factory=Strings)

    @classmethod
    def build(cls, *sources: RecordSource) -> LineageIndex:
        index = cls()
        for source in sources:
            index.add_all(source.records())
        return index

    def add_all(self, records: Iterable[Record]) -> None:
        # The index only adds tuples and strings, no cycles: the cyclic collector, which
        # would otherwise rescan every object already indexed as the heap grows, waits.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for record in records:
                self.add(record)
        finally:
            if collecting:
                gc.enable()

    def add(self, record: Record) -> None:
        self.records += 1
        if record.type == FUNCTION_INVOKED:
            invoked = invoked_run(record.cid, record.payload, self._strings)
            cid = invoked.cid
            self.invoked[cid] = invoked
            if invoked.trigger_event_cid:
                self._by_trigger[invoked.trigger_event_cid].append(cid)
            if invoked.input_cid and invoked.input_cid != invoked.trigger_event_cid:
                self._by_input[invoked.input_cid].append(cid)
            if invoked.invocation_id:
                self._invoked_by_run.setdefault(invoked.invocation_id, cid)
        elif record.type == FUNCTION_COMPLETED:
            completed = completed_run(record.cid, record.payload, self._strings)
            cid = completed.cid
            self.completed[cid] = completed
            if completed.output_cid:
                self._by_output[completed.output_cid].append(cid)
            if completed.reply_cid:
                self._by_reply[completed.reply_cid].append(cid)
            if completed.invoked_cid:
                self._completions[completed.invoked_cid].append(cid)
            if completed.invocation_id:
                self._completed_by_run.setdefault(completed.invocation_id, cid)

    # -- lookups ---------------------------------------------------------------------

    def _load(self, key: str) -> None:
        """Make sure every record that is or names `key` is indexed (all are, here; a
        subclass reads them on demand)."""

    def resolve(self, key: str) -> str | None:
        """The node a CID (record or content) or an invocation id names, if any."""
        self._load(key)
        if key in self.invoked or key in self.completed or self._is_content(key):
            return key
        return self._invoked_by_run.get(key) or self._completed_by_run.get(key)

    def _is_content(self, cid: str) -> bool:
        return any(
            cid in found
            for found in (self._by_trigger, self._by_input, self._by_output, self._by_reply)
        )

    def completions_of(self, invoked: Invoked) -> list[str]:
        self._load(invoked.cid)
        if invoked.invocation_id:
            self._load(invoked.invocation_id)
        found = self._completions.get(invoked.cid)
        if found:
            return found
        by_run = invoked.invocation_id and self._completed_by_run.get(invoked.invocation_id)
        if by_run and not self.completed[by_run].invoked_cid:
            return [by_run]
        return []

    def invocation_of(self, completed: Completed) -> str | None:
        if completed.invoked_cid:
            self._load(completed.invoked_cid)
        if completed.invocation_id:
            self._load(completed.invocation_id)
        if completed.invoked_cid and completed.invoked_cid in self.invoked:
            return completed.invoked_cid
        if completed.invocation_id:
            return self._invoked_by_run.get(completed.invocation_id)
        return None

    # -- edges -------------------------------------------------------------------------

    def successors(self, node: str) -> Iterator[Edge]:
        self._load(node)
        if node in self.invoked:
            for done in self.completions_of(self.invoked[node]):
                yield Edge(node, done, "completed")
        elif node in self.completed:
            completed = self.completed[node]
            if completed.output_cid:
                yield Edge(node, completed.output_cid, "output")
        else:
            for run in self._by_trigger.get(node, ()):
                yield Edge(node, run, "triggered", self._via(node, self.invoked[run]))
            for run in self._by_input.get(node, ()):
                yield Edge(node, run, "input")
            for done in self._by_output.get(node, ()):
                reply_cid = self.completed[done].reply_cid
                if reply_cid and reply_cid != node:
                    yield Edge(node, reply_cid, "reply data")

    def predecessors(self, node: str) -> Iterator[Edge]:
        self._load(node)
        if node in self.invoked:
            invoked = self.invoked[node]
            if invoked.trigger_event_cid:
                yield Edge(
                    invoked.trigger_event_cid,
                    node,
                    "triggered",
                    self._via(invoked.trigger_event_cid, invoked),
                )
            if invoked.input_cid and invoked.input_cid != invoked.trigger_event_cid:
                yield Edge(invoked.input_cid, node, "input")
        elif node in self.completed:
            run = self.invocation_of(self.completed[node])
            if run:
                yield Edge(run, node, "completed")
        else:
            for done in self._by_output.get(node, ()):
                yield Edge(done, node, "output")
            for done in self._by_reply.get(node, ()):
                output_cid = self.completed[done].output_cid
                if output_cid and output_cid != node:
                    yield Edge(output_cid, node, "reply data")

    def _via(self, content_cid: str, invoked: Invoked) -> str:
        """ "reply" when the invocation's trigger event is a recorded reply event."""
        self._load(content_cid)
        for done in self._by_reply.get(content_cid, ()):
            completed = self.completed[done]
            if (completed.reply_id, completed.reply_source) == (
                invoked.event_id,
                invoked.event_source,
            ):
                return "reply"
        return "content"

    # -- the graph ---------------------------------------------------------------------

    def lineage(self, key: str, *, max_nodes: int = MAX_NODES) -> LineageGraph:
        """Ancestors and descendants of the node `key` names; KeyError if none does."""
        start = self.resolve(key)
        if start is None:
            raise KeyError(key)
        nodes: dict[str, None] = {start: None}
        edges: dict[tuple[str, str, str], Edge] = {}
        truncated = False
        for step, near in ((self.predecessors, 0), (self.successors, 1)):
            frontier = [start]
            seen = {start}
            while frontier:
                node = frontier.pop()
                for edge in step(node):
                    edges[(edge.source, edge.target, edge.label)] = edge
                    other = (edge.source, edge.target)[near]
                    if other in seen:
                        continue
                    if len(nodes) >= max_nodes and other not in nodes:
                        truncated = True
                        continue
                    seen.add(other)
                    nodes[other] = None
                    frontier.append(other)
        kept = [e for e in edges.values() if e.source in nodes and e.target in nodes]
        return LineageGraph(
            root=start,
            query=key,
            nodes=[self.node(cid) for cid in nodes],
            edges=kept,
            truncated=truncated,
        )

    def node(self, cid: str) -> Node:
        self._load(cid)
        if cid in self.invoked:
            run = self.invoked[cid]
            version = f"@{run.function_version}" if run.function_version else ""
            return Node(
                cid,
                "invoked",
                f"FUNCTION_INVOKED {run.function_id}{version}",
                {
                    "function_id": run.function_id,
                    "function_version": run.function_version,
                    "invocation_id": run.invocation_id,
                    "event_id": run.event_id,
                    "event_source": run.event_source,
                    "at": run.invoked_at,
                    **({"sender": run.sender} if run.sender else {}),
                },
            )
        if cid in self.completed:
            done = self.completed[cid]
            outcome = "ok" if done.success else f"failed ({done.error_kind or 'error'})"
            return Node(
                cid,
                "completed" if done.success else "failed",
                f"FUNCTION_COMPLETED {done.function_id} {outcome}",
                {
                    "function_id": done.function_id,
                    "invocation_id": done.invocation_id,
                    "success": done.success,
                    "error_kind": done.error_kind,
                    "duration_ms": done.duration_ms,
                    "at": done.completed_at,
                },
            )
        return self._content_node(cid)

    def _content_node(self, cid: str) -> Node:
        replies = [self.completed[c] for c in self._by_reply.get(cid, ())]
        outputs = [self.completed[c] for c in self._by_output.get(cid, ())]
        runs = [self.invoked[c] for c in self._by_trigger.get(cid, ())]
        kinds = sorted({run.trigger_event_kind for run in runs if run.trigger_event_kind})
        details: dict[str, Any] = {"event_types": kinds}
        if replies:
            first = replies[0]
            details["reply_id"] = first.reply_id
            details["reply_source"] = first.reply_source
            what = " ".join(kinds) or "event"
            return Node(cid, "reply", f"reply {what} from {first.function_id}", details)
        if outputs:
            return Node(cid, "output", f"output of {outputs[0].function_id}", details)
        events = sorted({(r.event_source or "", r.event_id or "") for r in runs})
        details["events"] = [{"source": s, "id": i} for s, i in events if s or i]
        return Node(cid, "event", f"trigger event {' '.join(kinds) or ''}".rstrip(), details)


class Edge(NamedTuple):
    source: str
    target: str
    label: str
    via: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"from": self.source, "to": self.target, "label": self.label}
        if self.via:
            body["via"] = self.via
        return body


class Node(NamedTuple):
    cid: str
    kind: str  # event | invoked | completed | failed | output | reply
    label: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.cid, "kind": self.kind, "label": self.label, **self.details}


@dataclass
class LineageGraph:
    root: str
    query: str
    nodes: list[Node]
    edges: list[Edge]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "query": self.query,
            "nodes": [node.to_dict() for node in self.nodes],
            "edges": [edge.to_dict() for edge in self.edges],
            "truncated": self.truncated,
        }
