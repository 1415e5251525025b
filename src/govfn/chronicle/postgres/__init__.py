"""The Chronicle on PostgreSQL: shared tables where each writing process appends to a log of its
own (`ledger`), the database's connections and pool (`database`), one log as `log.Log` reads
it (`storage`), the schema and its migrations (`schema`), and the K_SINK outbox any pod drains
(`outbox`). Knows nothing of the SQLite backend (`.importlinter`)."""
