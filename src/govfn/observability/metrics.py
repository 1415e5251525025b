"""Prometheus metrics, rendered in the text exposition format (no client library: the
format is four line kinds).

Each worker process counts its own invocations. A scrape reaches one worker of the pod, so
each worker also publishes its counters every second to a file in a directory the pod's
workers share (`SharedMetrics`, beside the ledger), and the worker that answers adds its own
live counters to the other files: the invocation, duration and rejection counters are the
pod's, other workers' counts up to a second behind. The Chronicle and sink figures and the
in-flight gauge are the answering worker's own.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from itertools import accumulate
from pathlib import Path
from typing import Any

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.outcome import ErrorKind

DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

log = logging.getLogger("govfn.metrics")


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
        outcome = "success" if result.success else str(result.error_kind or ErrorKind.ERROR)
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

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready data (what `SharedMetrics` publishes)."""
        with self._lock:
            return {
                "invocations": [[f, o, n] for (f, o), n in self._invocations.items()],
                "durations": {
                    f: [buckets[:], self._sums[f], self._counts[f]]
                    for f, buckets in self._buckets.items()
                },
                "rejected": {str(status): n for status, n in self._rejected.items()},
            }

    def render(
        self,
        *,
        chronicle_failures: int,
        chronicle_pending: int,
        in_flight: int,
        outbox_depth: int | None = None,
        sink_failures: int | None = None,
        others: Iterable[dict[str, Any]] = (),
    ) -> str:
        """This worker's metrics, with the counters of `others` (other workers' snapshots)
        added in."""
        invocations: dict[tuple[str, str], int] = defaultdict(int)
        durations: dict[str, list[Any]] = {}
        rejected: dict[int, int] = defaultdict(int)
        for snapshot in (self.snapshot(), *others):
            for function, outcome, count in snapshot["invocations"]:
                invocations[(function, outcome)] += count
            for function, (buckets, total, count) in snapshot["durations"].items():
                mine = durations.setdefault(function, [[0] * len(buckets), 0.0, 0])
                mine[0] = [a + b for a, b in zip(mine[0], buckets, strict=True)]
                mine[1] += total
                mine[2] += count
            for status, count in snapshot["rejected"].items():
                rejected[int(status)] += count

        lines = _header("govfn_invocations_total", "counter", "Invocations by outcome.")
        for (function, outcome), count in sorted(invocations.items()):
            labels = f'function="{_escape(function)}",outcome="{_escape(outcome)}"'
            lines.append(f"govfn_invocations_total{{{labels}}} {count}")
        name = "govfn_invocation_duration_seconds"
        lines += _header(name, "histogram", "Handler duration.")
        for function, (buckets, total, count) in sorted(durations.items()):
            label = f'function="{_escape(function)}"'
            cumulative = list(accumulate(buckets))
            for bound, below in zip(DURATION_BUCKETS_S, cumulative, strict=False):
                lines.append(f'{name}_bucket{{{label},le="{bound}"}} {below}')
            lines.append(f'{name}_bucket{{{label},le="+Inf"}} {count}')
            lines.append(f"{name}_sum{{{label}}} {total}")
            lines.append(f"{name}_count{{{label}}} {count}")
        lines += _header("govfn_requests_rejected_total", "counter", "Requests refused.")
        for status, count in sorted(rejected.items()):
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


class SharedMetrics:
    """Counter snapshots of a pod's workers, one file per worker process in `directory`.

    Files of workers that exited stay, so that their counts stay counted; the directory is
    emptied when the server starts (`reset`, in the arbiter before it forks).
    """

    def __init__(self, directory: str | os.PathLike[str], interval_s: float = 1.0) -> None:
        self.directory = Path(directory)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: tuple[Path, str] | None = None  # per process: the path names the pid

    def reset(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob("*.json"):
            path.unlink(missing_ok=True)

    def publish(self, metrics: Metrics) -> None:
        """Write this process's snapshot (atomically: readers never see half a file), unless
        it is what this process wrote last (an idle worker writes nothing)."""
        text = json.dumps(metrics.snapshot())
        path = self.directory / f"{os.getpid()}.json"
        if self._published == (path, text):
            return
        partial = path.with_suffix(".tmp")
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        except OSError as exc:
            log.warning("cannot publish metrics to %s: %s", self.directory, exc)
            return
        self._published = (path, text)

    def others(self) -> list[dict[str, Any]]:
        """The latest snapshots of the other worker processes."""
        mine = f"{os.getpid()}.json"
        found = []
        for path in self.directory.glob("*.json"):
            if path.name == mine:
                continue
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):  # gone since the listing
                continue
        return found

    def start(self, metrics: Metrics) -> None:
        """Publish every `interval_s` from a daemon thread of this worker."""
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(self.interval_s):
                self.publish(metrics)

        self._thread = threading.Thread(target=run, name="govfn-metrics", daemon=True)
        self._thread.start()

    def stop(self, metrics: Metrics) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self.publish(metrics)
