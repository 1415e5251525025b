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
from govfn.chronicle.store import ConsistencyProof, InclusionProof, TreeHead, VerifyReport

if TYPE_CHECKING:
    from govfn.chronicle.client import ChronicleClient

__all__ = ["Chronicle", "OneLogChronicle"]


class Chronicle(ABC):
    """Records in logs. Subclasses store them; this class proves and verifies them."""

    where: str
    """Where the Chronicle is, for messages (a file, or a database; never a password)."""

    finds_by_name = False
    """Whether `records_naming` finds the records that are or name a CID through lookup
    keys (then lineage reads only the records around a graph, not the whole log)."""

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

    def records_naming(self, text: str, limit: int) -> list[tuple[int, Record]]:
        """Up to `limit` records with their positions, oldest first, whose CID is `text` or
        that name it in a lineage link (where `finds_by_name`)."""
        raise NotImplementedError(f"the Chronicle {self.where} keeps no lookup keys")

    def file_links(self) -> int:
        """File the lineage links of the records appended since last time (where
        `finds_by_name`); returns how many records were filed."""
        return 0

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


class OneLogChronicle(Chronicle):
    """A Chronicle that is one log without a name (a SQLite file): the log's own methods
    are the Chronicle's."""

    the_log: Log

    def logs(self) -> list[Log]:
        return [self.the_log]

    def own_logs(self) -> list[Log]:
        return [self.the_log]  # whoever writes it signs its one log

    @abstractmethod
    def leaf_index(self, cid: str) -> int | None:
        """Where the record with this CID sits in the log."""

    def locate(self, cid: str) -> tuple[Log, int] | None:
        index = self.leaf_index(cid)
        return None if index is None else (self.the_log, index)

    def head(self) -> tuple[int, str]:
        """(tree size, root hex) of the log, from O(log n) stored hashes."""
        return self.the_log.head()

    def root_at(self, size: int) -> bytes:
        return self.the_log.root_at(size)

    def inclusion_proof(
        self, index: int, tree_size: int | None = None, *, cid: str = ""
    ) -> InclusionProof:
        return self.the_log.inclusion_proof(index, tree_size, cid=cid)

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        return self.the_log.consistency(old_size, new_size)

    def checkpoint(self) -> tuple[int, str]:
        """Store the current tree head (size, root) and return it."""
        head = self.the_log.checkpoint()
        return head.tree_size, head.root

    def store_signed_checkpoint(self, tree_size: int, root: bytes, note: str) -> bool:
        return self.the_log.store_signed_checkpoint(tree_size, root, note)

    def signed_checkpoints(self) -> list[str]:
        """The signed checkpoint notes stored beside the log, oldest first."""
        return self.the_log.signed_checkpoints()
