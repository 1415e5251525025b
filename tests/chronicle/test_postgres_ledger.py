"""The Chronicle on PostgreSQL: one log per writer, append-only tables, the schema created
once, the shared outbox, backend selection, the CLI, and outages (a real server)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from govfn import assembly
from govfn.chronicle import Backstop, Ledger, Record, merkle
from govfn.chronicle.backends import chronicle_backend
from govfn.chronicle.client import AsyncLedgerChronicle
from govfn.chronicle.postgres.ledger import PostgresLedger
from govfn.chronicle.postgres.outbox import PostgresOutbox
from govfn.chronicle.records import FUNCTION_COMPLETED, FUNCTION_INVOKED, function_record
from govfn.chronicle.sink import SinkSender
from govfn.chronicle.store import LedgerError
from govfn.databases.postgres import describe_database
from govfn.settings import Settings

from support.postgres import PostgresServer
from support.sink_double import SinkDouble
from support.waiting import wait_for

PYTHON = sys.executable


def make(n: int, tag: str = "r") -> list[Record]:
    return [Record.build("TEST", {"tag": tag, "n": i}) for i in range(n)]


def govfn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "govfn", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | (env or {}),
        check=False,
    )


# -- records and CIDs -------------------------------------------------------------------


def test_a_record_has_the_same_cid_and_bytes_on_both_backends(
    postgres_uri: str, tmp_path: Path
) -> None:
    records = [
        function_record(FUNCTION_INVOKED, function_id="billing", invoked_at="2026-01-01T00:00:00Z"),
        function_record(FUNCTION_COMPLETED, function_id="billing", success=True, n=1.5),
        Record.build("TEST", {"unicode": "é\u2028", "nested": {"b": [1, 2], "a": None}}),
    ]
    with Ledger(tmp_path / "c.db") as sqlite, PostgresLedger(postgres_uri) as postgres:
        sqlite.append(records)
        postgres.append(records)
        on_sqlite = [(r.cid, r.canonical) for r in sqlite.records()]
        on_postgres = [(r.cid, r.canonical) for r in postgres.records()]
        assert on_postgres == on_sqlite == [(r.cid, r.canonical) for r in records]
        for record in records:
            assert postgres.get(record.cid) == sqlite.get(record.cid) == record
        sqlite_proof = sqlite.proof(records[1].cid).to_dict()
        postgres_proof = postgres.proof(records[1].cid).to_dict()
    assert "log" not in sqlite_proof and isinstance(postgres_proof.pop("log"), int)
    assert postgres_proof == sqlite_proof  # one log of the same records: the same tree


@pytest.mark.parametrize("outbox", [False, True])
def test_batches_of_every_shape_append_in_order_and_verify(
    postgres_uri: str, tmp_path: Path, outbox: bool
) -> None:
    """One record, a VALUES list of several and of the most rows, and a batch past it
    (sent as arrays): stored in order, chained and hashed, queued when asked."""
    sizes = [1, 2, 64, 65, 130]
    batches = [
        [Record.build("TEST", {"batch": n, "i": i}) for i in range(size)]
        for n, size in enumerate(sizes)
    ]
    with Ledger(tmp_path / "c.db") as sqlite, PostgresLedger(postgres_uri, outbox=outbox) as pg:
        for batch in batches:
            sqlite.append(batch)
            pg.append(batch)
        asyncio.run(pg.append_async(batches[2]))  # on the event loop: VALUES of 64 rows
        asyncio.run(pg.append_async(batches[3]))  # and arrays
        sqlite.append(batches[2])
        sqlite.append(batches[3])
        assert [r.canonical for r in pg.records()] == [r.canonical for r in sqlite.records()]
        assert pg.verify().ok and len(pg) == sum(sizes) + 64 + 65
        assert all(pg.get(r.cid) == r for r in batches[4])
        with psycopg.connect(postgres_uri) as conn:
            (queued,) = conn.execute("SELECT count(*) FROM chronicle.outbox").fetchone() or (0,)
    assert queued == (len(pg) if outbox else 0)


# -- many writers -----------------------------------------------------------------------


def _append_in_child(uri: str, tag: str, count: int) -> None:
    with PostgresLedger(uri) as ledger:
        for record in make(count, tag):
            ledger.append([record])


def test_each_process_appends_to_its_own_log_with_its_own_chain(postgres_uri: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_in_child, args=(postgres_uri, f"p{i}", 60)) for i in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with PostgresLedger(postgres_uri) as ledger, ledger.connection() as conn:
        logs = conn.execute(
            "SELECT log_id, count(*), min(seq), max(seq) FROM chronicle.records "
            "GROUP BY log_id ORDER BY log_id"
        ).fetchall()
        writers = conn.execute("SELECT writer FROM chronicle.logs").fetchall()
        report = ledger.verify()
    assert [row[1:] for row in logs] == [(60, 1, 60)] * 3
    assert len({w for (w,) in writers}) == 3
    assert report.ok and report.records == 180 and len(report.heads) == 3
    assert len({head.root for head in report.heads}) == 3


def test_an_append_never_waits_for_another_writers_open_commit(postgres_uri: str) -> None:
    # lock_timeout turns any wait on a lock into an error instead of a hang
    quick = postgres_uri + "?options=-c%20lock_timeout%3D3000"
    with (
        PostgresLedger(postgres_uri, outbox=True) as first,
        PostgresLedger(quick, outbox=True) as second,
    ):
        first.append(make(1, "first"))
        second.append(make(1, "second"))
        with psycopg.connect(postgres_uri) as stalled:  # `first` mid-commit, holding its locks
            stalled.execute(
                "INSERT INTO chronicle.records (log_id, seq, cid, type, body, chain) "
                "SELECT log_id, seq + 1, 'b-pending', type, body, chain FROM chronicle.records "
                "WHERE log_id = 1"
            )
            stalled.execute("INSERT INTO chronicle.outbox (log_id, seq) VALUES (1, 2)")
            stalled.execute("SELECT * FROM chronicle.logs FOR KEY SHARE")
            second.append(make(5, "second-again"))  # raises LockNotAvailable if it waited
            stalled.rollback()
        assert len(second) == 7 and second.verify().ok


def test_a_forked_child_writes_a_log_of_its_own(postgres_uri: str) -> None:
    ledger = PostgresLedger(postgres_uri)
    ledger.append(make(3, "parent"))
    child = multiprocessing.get_context("fork").Process(
        target=lambda: ledger.append(make(4, "child"))
    )
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    ledger.append(make(2, "parent-again"))  # the parent's pool and log survive the fork
    report = ledger.verify()
    ledger.close()
    assert report.ok and sorted(head.tree_size for head in report.heads) == [4, 5]


def test_a_commit_in_doubt_is_neither_lost_nor_stored_twice(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        first, doubtful, later = make(2, "a"), make(3, "b"), make(1, "c")
        ledger.append(first)
        ledger.append(doubtful)
        # As if the acknowledgement of `doubtful` had been lost: the writer does not know
        # its commit landed, and the backstop hands the same records over again.
        log = ledger._log
        assert log is not None
        log.seq, log.chain, log.in_doubt = 2, b"unknown", True
        ledger.append([*doubtful, *later])
        cids = [r.cid for r in ledger.records()]
        assert cids == [r.cid for r in first + doubtful + later]
        assert ledger.verify().ok


# -- append-only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE chronicle.records SET body = '\\x00' WHERE seq = 1",
        "DELETE FROM chronicle.records WHERE seq = 1",
        "TRUNCATE chronicle.records CASCADE",
        "UPDATE chronicle.checkpoints SET root = '\\x00'",
        "DELETE FROM chronicle.checkpoints",
        "TRUNCATE chronicle.checkpoints",
        "UPDATE chronicle.logs SET writer = 'someone else'",
        "DELETE FROM chronicle.logs",
    ],
)
def test_the_database_refuses_changes_to_what_was_written(
    postgres_uri: str, statement: str
) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        ledger.append(make(3))
        ledger.checkpoint_logs()
        with (
            psycopg.connect(postgres_uri, autocommit=True) as conn,  # even as superuser
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
        ):
            conn.execute(statement)
        assert len(ledger) == 3 and ledger.verify().ok


def test_checkpoints_cover_every_log_and_catch_a_truncated_one(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as one, PostgresLedger(postgres_uri) as two:
        one.append(make(4, "one"))
        two.append(make(3, "two"))
        heads = one.checkpoint_logs()
        assert [(h.log, h.tree_size) for h in heads] == [(1, 4), (2, 3)]
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            conn.execute("ALTER TABLE chronicle.records DISABLE TRIGGER USER")
            conn.execute("DELETE FROM chronicle.records WHERE log_id = 2 AND seq = 3")
        report = one.verify()
    assert not report.ok and report.bad_log == 2 and "checkpoint" in (report.problem or "")


# -- the schema -------------------------------------------------------------------------


def test_processes_starting_together_create_the_schema_once(postgres_uri: str) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def start() -> None:
        ledger = PostgresLedger(postgres_uri)
        try:
            barrier.wait(timeout=30)
            ledger.append(make(1, threading.current_thread().name))
        except BaseException as exc:
            errors.append(exc)
        finally:
            ledger.close()

    threads = [threading.Thread(target=start, name=f"pod{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT version FROM chronicle.schema_version").fetchall() == [(2,)]
        assert conn.execute("SELECT count(*) FROM chronicle.logs").fetchone() == (8,)


def test_lookups_by_cid_use_an_index(postgres_uri: str) -> None:
    with PostgresLedger(postgres_uri) as ledger:
        records = make(50)
        ledger.append(records)
        with ledger.connection() as conn:
            conn.execute("SET enable_seqscan = off")
            plan = conn.execute(
                "EXPLAIN SELECT type, body FROM chronicle.records WHERE cid = %s",
                (records[7].cid,),
            ).fetchall()
    assert "records_by_cid" in " ".join(line for (line,) in plan)


def test_a_role_that_may_not_run_ddl_is_told_to_run_init(
    postgres_server: PostgresServer, postgres_uri: str
) -> None:
    database = postgres_uri.rsplit("/", 1)[1]
    role = f"serving_{database}"
    postgres_server.create_role(role)
    serving_uri = postgres_server.uri_as(role, database)
    with pytest.raises(LedgerError, match="may not create it: run `govfn chronicle init"):
        PostgresLedger(serving_uri).prepare()
    refused = govfn("chronicle", "verify", "--ledger", serving_uri)
    assert refused.returncode == 1 and "govfn chronicle init" in refused.stderr

    init = govfn("chronicle", "init", "--ledger", postgres_uri)
    assert init.returncode == 0 and "ok: Chronicle schema ready" in init.stdout, init.stderr
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA chronicle TO {role}")
        conn.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA chronicle TO {role}")
    with PostgresLedger(serving_uri, create_schema=False) as ledger:
        ledger.append(make(2))  # the serving role appends; it runs no DDL
        assert ledger.verify().ok
        root = ledger.tree_heads()[0].root
        from govfn.chronicle.signing.note import Signer
        from govfn.chronicle.signing.publisher import CheckpointPublisher

        signer = Signer.generate("govfn.example/role")
        assert CheckpointPublisher(ledger, signer, signer.name).publish_once() is not None
        assert len(ledger.log(1).signed_checkpoints()) == 1  # signed with SELECT and INSERT
    assert json.loads(govfn("chronicle", "checkpoint", "--ledger", postgres_uri).stdout) == {
        "logs": [{"log": 1, "tree_size": 2, "root": root}]
    }


# -- the shared outbox ------------------------------------------------------------------

APPEND_AND_EXIT = """
import sys
from govfn.chronicle import Record
from govfn.chronicle.postgres.ledger import PostgresLedger
with PostgresLedger(sys.argv[1], outbox=True) as ledger:
    for i in range(int(sys.argv[2])):
        ledger.append([Record.build("FUNCTION_INVOKED", {"pod": "a", "i": i})])
