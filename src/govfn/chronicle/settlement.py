"""A claim's outcome that travels with the FUNCTION_COMPLETED record carrying it.

When the idempotency store lives in the Chronicle's own PostgreSQL database, the runtime
hands the ledger both at once: the append that stores the record also marks the claim
done, in the same statement, so the record is durable exactly when the outcome is. While
the ledger fails, the backstop keeps (and spools) the settlement beside its record.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Settlement(NamedTuple):
    key: str  # the idempotency key (`govfn.idempotency.idempotency_key`)
    holder: str  # the claim's holder token: only that claim is settled
    result: str  # the invocation's result as compact JSON, replayed to later deliveries
    expiry_s: float  # how long the result is kept

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Settlement:
        return cls(
            str(fields["key"]),
            str(fields["holder"]),
            str(fields["result"]),
            float(fields["expiry_s"]),
        )
