"""The app's Prometheus metrics: what the runtime observes, counted in plain Python and
published to `govfn.observability.prometheus` in batches.

An invocation costs a few dictionary updates under one lock (`Tally`), not an increment of
prometheus_client's values (in a pod, each one a write to a memory-mapped file under that
library's lock: ~4 µs per invocation). What is counted is published at the latest
`PUBLISH_DELAY_S` after it was counted (a timer on the event loop that observed it), before
every scrape and `invocations()` (so the answering worker's own figures are live), and when
the process exits; without a running event loop, at once. A scrape reaches one worker of the
pod, so a serving pod counts in `PodMetrics`' directory: the invocation, duration and
rejection counters are the pod's, its other workers' at most `PUBLISH_DELAY_S` behind (a
worker killed outright loses what it counted in its last `PUBLISH_DELAY_S`); the Chronicle
and sink figures and the in-flight gauge are the answering worker's own.

prometheus_client is imported by `load()`, not at start-up: `govfn serve`'s workers load it
a moment after they start (`lifecycle.worker_started`), so that a cold start's first answer
does not wait for it, and a scrape or `invocations()` loads it at once. A pod of one worker
(`--single-process`, or one gunicorn worker) loads it at its first scrape: it holds ~6 MB.
What is counted before is published when it loads.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import time
import weakref
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult
from govfn.observability.tally import DURATION_BUCKETS_S, Durations, Tally
from govfn.outcome import ErrorKind

if TYPE_CHECKING:
    from govfn.observability.prometheus import Counters

LOAD_DELAY_S = 1.0
PUBLISH_DELAY_S = 0.5


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
        self._load_lock = threading.Lock()
        self._counters: Counters | None = None
        self._tally_lock = threading.Lock()
        self._tally = Tally()
        self._publication_due = 0.0  # time.monotonic() when the scheduled one runs at the latest

    def observe(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        """A runtime observer: count the invocation by function and outcome."""
        function = result.function_id or (plugin.function_id if plugin else "unknown")
        outcome = "success" if result.success else str(result.error_kind or ErrorKind.ERROR)
        seconds = result.duration_ms / 1000.0
        key = (function, outcome)
        with self._tally_lock:
            tally = self._tally
            invocations = tally.invocations
            invocations[key] = invocations.get(key, 0) + 1
            durations = tally.durations.get(function)
            if durations is None:
                durations = tally.durations[function] = Durations()
            durations.total += seconds
            durations.counts[bisect_left(DURATION_BUCKETS_S, seconds)] += 1  # le: <= bound
        self._publish_soon()

    def rejected(self, status: int) -> None:
        """A request refused before any function ran (bad input, overload)."""
        with self._tally_lock:
            rejected = self._tally.rejected
            rejected[status] = rejected.get(status, 0) + 1
        self._publish_soon()

    def invocations(self, function: str, outcome: str) -> int:
        """This process's count of `function`'s invocations that ended in `outcome`."""
        counters = self.load()
        self.publish()
        return counters.invocations(function, outcome)

    def render(
        self,
        *,
        chronicle_failures: int,
        chronicle_pending: int,
        in_flight: int,
        outbox_depth: int | None = None,
        sink_failures: int | None = None,
        sink_refused: int | None = None,
    ) -> str:
        """The text exposition: the counters (the pod's with `pod`), then this worker's
        Chronicle, sink and in-flight figures."""
        from govfn.observability.prometheus import LiveFigures

        figures = LiveFigures(
            chronicle_failures,
            chronicle_pending,
            in_flight,
            outbox_depth,
            sink_failures,
            sink_refused,
        )
        counters = self.load()
        self.publish()
        return counters.render(figures)

    @property
    def loaded(self) -> bool:
        """Whether prometheus_client's counters exist yet."""
        return self._counters is not None

    def load(self) -> Counters:
        """Import prometheus_client and publish what was counted; once."""
        counters = self._counters
        if counters is not None:
            return counters
        with self._load_lock:
            if self._counters is None:
                from govfn.observability.prometheus import Counters

                self._counters = Counters(self.pod.directory if self.pod else None)
                if self.pod is not None:  # what the last moments counted stays the pod's
                    atexit.register(_publish_at_exit, weakref.ref(self))
            counters = self._counters
        self.publish()
        return counters

    def load_soon(self, delay_s: float = LOAD_DELAY_S) -> None:
        """Load in a daemon thread after `delay_s` (in a serving worker, once it started)."""
        timer = threading.Timer(delay_s, self.load)
        timer.name = "govfn-metrics-load"
        timer.daemon = True
        timer.start()

    def publish(self) -> None:
        """Hand what was counted since the last publication to prometheus_client, once it
        is loaded (until then, `load()` does)."""
        counters = self._counters
        if counters is None:
            return
        with self._tally_lock:
            tally, self._tally = self._tally, Tally()
        if tally:
            counters.add(tally)

    def _publish_soon(self) -> None:
        if time.monotonic() < self._publication_due:  # one is scheduled already
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.publish()
            return
        # Past the due time with no publication (its loop closed first, or is stalled),
        # the next observation schedules another: a spare one publishes nothing.
        self._publication_due = time.monotonic() + PUBLISH_DELAY_S
        loop.call_later(PUBLISH_DELAY_S, self._publish_scheduled)

    def _publish_scheduled(self) -> None:
        self._publication_due = 0.0  # what is counted from now on schedules the next one
        self.publish()


def _publish_at_exit(metrics: weakref.ref[Metrics]) -> None:
    alive = metrics()
    if alive is not None:
        with contextlib.suppress(OSError):  # the pod's directory is gone: nobody scrapes it
            alive.publish()
