"""The Chronicle on PostgreSQL: shared tables where each writer appends to a log it leases
from a stable set (`ledger`, `leases`), the database's connections and pool (`database`),
one log as `log.Log` reads it (`storage`), the schema and its migrations (`schema`), and
the K_SINK outbox any pod drains (`outbox`). Knows nothing of the SQLite backend
(`.importlinter`)."""
