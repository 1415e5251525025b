"""Opening a ledger from the CLI never stops a serving process's K_SINK delivery: records
appended after `govfn chronicle ...` ran against the file still reach the outbox, and a
checkpoint signed by the CLI travels to the sink like a served one. Real files, the real
`govfn` executable, a loopback sink double."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from govfn.chronicle import Ledger, Record
from govfn.chronicle.signing.note import Signer
from govfn.chronicle.sink import SinkSender

from support import spec_note
from support.sink_double import SinkDouble
from support.waiting import wait_for

GOVFN = str(Path(sys.executable).with_name("govfn"))


def govfn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GOVFN, "chronicle", *args], capture_output=True, text=True, timeout=120, check=False
    )


def queued(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        counts = "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM note_outbox)"
        found: tuple[int, int] = conn.execute(counts).fetchall()[0]
        return found


def test_cli_commands_leave_the_serving_ledgers_outbox_filling(tmp_path: Path) -> None:
    path = tmp_path / "chronicle.db"
    serving = Ledger(path, outbox=True)
    try:
        serving.append([Record.build("TEST", {"n": 0})])
        first = Record.build("TEST", {"n": 1})
        serving.append([first])
        for command in (["verify"], ["show", first.cid], ["proof", first.cid], ["export"]):
            done = govfn(*command, "--ledger", str(path))
            assert done.returncode == 0, (command, done.stderr)
        with Ledger(path) as cli_style:  # what every `govfn chronicle` command opens
            assert cli_style.queues_for_sink()
            cli_style.append([Record.build("TEST", {"n": 2})])
        serving.close()  # a worker re-opens its connection after a fork, say
        serving.append([Record.build("TEST", {"n": 3})])
        assert queued(path) == (4, 0)
    finally:
        serving.close()
    with Ledger(path, outbox=False) as without_sink:  # only a serving process turns it off
        without_sink.append([Record.build("TEST", {"n": 4})])
        assert not without_sink.queues_for_sink()
    assert queued(path) == (4, 0)


def test_a_checkpoint_signed_by_the_cli_reaches_the_sink(tmp_path: Path, sink: SinkDouble) -> None:
    path = tmp_path / "chronicle.db"
    signer = Signer.generate("govfn.example/pod")
    key = tmp_path / "pod.key"
    key.write_text(signer.encode() + "\n")
    with Ledger(path, outbox=True) as serving:
        serving.append([Record.build("TEST", {"n": n}) for n in range(3)])
    done = govfn("checkpoint", "--ledger", str(path), "--key", str(key))
    assert done.returncode == 0, done.stderr
    note = done.stdout
    assert queued(path) == (3, 1)
    sender = SinkSender(path, sink.url)
    sender.start()
    try:
        assert wait_for(lambda: sender.depth() == 0)
    finally:
        sender.stop()
    checkpoints = [e for e in sink.received if e["ce-type"] == "CHRONICLE_CHECKPOINT"]
    assert [e["body"] for e in checkpoints] == [note]
    signed = spec_note.verify_note(note.encode(), signer.verifier().encode())
    assert signed.split("\n")[1] == "3"


def test_a_ledger_from_before_the_setting_keeps_queueing(tmp_path: Path) -> None:
    path = tmp_path / "chronicle.db"
    with Ledger(path, outbox=True) as ledger:
        ledger.append([Record.build("TEST", {"n": 0})])
    with sqlite3.connect(path) as conn:  # the unconditional trigger of earlier versions
        conn.execute("DROP TRIGGER records_to_outbox")
        conn.execute("DELETE FROM ledger_settings")
        conn.execute(
            "CREATE TRIGGER records_to_outbox AFTER INSERT ON records "
            "BEGIN INSERT INTO outbox(seq) VALUES (NEW.seq); END"
        )
    with Ledger(path) as cli_style:
        assert cli_style.queues_for_sink()
        cli_style.append([Record.build("TEST", {"n": 1})])
    assert queued(path) == (2, 0)


def triggers(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' "
            "AND name IN ('records_to_outbox', 'records_to_openlineage')"
        ).fetchall()
    return {name for (name,) in rows}


def test_a_queueing_trigger_exists_only_while_its_setting_is_on(tmp_path: Path) -> None:
    """Files of the release before (and an older govfn opening any file) have both
    triggers whatever the settings; with the settings off they queue nothing, and the
    next open drops them."""
    path = tmp_path / "chronicle.db"
    with Ledger(path, outbox=False, openlineage=False) as ledger:
        ledger.append([Record.build("TEST", {"n": 0})])
    assert triggers(path) == set()
    with sqlite3.connect(path) as conn:  # as the release before created every file
        conn.execute(
            "CREATE TRIGGER records_to_outbox AFTER INSERT ON records "
            "WHEN (SELECT value FROM ledger_settings WHERE name = 'outbox') "
            "BEGIN INSERT INTO outbox(seq) VALUES (NEW.seq); END"
        )
        conn.execute(
            "CREATE TRIGGER records_to_openlineage AFTER INSERT ON records "
            "WHEN NEW.type IN ('FUNCTION_INVOKED', 'FUNCTION_COMPLETED') "
            "AND (SELECT value FROM ledger_settings WHERE name = 'openlineage') "
            "BEGIN INSERT INTO openlineage_outbox(seq) VALUES (NEW.seq); END"
        )
    with Ledger(path) as cli_style:
        assert not cli_style.queues_for_sink() and triggers(path) == set()
        cli_style.append([Record.build("TEST", {"n": 1})])
    assert queued(path) == (0, 0)
    with Ledger(path, outbox=True) as serving:
        serving.append([Record.build("TEST", {"n": 2})])
        assert triggers(path) == {"records_to_outbox"}
        with Ledger(path) as cli_style:  # leaves the serving process's setting alone
            cli_style.append([Record.build("TEST", {"n": 3})])
            assert triggers(path) == {"records_to_outbox"}
    assert queued(path) == (2, 0)
    with Ledger(path, openlineage=True) as serving:
        assert serving.queues_for_sink()
        assert triggers(path) == {"records_to_outbox", "records_to_openlineage"}
    with Ledger(path, outbox=False, openlineage=False) as serving:
        serving.append([Record.build("TEST", {"n": 4})])
        assert triggers(path) == set()
    assert queued(path) == (2, 0)
