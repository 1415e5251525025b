"""What the backends that keep govfn's state share, per database: `sqlite` (opening a file
shared by processes, its schema written once) and `postgres` (telling a libpq URI from a
file, naming a database without its password, creating a schema under an advisory lock).
The Chronicle (`govfn.chronicle.sqlite`, `govfn.chronicle.postgres`) and the idempotency
store (`govfn.idempotency`) build on them."""
