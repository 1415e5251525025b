"""The Chronicle in one SQLite file, the embedded default: the ledger (`ledger`), its schema
and upgrades of older files (`schema`), its one log as `log.Log` reads it (`storage`), the
lookup keys filed in sorted runs (`key_runs`), the WAL checkpointer (`wal`) and the
connections closed before a fork (`forks`). Knows nothing of the PostgreSQL backend
(`.importlinter`)."""

from govfn.chronicle.sqlite.ledger import Ledger

__all__ = ["Ledger"]
