"""The Chronicle: content-addressed, tamper-evident lineage records.

A `Chronicle` (`chronicle.py`) has logs (`log.Log`: tree head, proofs, verification,
checkpoints, written once over a small `log.LogStorage`). Two backends, in sibling folders
that know nothing of each other: `sqlite.Ledger`, one SQLite file that is one log (the
embedded default), and `postgres.ledger.PostgresLedger`, shared PostgreSQL tables with one
log per writing process. `backends.open_chronicle` picks one from GOVFN_CHRONICLE.
"""

from govfn.chronicle.backstop import Backstop
from govfn.chronicle.chronicle import Chronicle
from govfn.chronicle.cid import canonical_json, cid_of, cid_of_bytes, content_cid
from govfn.chronicle.client import (
    ChronicleClient,
    LedgerChronicle,
    MemoryChronicle,
)
from govfn.chronicle.log import Log
from govfn.chronicle.records import (
    EVENT_CODES,
    FUNCTION_COMPLETED,
    FUNCTION_INVOKED,
    Record,
)
from govfn.chronicle.sqlite import Ledger
from govfn.chronicle.store import LedgerError

__all__ = [
    "EVENT_CODES",
    "FUNCTION_COMPLETED",
    "FUNCTION_INVOKED",
    "Backstop",
    "Chronicle",
    "ChronicleClient",
    "Ledger",
    "LedgerChronicle",
    "LedgerError",
    "Log",
    "MemoryChronicle",
    "Record",
    "canonical_json",
    "cid_of",
    "cid_of_bytes",
    "content_cid",
]
