"""What the metrics count between two publications to prometheus_client: invocations by
outcome, handler durations by bucket, rejected requests by status. Plain Python, shared by
`metrics` (which counts) and `prometheus` (which publishes), so neither imports the other
to know the shape."""

from __future__ import annotations

DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Durations:
    """One function's handler durations since the last publication: their sum and how many
    fell in each of `DURATION_BUCKETS_S` (not cumulative; the last one is +Inf)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.counts = [0] * (len(DURATION_BUCKETS_S) + 1)


class Tally:
    """What was counted since the last publication."""

    __slots__ = ("durations", "invocations", "rejected")

    def __init__(self) -> None:
        self.invocations: dict[tuple[str, str], int] = {}  # (function, outcome) -> count
        self.durations: dict[str, Durations] = {}
        self.rejected: dict[int, int] = {}  # HTTP status -> count

    def __bool__(self) -> bool:
        return bool(self.invocations or self.rejected)
