"""The Chronicle ledger: records in one or more logs, whichever database holds them.

A `Chronicle` stores records and has logs (`log.Log`): a SQLite file is one log
(`sqlite.Ledger`); PostgreSQL holds one log per writing process (`postgres.PostgresLedger`).
What follows from having logs is written here once: proofs by CID, the verification of
every log, every log's tree head and checkpoint, the logs a process signs. A backend
supplies the records, its logs and where a record sits; no caller needs to know which
backend it holds (`open_chronicle` picks one from a location).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Self

from govfn.chronicle.log import Log
from govfn.chronicle.records import Record
from govfn.chronicle.store import InclusionProof, TreeHead, VerifyReport

if TYPE_CHECKING:
    from govfn.chronicle.client import ChronicleClient

__all__ = ["Chronicle"]


class Chronicle(ABC):
    """Records in logs. Subclasses store them; this class proves and verifies them."""

    where: str
    """Where the Chronicle is, for messages (a file, or a database; never a password)."""

    # -- what a backend supplies ------------------------------------------------------

    @abstractmethod
    def logs(self) -> list[Log]:
        """Every log, in the order of their ids."""

    @abstractmethod
    def own_logs(self) -> list[Log]:
        """The logs this process writes: the ones its checkpoint publisher signs."""

    @abstractmethod
    def locate(self, cid: str) -> tuple[Log, int] | None:
        """The log that holds the record with this CID, and its leaf index there."""

    @abstractmethod
    def append(self, records: Sequence[Record], *, dedupe: bool = False) -> None:
        """Commit records in order, atomically. With `dedupe`, CIDs already stored are skipped."""

    @abstractmethod
    def records(self) -> Iterator[Record]:
        """Every record, log by log, each log in order."""

    @abstractmethod
    def get(self, cid: str) -> Record | None: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def prepare(self) -> None:
        """Create the store and its schema now; raise LedgerError when it cannot be reached."""

    @abstractmethod
    def init(self) -> str:
        """Create the store and its schema whatever the settings say (`govfn chronicle
        init`); returns what is ready, for the operator."""

    @abstractmethod
    def require(self) -> None:
        """Raise LedgerError unless the store exists and holds its schema (reading creates
        nothing: `init` does)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def client(self) -> ChronicleClient:
        """The client the runtime emits records through (group commit, on or off the
        event loop as the backend needs)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- written once, over the logs --------------------------------------------------

    def log(self, log_id: int | None) -> Log | None:
        """The log of this id (None: the unnamed log of a Chronicle that is one log)."""
        return next((log for log in self.logs() if log.log_id == log_id), None)

    def proof(self, cid: str, tree_size: int | None = None) -> InclusionProof:
        """RFC 6962 inclusion proof of a record in its log's tree of `tree_size` (default:
        the whole log); KeyError if no log holds it."""
        found = self.locate(cid)
        if found is None:
            raise KeyError(cid)
        log, index = found
        return log.inclusion_proof(index, tree_size, cid=cid)

    def tree_heads(self) -> list[TreeHead]:
        """The current head of every log, each from O(log n) stored hashes."""
        return [TreeHead(log.log_id, *log.head()) for log in self.logs()]

    def checkpoint_logs(self) -> list[TreeHead]:
        """Store the current head of every log that holds records (and of the unnamed log
        of a Chronicle that is one log, even empty), and return them."""
        heads = []
        for log in self.logs():
            if log.log_id is None or log.size():
                heads.append(log.checkpoint())
        return heads

    def logs_to_sign(self) -> list[tuple[str | None, Log]]:
        """For `publisher.CheckpointPublisher`: this process's logs, each named by its id
        (its checkpoints' origin is then `<origin>/<log id>`), the unnamed log by None."""
        return [(None if log.log_id is None else str(log.log_id), log) for log in self.own_logs()]

    def verify(self) -> VerifyReport:
        """Recompute every CID, each log's chain, tree and stored tree hashes, and every
        stored checkpoint; the report names each log's head (not that of an unnamed log)."""
        logs = self.logs()
        total = 0
        heads: list[TreeHead] = []
        report = VerifyReport(True, 0, "")
        for log in logs:
            report = log.verify()
            total += report.records
            if not report.ok:
                return report._replace(records=total, heads=tuple(heads))
            heads.append(TreeHead(log.log_id, report.records, report.root))
        if len(logs) == 1 and logs[0].log_id is None:
            return report
        root = heads[0].root if len(heads) == 1 else ""
        return VerifyReport(True, total, root, heads=tuple(heads))
