"""Lineage walked through a ledger's lookup keys, not an index of the whole log.

`LedgerLineage` is a `LineageIndex` that starts empty and, before each lookup about a
CID (or invocation id), adds the records that are it or name it, read from the ledger
through `cid_keys` (`Ledger.records_naming`: O(log n) per key). A walk so reads only the
records around the graph it draws: memory and time follow the graph, not the log. It
first has the ledger file the links of the records appended since the last walk
(`Ledger.file_links`: once per record, in bulk, rather than in every append). At
most `per_key` records are read for one key (a trigger CID that every invocation shares,
say); beyond that the graph says `truncated`.
"""

from __future__ import annotations

from typing import Protocol

from govfn.chronicle.lineage.graph import MAX_NODES, LineageGraph, LineageIndex
from govfn.chronicle.lookup_keys import LINKS
from govfn.chronicle.records import Record


class NamingLog(Protocol):
    """A log that finds the records that are or name a CID."""

    def records_naming(self, text: str, limit: int) -> list[tuple[int, Record]]: ...

    def file_links(self) -> int: ...

    def __len__(self) -> int: ...


class LedgerLineage(LineageIndex):
    """The lineage of one ledger, read on demand (one instance per walk)."""

    def __init__(self, log: NamingLog, *, per_key: int = 4 * MAX_NODES) -> None:
        super().__init__()
        self.log = log
        self.per_key = per_key
        self.capped = False
        self._loaded: set[str] = set()
        self._position: dict[str, int] = {}
        log.file_links()

    def _load(self, key: str) -> None:
        if key in self._loaded:
            return
        self._loaded.add(key)
        found = self.log.records_naming(key, self.per_key + 1)
        if len(found) > self.per_key:
            self.capped = True
            found = found[: self.per_key]
        for position, record in found:
            if record.cid not in self._position:
                self._position[record.cid] = position
                self.add(record)
                self._keep_log_order(record)

    def _keep_log_order(self, record: Record) -> None:
        """Lists and first-wins maps in the order of the log, as a one-pass build has
        them, whatever order the walk read the records in."""
        order = self._position.__getitem__
        for lists in (
            self._by_trigger,
            self._by_input,
            self._by_output,
            self._by_reply,
            self._completions,
        ):
            for name in LINKS:
                value = record.payload.get(name)
                if isinstance(value, str) and value in lists:
                    lists[value].sort(key=order)
        run = record.payload.get("invocation_id")
        first = self._invoked_by_run if record.cid in self.invoked else self._completed_by_run
        if isinstance(run, str) and run in first and order(record.cid) < order(first[run]):
            first[run] = record.cid

    def lineage(self, key: str, *, max_nodes: int = MAX_NODES) -> LineageGraph:
        graph = super().lineage(key, max_nodes=max_nodes)
        graph.truncated = graph.truncated or self.capped
        return graph
