"""The app's Prometheus metrics: what the runtime observes, kept until the client library
loads, then counted by `govfn.observability.prometheus`.

prometheus_client is imported by `load()`, not at start-up: `govfn serve`'s workers load it
a moment after they start (`lifecycle.worker_started`), so that a cold start's first answer
does not wait for it, and a scrape or `invocations()` loads it at once. What is observed
before is kept and counted when it loads (at most `EARLY_LIMIT` observations; the next one
loads it). A scrape reaches one worker of the pod, so a serving pod counts in
`PodMetrics`' directory: the invocation, duration and rejection counters are the pod's; the
Chronicle and sink figures and the in-flight gauge are the answering worker's own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.outcome import ErrorKind

if TYPE_CHECKING:
    from govfn.observability.prometheus import Counters

EARLY_LIMIT = 10_000
LOAD_DELAY_S = 1.0


class PodMetrics:
    """The directory where a pod's worker processes keep their counters (prometheus_client's
    multiprocess files, a few per worker). `reset()` empties it when the server starts (in
    the arbiter, before it forks)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def reset(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob("*.db"):
            path.unlink(missing_ok=True)


class Metrics:
    """Invocations by function and outcome, handler durations and refused requests of one
    app; with `pod`, counted for the whole pod (prometheus_client's multiprocess mode is a
    process's, and a serving process holds one app)."""

    def __init__(self, pod: PodMetrics | None = None) -> None:
        self.pod = pod
        self._lock = threading.Lock()
        self._counters: Counters | None = None
        self._early: list[tuple[str, str, float] | int] = []

    def observe(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        """A runtime observer: count the invocation by function and outcome."""
        function = result.function_id or (plugin.function_id if plugin else "unknown")
        outcome = "success" if result.success else str(result.error_kind or ErrorKind.ERROR)
        seconds = result.duration_ms / 1000.0
        counters = self._counters or self._keep((function, outcome, seconds))
        if counters is not None:
            counters.observe(function, outcome, seconds)

    def rejected(self, status: int) -> None:
        """A request refused before any function ran (bad input, overload)."""
        counters = self._counters or self._keep(status)
        if counters is not None:
            counters.rejected(status)

    def invocations(self, function: str, outcome: str) -> int:
        """This process's count of `function`'s invocations that ended in `outcome`."""
        return self.load().invocations(function, outcome)

    def render(
        self,
        *,
        chronicle_failures: int,
        chronicle_pending: int,
        in_flight: int,
        outbox_depth: int | None = None,
        sink_failures: int | None = None,
    ) -> str:
        """The text exposition: the counters (the pod's with `pod`), then this worker's
        Chronicle, sink and in-flight figures."""
        from govfn.observability.prometheus import LiveFigures

        figures = LiveFigures(
            chronicle_failures, chronicle_pending, in_flight, outbox_depth, sink_failures
        )
        return self.load().render(figures)

    def load(self) -> Counters:
        """Import prometheus_client and count what was kept; once."""
        with self._lock:
            if self._counters is None:
                from govfn.observability.prometheus import Counters

                counters = Counters(self.pod.directory if self.pod else None)
                for item in self._early:
                    if isinstance(item, int):
                        counters.rejected(item)
                    else:
                        counters.observe(*item)
                self._early.clear()
                self._counters = counters
            return self._counters

    def load_soon(self, delay_s: float = LOAD_DELAY_S) -> None:
        """Load in a daemon thread after `delay_s` (in a serving worker, once it started)."""
        timer = threading.Timer(delay_s, self.load)
        timer.name = "govfn-metrics-load"
        timer.daemon = True
        timer.start()

    def _keep(self, item: tuple[str, str, float] | int) -> Counters | None:
        """Keep `item` while the library is not loaded (None), else the loaded counters."""
        with self._lock:
            if self._counters is None and len(self._early) < EARLY_LIMIT:
                self._early.append(item)
                return None
        return self.load()
