"""Chronicle records to K_SINK through the outbox: outages lose nothing, ids never change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from govfn import assembly
from govfn.chronicle import Ledger, Record
from govfn.settings import Settings, parse_ce_overrides

from support.ledgers import open_ledger, sink_sender
from support.sink_double import SinkDouble
from support.waiting import wait_for

backends = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


@backends
def test_outage_then_recovery_delivers_every_record_once(
    backend: str, request: pytest.FixtureRequest, sink: SinkDouble, tmp_path: Path
) -> None:
    ledger = open_ledger(backend, request, tmp_path, outbox=True)
    sender = sink_sender(ledger, sink.url, extensions={"tenant": "t 1"}, max_delay_s=0.3)
    sink.down.set()
    sender.start()
    records = [Record.build("FUNCTION_INVOKED", {"i": i, "invoked_at": "x"}) for i in range(60)]
    for record in records:
        ledger.append([record])  # never blocked by the outage
        sender.notify()
    assert wait_for(lambda: sink.refused >= 3, 15.0)
    assert sender.depth() == 60 and sink.received == []
    sink.down.clear()
    assert wait_for(lambda: sender.depth() == 0, 15.0)
    assert sender.stop(drain_timeout_s=1) == 0
    ids = [event["ce-id"] for event in sink.received]
    assert sorted(ids) == sorted(r.cid for r in records) and len(set(ids)) == 60
    first = next(e for e in sink.received if e["ce-id"] == records[0].cid)
    assert first["ce-type"] == "FUNCTION_INVOKED" and first["ce-specversion"] == "1.0"
    assert first["ce-tenant"] == "t%201" and first["ce-time"] == "x"
    assert json.loads(first["body"]) == records[0].payload
    assert ledger.verify().ok  # the outbox never touches the records
    ledger.close()


@backends
def test_two_senders_share_the_outbox(
    backend: str, request: pytest.FixtureRequest, sink: SinkDouble, tmp_path: Path
) -> None:
    with open_ledger(backend, request, tmp_path, outbox=True) as ledger:
        ledger.append([Record.build("T", {"i": i}) for i in range(200)])
        senders = [sink_sender(ledger, sink.url, batch=8) for _ in range(2)]
    for sender in senders:
        sender.start()
    assert wait_for(lambda: senders[0].depth() == 0, 15.0)
    for sender in senders:
        sender.stop()
    ids = [event["ce-id"] for event in sink.received]
    assert len(ids) == len(set(ids)) == 200
    assert all(s.sent > 0 for s in senders)


def test_without_sink_nothing_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "chronicle.db"
    with Ledger(path, outbox=True) as ledger:
        ledger.append([Record.build("T", {"i": 0})])
    with Ledger(path, outbox=False) as ledger:  # a serving process without K_SINK
        ledger.append([Record.build("T", {"i": 1})])
        assert ledger._connection().execute("SELECT count(*) FROM outbox").fetchall() == [(1,)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"extensions": []}', "extensions"),
        ('{"extensions": {"Bad-Name": "x"}}', "Bad-Name"),
    ],
)
def test_bad_ce_overrides_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ce_overrides(text)


def test_settings_wire_the_sink(tmp_path: Path) -> None:
    env = {
        "GOVFN_CHRONICLE": str(tmp_path / "c.db"),
        "K_SINK": "http://127.0.0.1:9/",
        "K_CE_OVERRIDES": '{"extensions": {"cluster": "east", "n": 1}}',
    }
    settings = Settings.from_env(env)
    sender = assembly.sink_sender(settings)
    assert sender is not None and dict(sender.extensions) == {"cluster": "east", "n": "1"}
    assert assembly.ledger(settings, serving=True).outbox
    assert assembly.ledger(settings).outbox is None  # the CLI leaves the file's setting alone
    assert assembly.ledger(Settings.from_env({}), serving=True).outbox is False
    assert assembly.sink_sender(Settings.from_env({})) is None
    with pytest.raises(ValueError, match="K_SINK"):
        assembly.sink_sender(Settings.from_env(env | {"K_SINK": "ftp://x"}))
