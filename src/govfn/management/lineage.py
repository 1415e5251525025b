"""`GET /chronicle/lineage/<cid>` (the graph as JSON) and `.../view` (a page that draws it).

A Chronicle that finds records by the CIDs they name (`Chronicle.finds_by_name`: the
SQLite ledger, through its lookup keys) answers each request with the records around the
graph alone (`LedgerLineage`): nothing of the log is kept between requests. For any other
Chronicle, a lineage index is built in one pass over it on the first request and kept, so a
request costs a dictionary lookup per hop; when the log has grown (`len`), it is read again
and only the records past those already indexed are added (a log is append-only). The page
is `static/lineage.html` with the graph inlined: it draws with no request of its own and
loads nothing from elsewhere.
"""

from __future__ import annotations

import json
import re
import threading
from importlib import resources
from itertools import islice
from typing import Any

from govfn.chronicle.chronicle import Chronicle
from govfn.chronicle.lineage.formats import COLOURS
from govfn.chronicle.lineage.graph import LineageGraph, LineageIndex
from govfn.chronicle.lineage.lookup import LedgerLineage
from govfn.problem import HttpProblem

API_PREFIX = "/chronicle/lineage/"
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}")


class LineageViews:
    """The lineage of one process's ledger, for the management API."""

    def __init__(self, log: Chronicle | None) -> None:
        self.log = log
        self._index = LineageIndex()
        self._lock = threading.Lock()

    def graph(self, key: str) -> LineageGraph:
        """The graph `key` starts; HttpProblem 400 (not a CID), 404 (unknown or no ledger)."""
        if not _KEY.fullmatch(key):
            raise HttpProblem(
                400, "not a CID or an invocation id: letters, digits and ._:- only", attribute="cid"
            )
        if self.log is None:
            raise HttpProblem(404, "this process keeps no Chronicle ledger", attribute="cid")
        if self.log.finds_by_name:
            index: LineageIndex = LedgerLineage(self.log)
            return self._walk(index, key, len(self.log))
        with self._lock:
            self._catch_up(self.log)
            return self._walk(self._index, key, self._index.records)

    @staticmethod
    def _walk(index: LineageIndex, key: str, records: int) -> LineageGraph:
        try:
            return index.lineage(key)
        except KeyError:
            raise HttpProblem(
                404,
                f"{key!r} is no CID or invocation id in the Chronicle ({records} records)",
                attribute="cid",
            ) from None

    def _catch_up(self, log: Chronicle) -> None:
        size = len(log)
        if size > self._index.records:
            self._index.add_all(islice(log.records(), self._index.records, size))

    def locked_page(self, key: str, problem: HttpProblem) -> tuple[int, str]:
        """The page without any graph, for a request `problem` refused: it asks for the
        token and fetches the graph of `key` with it."""
        data: dict[str, Any] = {"colours": COLOURS, "api": API_PREFIX, "token": True}
        data["query"] = key if _KEY.fullmatch(key) else ""
        data["error"] = problem.detail
        return problem.status, page_html(data)

    def page(self, key: str) -> tuple[int, str]:
        """The page for `key` (its graph, or the problem that stops it) and its status."""
        data: dict[str, Any] = {"colours": COLOURS, "api": API_PREFIX}
        try:
            data["graph"] = self.graph(key).to_dict()
        except HttpProblem as problem:
            data["error"] = problem.detail
            return problem.status, page_html(data)
        return 200, page_html(data)


def page_html(data: dict[str, Any]) -> str:
    template = resources.files("govfn").joinpath("static/lineage.html").read_text("utf-8")
    inline = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e")
    return template.replace("__LINEAGE_DATA__", inline.replace("&", "\\u0026"))
