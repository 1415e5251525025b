"""Prometheus metrics of one worker process, rendered in the text exposition format.

Counters live in this process (each gunicorn worker answers with its own); Prometheus
sums them over scrapes of the pod. No client library: the format is four line kinds.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from itertools import accumulate

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult

DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invocations: dict[tuple[str, str], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._rejected: dict[int, int] = defaultdict(int)

    def observe(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        """A runtime observer: count the invocation by function and outcome."""
        function = result.function_id or (plugin.function_id if plugin else "unknown")
        outcome = "success" if result.success else (result.error_kind or "error")
        seconds = result.duration_ms / 1000.0
        slot = bisect_left(DURATION_BUCKETS_S, seconds)  # len(...) for over the last bound
        with self._lock:
            self._invocations[(function, outcome)] += 1
            buckets = self._buckets.get(function)
            if buckets is None:
                buckets = self._buckets[function] = [0] * (len(DURATION_BUCKETS_S) + 1)
            buckets[slot] += 1
            self._sums[function] += seconds
            self._counts[function] += 1

    def rejected(self, status: int) -> None:
        """A request refused before any function ran (bad input, overload)."""
        with self._lock:
            self._rejected[status] += 1

    def invocations(self, function: str, outcome: str) -> int:
        with self._lock:
            return self._invocations.get((function, outcome), 0)

    def render(
        self,
        *,
        chronicle_failures: int,
        chronicle_pending: int,
        in_flight: int,
        outbox_depth: int | None = None,
        sink_failures: int | None = None,
    ) -> str:
        lines: list[str] = []
        with self._lock:
            lines += _header("govfn_invocations_total", "counter", "Invocations by outcome.")
            for (function, outcome), count in sorted(self._invocations.items()):
                labels = f'function="{_escape(function)}",outcome="{_escape(outcome)}"'
                lines.append(f"govfn_invocations_total{{{labels}}} {count}")
            name = "govfn_invocation_duration_seconds"
            lines += _header(name, "histogram", "Handler duration.")
            for function in sorted(self._buckets):
                label = f'function="{_escape(function)}"'
                cumulative = list(accumulate(self._buckets[function]))
                for bound, count in zip(DURATION_BUCKETS_S, cumulative, strict=False):
                    lines.append(f'{name}_bucket{{{label},le="{bound}"}} {count}')
                lines.append(f'{name}_bucket{{{label},le="+Inf"}} {self._counts[function]}')
                lines.append(f"{name}_sum{{{label}}} {self._sums[function]}")
                lines.append(f"{name}_count{{{label}}} {self._counts[function]}")
            lines += _header("govfn_requests_rejected_total", "counter", "Requests refused.")
            for status, count in sorted(self._rejected.items()):
                lines.append(f'govfn_requests_rejected_total{{status="{status}"}} {count}')
        lines += _header(
            "govfn_chronicle_emit_failures_total", "counter", "Chronicle emits that failed."
        )
        lines.append(f"govfn_chronicle_emit_failures_total {chronicle_failures}")
        lines += _header("govfn_chronicle_pending_records", "gauge", "Records kept for retry.")
        lines.append(f"govfn_chronicle_pending_records {chronicle_pending}")
        lines += _header("govfn_in_flight", "gauge", "Invocations running in this worker.")
        lines.append(f"govfn_in_flight {in_flight}")
        if outbox_depth is not None:  # only with K_SINK
            lines += _header(
                "govfn_chronicle_outbox_depth", "gauge", "Records waiting for the K_SINK sink."
            )
            lines.append(f"govfn_chronicle_outbox_depth {outbox_depth}")
            lines += _header(
                "govfn_chronicle_sink_failures_total", "counter", "Sends the sink refused."
            )
            lines.append(f"govfn_chronicle_sink_failures_total {sink_failures or 0}")
        return "\n".join(lines) + "\n"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
