"""The Chronicle: content-addressed, tamper-evident lineage records.

Two backends with one surface (`store.ChronicleLedger`): `ledger.Ledger`, one SQLite file
(the embedded default), and `postgres_ledger.PostgresLedger`, shared PostgreSQL tables with
one log per writing process. `settings.chronicle_ledger` picks one from GOVFN_CHRONICLE.
"""

from govfn.chronicle.backstop import Backstop
from govfn.chronicle.cid import canonical_json, cid_of, cid_of_bytes, content_cid
from govfn.chronicle.client import (
    ChronicleClient,
    LedgerChronicle,
    MemoryChronicle,
)
from govfn.chronicle.ledger import Ledger, LedgerError
from govfn.chronicle.records import (
    EVENT_CODES,
    FUNCTION_COMPLETED,
    FUNCTION_INVOKED,
    Record,
)

__all__ = [
    "EVENT_CODES",
    "FUNCTION_COMPLETED",
    "FUNCTION_INVOKED",
    "Backstop",
    "ChronicleClient",
    "Ledger",
    "LedgerChronicle",
    "LedgerError",
    "MemoryChronicle",
    "Record",
    "canonical_json",
    "cid_of",
    "cid_of_bytes",
    "content_cid",
]
