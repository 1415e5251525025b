"""The K_SINK sender as a SinkBinding's sender: the OIDC token file, Knative's CA bundles,
and a sink that refuses the sender (401/403), against a real sink on loopback."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from govfn import assembly
from govfn.chronicle import Ledger, Record
from govfn.chronicle.sink import SinkSender
from govfn.chronicle.sink_auth import bearer_token, trust_context
from govfn.observability.metrics import Metrics
from govfn.settings import Settings

from support.sink_double import SinkDouble
from support.tls import Authority
from support.waiting import wait_for


def _records(ledger: Ledger, first: int, count: int) -> list[Record]:
    records = [Record.build("FUNCTION_INVOKED", {"i": i}) for i in range(first, first + count)]
    ledger.append(records)
    return records


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "chronicle.db", outbox=True) as opened:
        yield opened


def test_the_token_file_is_read_for_each_request(
    ledger: Ledger, sink: SinkDouble, tmp_path: Path
) -> None:
    token_file = tmp_path / "oidc" / "token"
    token_file.parent.mkdir()
    token_file.write_text("first.token-1\n")  # Knative's file; the newline is not the token's
    sink.token = "first.token-1"
    sender = SinkSender(ledger.path, sink.url, token_file=token_file)
    sender.start()
    try:
        _records(ledger, 0, 3)
        sender.notify()
        assert wait_for(lambda: len(sink.received) == 3, 10.0)
        token_file.write_text("second.token-2")  # refreshed: no restart, no new connection
        sink.token = "second.token-2"
        _records(ledger, 3, 3)
        sender.notify()
        assert wait_for(lambda: len(sink.received) == 6, 10.0)
    finally:
        assert sender.stop() == 0
    assert [e["authorization"] for e in sink.received] == (
        ["Bearer first.token-1"] * 3 + ["Bearer second.token-2"] * 3
    )
    assert sink.unauthorized == 0 and sender.refused == 0


def test_no_token_file_no_header(ledger: Ledger, sink: SinkDouble, tmp_path: Path) -> None:
    sender = SinkSender(ledger.path, sink.url, token_file=tmp_path / "absent")
    _records(ledger, 0, 2)
    sender.start()
    try:
        assert wait_for(lambda: len(sink.received) == 2, 10.0)
    finally:
        sender.stop()
    assert all("authorization" not in event for event in sink.received)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("", None),
        ("  \n", None),
        ("a b", None),
        ("x\r\nX-Injected: 1", None),
        ("ey.J-_~+/9=", "ey.J-_~+/9="),
    ],
)
def test_only_a_bearer_token_is_sent(tmp_path: Path, text: str, token: str | None) -> None:
    path = tmp_path / "token"
    path.write_text(text)
    assert bearer_token(path) == token


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_sender_keeps_its_records_and_waits_out_the_hold(
    ledger: Ledger,
    sink: SinkDouble,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale")
    sink.token = "stale" if status == 403 else "fresh"
    if status == 403:
        sink.forbidden.set()
    hold = 1.5
    sender = SinkSender(ledger.path, sink.url, token_file=token_file, refused_hold_s=hold)
    records = _records(ledger, 0, 5)
    caplog.set_level(logging.ERROR, "govfn.chronicle.sink")
    started = time.monotonic()
    sender.start()
    try:
        assert wait_for(lambda: sender.refused == 1, 10.0)
        for i in range(5, 10):  # new records and wake-ups during the hold send nothing
            _records(ledger, i, 1)
            sender.notify()
            time.sleep(0.05)
        time.sleep(max(0.0, hold * 0.6 - (time.monotonic() - started)))
        assert sink.unauthorized == 1 and sender.refused == 1  # no hot loop
        assert sender.depth() == 10 and sink.received == []  # nothing lost
        assert sender.failures == 0  # not counted as a transient failure
        sink.token = "fresh"  # the operator fixes it: a refreshed token, an allowing policy
        sink.forbidden.clear()
        token_file.write_text("fresh")
        assert wait_for(lambda: sender.depth() == 0, hold + 10.0)
        assert time.monotonic() - started >= hold  # not before the hold ended
    finally:
        sender.stop()
    ids = [event["ce-id"] for event in sink.received]
    assert len(ids) == len(set(ids)) == 10 and records[0].cid in ids
    assert sink.unauthorized == 1
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"answered {status} to a request sent with a token" in message
    assert "stay queued, next attempt in 2 s" in message


def test_the_refused_count_is_a_metric() -> None:
    text = Metrics().render(
        chronicle_failures=0, chronicle_pending=0, in_flight=0, outbox_depth=4,
        sink_failures=2, sink_refused=3,
    )  # fmt: skip
    assert "govfn_chronicle_sink_refused_total 3.0" in text.splitlines()
    assert "govfn_chronicle_sink_failures_total 2.0" in text.splitlines()


@pytest.fixture
def authorities() -> tuple[Authority, Authority]:
    return Authority.create("knative-sink-ca"), Authority.create("custom-ca")


@contextmanager
def _tls_sink(context: ssl.SSLContext) -> Iterator[SinkDouble]:
    server = SinkDouble(tls=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("trusted_by", ["K_CA_CERTS", "knative-custom-certs", "nothing"])
def test_an_https_sink_is_trusted_through_knative_s_bundles(
    ledger: Ledger, tmp_path: Path, authorities: tuple[Authority, Authority], trusted_by: str
) -> None:
    sink_ca, custom_ca = authorities
    signer = sink_ca if trusted_by != "knative-custom-certs" else custom_ca
    certs = tmp_path / "knative-custom-certs"
    certs.mkdir()
    (certs / "custom.crt").write_text(custom_ca.pem)
    (certs / "broken.crt").write_text("not a certificate")  # skipped, with a warning
    (certs / "ignored.pem").write_text(sink_ca.pem)  # not a *.crt file
    ca_certs = sink_ca.pem if trusted_by == "K_CA_CERTS" else None
    if trusted_by == "nothing":
        certs = tmp_path / "empty"
    with _tls_sink(signer.server_context(tmp_path)) as sink:
        sender = SinkSender(ledger.path, sink.url, ca_certs=ca_certs, ca_dir=certs, max_delay_s=0.3)
        _records(ledger, 0, 2)
        sender.start()
        try:
            if trusted_by == "nothing":
                assert wait_for(lambda: sender.failures >= 2, 10.0)
                assert sink.received == [] and sender.depth() == 2
            else:
                assert wait_for(lambda: len(sink.received) == 2, 10.0)
        finally:
            sender.stop()


def test_the_bundles_add_to_the_system_s_trust(
    tmp_path: Path, authorities: tuple[Authority, Authority]
) -> None:
    sink_ca, custom_ca = authorities
    (tmp_path / "custom.crt").write_text(custom_ca.pem)
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    context = trust_context(sink_ca.pem, tmp_path)
    assert context.cert_store_stats()["x509_ca"] == system + 2
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_settings_wire_the_token_file_and_the_bundles(tmp_path: Path) -> None:
    env = {"GOVFN_CHRONICLE": str(tmp_path / "c.db"), "K_SINK": "https://127.0.0.1:9/"}
    sender = assembly.sink_sender(Settings.from_env(env))
    assert sender is not None
    assert sender.token_file == Path("/oidc/token")
    assert sender.ca_dir == Path("/knative-custom-certs")
    env |= {"GOVFN_SINK_TOKEN_FILE": str(tmp_path / "t"), "GOVFN_SINK_CA_DIR": str(tmp_path)}
    sender = assembly.sink_sender(Settings.from_env(env))
    assert sender is not None
    assert (sender.token_file, sender.ca_dir) == (tmp_path / "t", tmp_path)
