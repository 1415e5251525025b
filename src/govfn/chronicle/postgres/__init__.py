"""The Chronicle on PostgreSQL: shared tables where each writing process appends to a log of its
own (`ledger`), the schema and its migrations (`schema`), and the K_SINK outbox any pod drains
(`outbox`)."""
