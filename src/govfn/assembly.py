"""What a process runs, built from its `Settings` in one place: the Chronicle and its client,
the idempotency store, the runtime, and a serving process's background services (the K_SINK
sender, the OpenLineage sender, the checkpoint signer: `Services`, started in that order and
stopped in reverse). `settings.py` only reads and validates; `create_app`, `govfn invoke`
and the tests ask this module for what they run."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from govfn.chronicle.backends import open_chronicle
from govfn.chronicle.chronicle import Chronicle
from govfn.chronicle.client import ChronicleClient
from govfn.idempotency import IdempotencyStore, open_store
from govfn.registry import FunctionRegistry
from govfn.runtime import FunctionRuntime
from govfn.settings import Settings, read_signer

if TYPE_CHECKING:
    from govfn.chronicle.lineage.openlineage_sender import OpenLineageSender
    from govfn.chronicle.signing.publisher import CheckpointPublisher
    from govfn.chronicle.sink import SinkSender

log = logging.getLogger("govfn.app")


def ledger(settings: Settings, *, serving: bool = False) -> Chronicle:
    """The Chronicle. A serving process sets from K_SINK (GOVFN_OPENLINEAGE_URL) whether a
    SQLite file queues its appends for the sink (the OpenLineage backend); anything else
    (the CLI) leaves the file's settings alone. On PostgreSQL each process queues its own
    appends when K_SINK is set."""
    sink = bool(settings.sink_url) if serving or settings.chronicle_uri else None
    return open_chronicle(
        settings.chronicle_location,
        sync=settings.chronicle_sync,
        outbox=sink,
        openlineage=bool(settings.openlineage_url) if serving else None,
    )


def chronicle_client(settings: Settings, *, serving: bool = False) -> ChronicleClient:
    return ledger(settings, serving=serving).client()


def idempotency_store(settings: Settings) -> IdempotencyStore:
    """The claims store; in the Chronicle's own PostgreSQL database, a claim's outcome is
    committed by the append of its FUNCTION_COMPLETED record."""
    target = settings.idempotency_target()
    return open_store(
        target,
        expiry_s=settings.idempotency_ttl_s,
        settles_with_records=target == settings.chronicle_uri,
    )


def runtime_from(
    settings: Settings,
    registry: FunctionRegistry,
    chronicle: ChronicleClient | None = None,
    *,
    claims: bool = True,
) -> FunctionRuntime:
    """The runtime `settings` describe: records to the Chronicle, kept in the spool while it
    fails, and the idempotency store; `chronicle`, when given, is the client to use (one
    made from the same settings). `claims=False` (for a frozen registry without an
    `idempotent=True` function, where no invocation claims its event) opens no store."""
    return FunctionRuntime(
        registry,
        chronicle or chronicle_client(settings),
        spool_dir=str(settings.spool_dir) if settings.spool_dir is not None else None,
        idempotency=idempotency_store(settings) if claims else None,
    )


def sink_sender(settings: Settings) -> SinkSender | None:
    """The outbox sender when K_SINK is set; started in each serving process."""
    if not settings.sink_url:
        return None
    from govfn.chronicle.sink import SinkSender
    from govfn.chronicle.sink_auth import CA_DIR, TOKEN_FILE

    outbox = None
    if settings.chronicle_uri:
        from govfn.chronicle.postgres.outbox import PostgresOutbox

        outbox = PostgresOutbox(settings.chronicle_uri)
    return SinkSender(
        settings.chronicle_path,
        settings.sink_url,
        extensions=settings.sink_extensions,
        ca_certs=settings.sink_ca_certs,
        token_file=settings.sink_token_file or TOKEN_FILE,
        ca_dir=settings.sink_ca_dir or CA_DIR,
        outbox=outbox,
    )


def openlineage_sender(settings: Settings) -> OpenLineageSender | None:
    """The RunEvent sender when GOVFN_OPENLINEAGE_URL is set; started in each serving
    process."""
    if not settings.openlineage_url:
        return None
    if settings.chronicle_uri:
        raise ValueError("GOVFN_OPENLINEAGE_URL needs the SQLite Chronicle")
    from govfn.chronicle.lineage.openlineage_sender import OpenLineageSender

    return OpenLineageSender(
        settings.chronicle_path, settings.openlineage_url, namespace=settings.namespace
    )


def checkpoint_publisher(
    settings: Settings, sink: SinkSender | None = None, chronicle: Chronicle | None = None
) -> CheckpointPublisher | None:
    """The checkpoint signer of a serving process when a signing key is configured. On
    PostgreSQL it signs the logs `chronicle` writes: pass the runtime's own."""
    if settings.signing_key_path is None:
        return None
    from govfn.chronicle.signing.publisher import CheckpointPublisher

    if chronicle is None:
        chronicle = ledger(settings, serving=True)
    signer = read_signer(settings.signing_key_path)
    on_signed = None
    if settings.witnesses:  # each note it signs goes to the witnesses, in the background
        from govfn.chronicle.signing.cosigning import Cosigning

        on_signed = Cosigning(settings.witnesses).submit
    return CheckpointPublisher(
        chronicle,
        signer,
        settings.chronicle_origin or signer.name,
        interval_s=settings.checkpoint_interval_s,
        on_published=sink.notify if sink is not None else None,
        on_signed=on_signed,
    )


class Services:
    """A serving process's background services: started in order (the sink sender, the
    OpenLineage sender, the checkpoint signer) and stopped in reverse, so that the signer's
    final head is queued before the senders drain."""

    def __init__(
        self,
        sink: SinkSender | None = None,
        openlineage: OpenLineageSender | None = None,
        checkpoints: CheckpointPublisher | None = None,
    ) -> None:
        self.sink = sink
        self.openlineage = openlineage
        self.checkpoints = checkpoints

    @classmethod
    def from_settings(cls, settings: Settings, chronicle: Chronicle | None) -> Services:
        sink = sink_sender(settings)
        return cls(
            sink,
            openlineage_sender(settings),
            checkpoint_publisher(settings, sink, chronicle),
        )

    def start(self) -> None:
        if self.sink is not None:
            self.sink.start()
        if self.openlineage is not None:
            self.openlineage.start()
        if self.checkpoints is not None:
            self.checkpoints.start()

    def stop(self, drain_timeout_s: float) -> None:
        """Stop each, in reverse order; the senders send what they can in `drain_timeout_s`
        (what is left stays queued for the next start)."""
        if self.checkpoints is not None:
            self.checkpoints.stop()  # signs the final head, queued before the sink drains
        if self.openlineage is not None:
            left = self.openlineage.stop(drain_timeout_s)
            if left:
                log.warning("%d OpenLineage event(s) stay queued for the next start", left)
        if self.sink is not None:
            left = self.sink.stop(drain_timeout_s)
            if left:
                log.warning("%d chronicle record(s) stay in the outbox for the next start", left)
