"""The backstop's spool: records kept by a process that died are adopted and delivered."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from govfn.chronicle import Backstop, MemoryChronicle, Record

DYING_PROCESS = """
import asyncio, sys
from govfn.chronicle import Backstop, Record

class Down:
    async def emit(self, event_type, payload):
        raise ConnectionError("down")

backstop = Backstop(Down(), sys.argv[1])
for i in range(3):
    asyncio.run(backstop.emit(Record.build("TEST", {"i": i})))
print(backstop.pending)
"""


def test_orphaned_spool_is_adopted_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    out = subprocess.run(
        [sys.executable, "-c", DYING_PROCESS, str(spool)], capture_output=True, text=True
    )
    assert out.stdout.strip() == "3", out.stderr
    assert len(list(spool.glob("spool-*.jsonl"))) == 1

    sink = MemoryChronicle()
    adopter = Backstop(sink, spool)
    second = Backstop(MemoryChronicle(), spool)  # arrives later: nothing left to adopt
    assert adopter.pending == 3 and second.pending == 0
    assert asyncio.run(adopter.flush(force=True))
    assert [r.payload["i"] for r in sink.records] == [0, 1, 2]
    assert [r.cid for r in sink.records] == [Record.build("TEST", {"i": i}).cid for i in range(3)]
    assert not list(spool.glob("*.jsonl"))


def test_unreadable_spool_lines_are_skipped(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good = Record.build("TEST", {"ok": True})
    (spool / "spool-999999999.jsonl").write_text("not json\n" + good.to_json_line() + "\n")
    backstop = Backstop(MemoryChronicle(), spool)
    assert backstop.pending == 1
