"""The runtime a process runs functions with, assembled from its `Settings`: records to the
ledger, kept in the spool while the ledger fails, and the idempotency store. `govfn serve`
(through `create_app`) and `govfn invoke` both build it here."""

from __future__ import annotations

from govfn.chronicle.client import ChronicleClient
from govfn.registry import FunctionRegistry
from govfn.runtime import FunctionRuntime
from govfn.settings import Settings


def runtime_from(
    settings: Settings, registry: FunctionRegistry, chronicle: ChronicleClient | None = None
) -> FunctionRuntime:
    """The runtime `settings` describe; `chronicle`, when given, is the ledger client to use
    (one made from the same settings)."""
    return FunctionRuntime(
        registry,
        chronicle or settings.chronicle_client(),
        spool_dir=str(settings.spool_dir) if settings.spool_dir is not None else None,
        idempotency=settings.idempotency_store(),
    )