"""


def test_records_of_a_pod_that_is_gone_are_sent_by_another(
    postgres_uri: str, sink: SinkDouble
) -> None:
    pod_a = subprocess.run(
        [PYTHON, "-c", APPEND_AND_EXIT, postgres_uri, "40"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pod_a.returncode == 0, pod_a.stderr  # pod A is gone; it sent nothing
    pod_b = SinkSender(Path("unused"), sink.url, outbox=PostgresOutbox(postgres_uri), batch=16)
    assert pod_b.depth() == 40
    pod_b.start()
    assert pod_b.stop(drain_timeout_s=30) == 0
    expected = [Record.build("FUNCTION_INVOKED", {"pod": "a", "i": i}).cid for i in range(40)]
    assert [event["ce-id"] for event in sink.received] == expected


def test_senders_of_several_pods_claim_disjoint_records(
    postgres_uri: str, sink: SinkDouble
) -> None:
    with PostgresLedger(postgres_uri, outbox=True) as ledger:
        for tag in "abc":
            ledger.append(make(30, tag))
    pods = [
        SinkSender(Path("unused"), sink.url, outbox=PostgresOutbox(postgres_uri), batch=4)
        for _ in range(3)
    ]
    for pod in pods:
        pod.start()
    left = [pod.stop(drain_timeout_s=30) for pod in pods]
    ids = [event["ce-id"] for event in sink.received]
    assert left == [0, 0, 0] and len(ids) == len(set(ids)) == 90


# -- choosing the backend ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "backend"),
    [
        ("postgresql://u:p@db.example:5432/govfn", "postgres"),
        ("postgres://db/govfn?sslmode=require", "postgres"),
        ("POSTGRESQL:///govfn?host=/var/run/postgresql", "postgres"),
        ("var/chronicle.db", "sqlite"),
        ("/data/postgres.db", "sqlite"),
        ("file://x.db", "sqlite"),
    ],
)
def test_which_backend_a_value_names(value: str, backend: str) -> None:
    assert chronicle_backend(value) == backend


def test_with_a_uri_the_pod_local_folder_holds_the_spool_only(
    postgres_server: PostgresServer,
) -> None:
    uri = postgres_server.socket_uri("govfn")
    settings = Settings.from_env({"GOVFN_CHRONICLE": uri})
    assert settings.chronicle_uri == uri and settings.chronicle_location == uri
    assert settings.spool_dir == Path("var/spool")
    ledger = assembly.ledger(settings)
    assert isinstance(ledger, PostgresLedger) and ledger.uri == uri
    assert isinstance(assembly.chronicle_client(settings), AsyncLedgerChronicle)
    assert isinstance(assembly.ledger(Settings.from_env({})), Ledger)  # SQLite stays the default


def test_the_database_is_described_without_its_password() -> None:
    assert describe_database("postgresql://app:s3cret@db.example:6432/govfn") == (
        "database govfn on host db.example:6432"
    )
    assert describe_database("postgresql://app:s3cret@/govfn?host=/run/pg&port=5433") == (
        "database govfn on host socket /run/pg port 5433"
    )
    assert "s3cret" not in describe_database("postgresql://app:s3cret@[::1/")


# -- the CLI ----------------------------------------------------------------------------


def test_an_unreachable_database_is_one_line_naming_the_host(tmp_path: Path) -> None:
    uri = "postgresql://app:s3cret@127.0.0.1:1/govfn"  # nothing listens on port 1
    for command in (["chronicle", "verify"], ["chronicle", "export"], ["chronicle", "init"]):
        done = govfn(*command, "--ledger", uri)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.startswith("Error: cannot reach the Chronicle database govfn on host")
        assert "127.0.0.1:1" in done.stderr and "s3cret" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    env = {"GOVFN_CHRONICLE": uri, "GOVFN_IDEMPOTENCY": str(tmp_path / "i.db")}
    invoked = govfn("invoke", "echo", "--data", "[1]", env=env)
    assert invoked.returncode == 1 and "127.0.0.1:1" in invoked.stderr
    assert "s3cret" not in invoked.stderr + invoked.stdout


def test_every_chronicle_command_works_over_the_unix_socket(
    postgres_server: PostgresServer, postgres_uri: str, tmp_path: Path
) -> None:
    uri = postgres_server.socket_uri(postgres_uri.rsplit("/", 1)[1])
    env = {
        "GOVFN_CHRONICLE": uri,
        "GOVFN_IDEMPOTENCY": str(tmp_path / "i.db"),
        "GOVFN_CHRONICLE_SPOOL": str(tmp_path / "spool"),
    }
    outcomes = [
        json.loads(govfn("invoke", "echo", "--data", f"[{n}]", env=env).stdout) for n in (1, 2)
    ]
    assert all(outcome["success"] for outcome in outcomes)
    verify = govfn("chronicle", "verify", env=env)
    assert verify.returncode == 0 and verify.stdout.startswith("ok: 4 records in 2 logs")
    cid = outcomes[1]["lineage_cid"]
    shown = json.loads(govfn("chronicle", "show", cid, env=env).stdout)
    assert shown["cid"] == cid and shown["type"] == "FUNCTION_COMPLETED"
    proof = json.loads(govfn("chronicle", "proof", cid, env=env).stdout)
    assert proof["log"] == 2 and proof["leaf_index"] == 1 and proof["tree_size"] == 2
    leaf = bytes.fromhex(proof["leaf_hash"])
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    assert merkle.verify_inclusion(1, 2, leaf, path, bytes.fromhex(proof["root"]))
    exported = [
        json.loads(line) for line in govfn("chronicle", "export", env=env).stdout.splitlines()
    ]
    assert [line["type"] for line in exported] == ["FUNCTION_INVOKED", "FUNCTION_COMPLETED"] * 2
    checkpoint = json.loads(govfn("chronicle", "checkpoint", env=env).stdout)
    assert [(head["log"], head["tree_size"]) for head in checkpoint["logs"]] == [(1, 2), (2, 2)]
    assert not any(tmp_path.glob("**/*.db-wal")) and not (tmp_path / "spool").exists()

    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute("ALTER TABLE chronicle.records DISABLE TRIGGER USER")
        conn.execute("UPDATE chronicle.records SET body = '{}' WHERE log_id = 2 AND seq = 1")
    tampered = govfn("chronicle", "verify", env=env)
    assert tampered.returncode == 1 and "log 2" in tampered.stderr and "CID" in tampered.stderr


# -- the database goes away -------------------------------------------------------------


def test_records_kept_while_the_database_is_down_reach_it_when_it_is_back(
    private_postgres: Callable[..., PostgresServer], tmp_path: Path
) -> None:
    server = private_postgres()
    uri = server.create_database("govfn")
    ledger = PostgresLedger(uri)
    backstop = Backstop(AsyncLedgerChronicle(ledger), tmp_path / "spool")
    before, during, after = make(3, "before"), make(4, "during"), make(2, "after")

    async def emit(records: list[Record]) -> list[bool]:
        return [await backstop.emit(record) for record in records]

    assert asyncio.run(emit(before)) == [True] * 3
    server.crash()
    assert asyncio.run(emit(during)) == [True] * 4  # durable: kept in the spool file
    assert backstop.pending == 4 and list((tmp_path / "spool").glob("spool-*.jsonl"))
    server.start()
    assert asyncio.run(backstop.flush(force=True))
    assert asyncio.run(emit(after)) == [True] * 2
    cids = [r.cid for r in ledger.records()]
    report = ledger.verify()
    ledger.close()
    assert sorted(cids) == sorted(r.cid for r in before + during + after)
    assert len(cids) == len(set(cids)) and report.ok


def test_reading_commands_create_nothing(postgres_uri: str) -> None:
    done = govfn("chronicle", "verify", "--ledger", postgres_uri)
    assert done.returncode == 1
    assert (
        "no Chronicle schema in database" in done.stderr and "govfn chronicle init" in done.stderr
    )
    with psycopg.connect(postgres_uri) as conn:
        assert conn.execute("SELECT to_regnamespace('chronicle')").fetchone() == (None,)


@pytest.mark.parametrize(
    "uri", ["postgresql://app:s3cret@127.0.0.1/x?bogus=1", "postgresql://app:s3cret@[127.0.0.1/x"]
)
def test_a_uri_that_does_not_parse_is_a_clear_error(uri: str) -> None:
    done = govfn("chronicle", "verify", "--ledger", uri)
    assert done.returncode == 1 and "not a valid PostgreSQL URI" in done.stderr
    assert "s3cret" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_restarted_database_costs_no_failed_append(
    private_postgres: Callable[..., PostgresServer],
) -> None:
    server = private_postgres()
    uri = server.create_database("govfn")
    ledger = PostgresLedger(uri)
    chronicle = AsyncLedgerChronicle(ledger)
    first, second = make(2, "before"), make(2, "after")

    async def scenario() -> None:
        for record in first:
            await chronicle.emit_record(record)
        ledger.append(make(1, "sync before"))
        server.restart()  # both connections the ledger holds are now dead
        for record in second:
            await chronicle.emit_record(record)  # reconnects instead of failing
        ledger.append(make(1, "sync after"))

    asyncio.run(scenario())
    report = ledger.verify()
    ledger.close()
    assert report.ok and report.records == 6


def test_lineage_reads_a_postgres_chronicle_and_checkpoint_commands_check_their_input(
    postgres_uri: str, tmp_path: Path
) -> None:
    env = {
        "GOVFN_CHRONICLE": postgres_uri,
        "GOVFN_IDEMPOTENCY": str(tmp_path / "i.db"),
        "GOVFN_CHRONICLE_SPOOL": str(tmp_path / "spool"),
    }
    outcome = json.loads(govfn("invoke", "echo", "--data", "[7]", env=env).stdout)
    graph = json.loads(
        govfn("chronicle", "lineage", outcome["lineage_cid"], "--format", "json", env=env).stdout
    )
    assert outcome["lineage_cid"] in json.dumps(graph)
    key = tmp_path / "k.key"
    key.write_text("not a key")
    for command, says in (
        (["chronicle", "consistency", "1", "3"], "no consistency proof from tree size 1 to 3"),
        (["chronicle", "consistency", "--log", "9", "1"], "no log 9"),
        (["chronicle", "checkpoint", "--key", str(key)], "signer key"),
        (["chronicle", "verify", "--verifier", "nonsense"], "verifier key"),
    ):
        refused = govfn(*command, env=env)
        assert refused.returncode == 2, (command, refused.stderr)
        assert says in refused.stderr, (command, refused.stderr)
    from govfn.chronicle.signing.note import Signer

    vkey = Signer.generate("govfn.example/none").verifier().encode()
    unsigned = govfn("chronicle", "verify", "--verifier", vkey, env=env)
    assert unsigned.returncode == 1
    assert "no signed checkpoint to check the logs against" in unsigned.stderr
    proof = json.loads(govfn("chronicle", "consistency", "1", env=env).stdout)
    assert (proof["log"], proof["old_size"], proof["new_size"]) == (1, 1, 2)


def test_settings_build_a_checkpoint_publisher_for_a_postgres_chronicle(tmp_path: Path) -> None:
    from govfn.chronicle.signing.note import Signer

    key = tmp_path / "pod.key"
    key.write_text(Signer.generate("govfn.example/pods").encode() + "\n")
    env = {"GOVFN_CHRONICLE": "postgresql://app@127.0.0.1:1/govfn"}
    settings = Settings.from_env(env | {"GOVFN_CHRONICLE_SIGNING_KEY": str(key)})
    publisher = assembly.checkpoint_publisher(settings)
    assert publisher is not None and publisher.origin == "govfn.example/pods"
    assert isinstance(publisher.log, PostgresLedger)
    assert publisher.publish_once() is None  # it has written no log: nothing to sign


def test_a_sender_whose_database_is_away_backs_off_and_says_why(
    caplog: pytest.LogCaptureFixture, sink: SinkDouble
) -> None:
    outbox = PostgresOutbox("postgresql://app:s3cret@127.0.0.1:1/govfn")  # nothing listens
    sender = SinkSender(Path("unused"), sink.url, outbox=outbox, first_delay_s=0.05)
    with caplog.at_level("WARNING", logger="govfn.chronicle.sink"):
        sender.start()
        assert wait_for(lambda: len(caplog.records) >= 2, 15.0)
        assert sender.stop() == -1  # the depth cannot be read
    assert sender._thread is not None and not sender._thread.is_alive()
    warnings = [r.getMessage() for r in caplog.records]
    assert all("outbox unreadable" in w and "127.0.0.1:1" in w for w in warnings)
    assert not any("s3cret" in w for w in warnings) and sink.received == []
