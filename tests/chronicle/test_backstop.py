"""The backstop's spool: records kept by a process that died are adopted and delivered."""

from __future__ import annotations

import asyncio
import os
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


ALIVE_OWNER = """
import asyncio, sys
from govfn.chronicle import Backstop, Record

class Down:
    async def emit(self, event_type, payload):
        raise ConnectionError("down")

backstop = Backstop(Down(), sys.argv[1])
asyncio.run(backstop.emit(Record.build("TEST", {"alive": True})))
print("spooled", flush=True)
sys.stdin.readline()  # alive (holding its spool's lock) until the test says
"""


def test_a_live_owners_spool_is_left_and_a_dead_one_with_our_pid_is_adopted(
    tmp_path: Path,
) -> None:
    """Whether a spool's owner lives is its lock, not its pid: a live process keeps its
    spool; a dead process whose pid this process now has (a restarted container) does not."""
    spool = tmp_path / "spool"
    owner = subprocess.Popen(
        [sys.executable, "-c", ALIVE_OWNER, str(spool)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "spooled"
        dead = Record.build("TEST", {"dead": True})
        (spool / f"spool-{os.getpid()}.jsonl").write_text(dead.to_json_line() + "\n")
        adopter = Backstop(MemoryChronicle(), spool)
        assert [r.payload for r in adopter._kept] == [{"dead": True}]  # not the live one's
    finally:
        assert owner.stdin is not None and owner.stdout is not None
        owner.stdin.close()
        owner.wait(timeout=30)
        owner.stdout.close()
    adopter.close()  # gone before handing its adoption over: that spool is free again
    later = Backstop(MemoryChronicle(), spool)  # the owner is gone now: its spool too
    assert sorted(str(r.payload) for r in later._kept) == [
        str({"alive": True}),
        str({"dead": True}),
    ]
    later.close()


class SlowThenUp(MemoryChronicle):
    """Refuses while `down`; then takes a record only after yielding to the loop, so that
    other invocations emit while a flush is handing kept records over."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def emit_record(self, record: Record) -> str:
        if self.down:
            raise ConnectionError("down")
        await asyncio.sleep(0.001)
        return await super().emit_record(record)


def test_concurrent_emits_hand_each_kept_record_over_once(tmp_path: Path) -> None:
    chronicle = SlowThenUp()
    backstop = Backstop(chronicle, tmp_path / "spool")
    kept = [Record.build("TEST", {"kept": 0})]
    fresh = [Record.build("TEST", {"fresh": i}) for i in range(20)]

    async def scenario() -> list[bool]:
        for record in kept:
            assert await backstop.emit(record)  # durable: in the spool
        chronicle.down = False
        await asyncio.sleep(0.06)  # past the first retry delay: every emit may flush now
        durable = await asyncio.gather(*(backstop.emit(record) for record in fresh))
        assert await backstop.flush(force=True)
        return list(durable)

    assert all(asyncio.run(scenario()))
    delivered = [r.cid for r in chronicle.records]
    assert sorted(delivered) == sorted(r.cid for r in kept + fresh)  # each one, once
    assert delivered[0] == kept[0].cid  # the kept record first


def test_a_record_no_spool_holds_is_not_durable(tmp_path: Path) -> None:
    spool = tmp_path / "not-a-folder"
    spool.write_text("a file where the spool folder should be")
    backstop = Backstop(SlowThenUp(), spool)
    record = Record.build("TEST", {"i": 1})
    assert asyncio.run(backstop.emit(record)) is False and not backstop.usable
    backstop.withdraw(record)
    assert backstop.pending == 0
    assert Backstop(SlowThenUp(), None).usable  # nothing kept yet
