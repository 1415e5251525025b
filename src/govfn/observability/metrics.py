"""Prometheus metrics through `prometheus_client`.

Each worker process counts its own invocations. A scrape reaches one worker of the pod, so
a serving pod keeps its counters in prometheus_client's multiprocess mode (`PodMetrics`, a
directory beside the ledger that the pod's workers share): every increment lands in a
memory-mapped file of its worker process, and the worker that answers a scrape sums every
file. The invocation, duration and rejection counters are the pod's, live, and stay counted
when a worker exits; the Chronicle and sink figures and the in-flight gauge are the answering
worker's own, read when the scrape comes (`LiveFigures`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from govfn.function import FunctionContext, FunctionPlugin, FunctionResult

DURATION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PodMetrics:
    """The directory where a pod's worker processes keep their counters (one file each).

    `reset()` empties it when the server starts (in the arbiter, before it forks);
    `enable()` puts this process into prometheus_client's multiprocess mode, for the metrics
    built from then on. The mode is the process's, not one app's: a serving process holds
    one app.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def reset(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob("*.db"):
            path.unlink(missing_ok=True)

    def enable(self) -> None:
        # prometheus_client finds the directory in the environment, read when a value is made.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.directory)
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class LiveFigures(NamedTuple):
    """What the answering worker reports of itself at each scrape."""

    chronicle_failures: int
    chronicle_pending: int
    in_flight: int
    outbox_depth: int | None = None  # only with K_SINK
    sink_failures: int | None = None

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "govfn_chronicle_emit_failures",
            "Chronicle emits that failed.",
            value=self.chronicle_failures,
        )
        yield GaugeMetricFamily(
            "govfn_chronicle_pending_records", "Records kept for retry.", self.chronicle_pending
        )
        yield GaugeMetricFamily(
            "govfn_in_flight", "Invocations running in this worker.", self.in_flight
        )
        if self.outbox_depth is not None:
            yield GaugeMetricFamily(
                "govfn_chronicle_outbox_depth",
                "Records waiting for the K_SINK sink.",
                self.outbox_depth,
            )
            yield CounterMetricFamily(
                "govfn_chronicle_sink_failures",
                "Sends the sink refused.",
                value=self.sink_failures or 0,
            )


class _Live(Collector):
    def __init__(self, figures: LiveFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        return self.figures.collect()


class Metrics:
    """The counters of one app: invocations by function and outcome, handler durations,
    refused requests. With `pod`, a scrape sums the counters of every worker of the pod."""

    def __init__(self, pod: PodMetrics | None = None) -> None:
        self.pod = pod
        self._invocations = Counter(
            "govfn_invocations", "Invocations by outcome.", ["function", "outcome"], registry=None
        )
        self._durations = Histogram(
            "govfn_invocation_duration_seconds",
            "Handler duration.",
            ["function"],
            buckets=DURATION_BUCKETS_S,
            registry=None,
        )
        self._rejected = Counter(
            "govfn_requests_rejected", "Requests refused.", ["status"], registry=None
        )
        self._registry = CollectorRegistry(auto_describe=False)
        if pod is None:
            for metric in (self._invocations, self._durations, self._rejected):
                self._registry.register(metric)
        else:
            MultiProcessCollector(self._registry, path=str(pod.directory))  # type: ignore[no-untyped-call]
        # Labelled children, found without prometheus_client's lock on the hot path.
        self._counted: dict[tuple[str, str], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    def observe(
        self, plugin: FunctionPlugin | None, context: FunctionContext, result: FunctionResult
    ) -> None:
        """A runtime observer: count the invocation by function and outcome."""
        function = result.function_id or (plugin.function_id if plugin else "unknown")
        outcome = "success" if result.success else (result.error_kind or "error")
        counter = self._counted.get((function, outcome))
        if counter is None:
            counter = self._counted[(function, outcome)] = self._invocations.labels(
                function, outcome
            )
        counter.inc()
        histogram = self._timed.get(function)
        if histogram is None:
            histogram = self._timed[function] = self._durations.labels(function)
        histogram.observe(result.duration_ms / 1000.0)

    def rejected(self, status: int) -> None:
        """A request refused before any function ran (bad input, overload)."""
        self._rejected.labels(str(status)).inc()

    def invocations(self, function: str, outcome: str) -> int:
        """This process's count of `function`'s invocations that ended in `outcome`."""
        for metric in self._invocations.collect():
            for sample in metric.samples:
                wanted = {"function": function, "outcome": outcome}
                if sample.name == "govfn_invocations_total" and sample.labels == wanted:
                    return int(sample.value)
        return 0

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
        figures = LiveFigures(
            chronicle_failures, chronicle_pending, in_flight, outbox_depth, sink_failures
        )
        counters = generate_latest(self._registry)
        return (counters + generate_latest(_Live(figures))).decode()
