"""govfn's counters as `prometheus_client` metrics, and the text exposition of a scrape.

Imported when `Metrics.load()` runs (prometheus_client costs a cold start ~16 ms of CPU).
`Counters.add` publishes a `Tally` (what `Metrics` counted since its last publication) as
one increment per labelled value. With a pod directory the process goes into
prometheus_client's multiprocess mode: every increment lands in a memory-mapped file of this
worker process, and a scrape sums the files of every worker of the pod (those of exited
workers too, so their counts stay counted).
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

from govfn.observability.tally import DURATION_BUCKETS_S, Tally


class LiveFigures(NamedTuple):
    """What the answering worker reports of itself at each scrape."""

    chronicle_failures: int
    chronicle_pending: int
    in_flight: int
    outbox_depth: int | None = None  # only with K_SINK
    sink_failures: int | None = None
    sink_refused: int | None = None


class _Live(Collector):
    def __init__(self, figures: LiveFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        yield CounterMetricFamily(
            "govfn_chronicle_emit_failures",
            "Chronicle emits that failed.",
            value=figures.chronicle_failures,
        )
        yield GaugeMetricFamily(
            "govfn_chronicle_pending_records", "Records kept for retry.", figures.chronicle_pending
        )
        yield GaugeMetricFamily(
            "govfn_in_flight", "Invocations running in this worker.", figures.in_flight
        )
        if figures.outbox_depth is not None:
            yield GaugeMetricFamily(
                "govfn_chronicle_outbox_depth",
                "Records waiting for the K_SINK sink.",
                figures.outbox_depth,
            )
            yield CounterMetricFamily(
                "govfn_chronicle_sink_failures",
                "Sends the sink refused.",
                value=figures.sink_failures or 0,
            )
            yield CounterMetricFamily(
                "govfn_chronicle_sink_refused",
                "Sends the sink refused with 401 or 403 (the records stay queued).",
                value=figures.sink_refused or 0,
            )


class Counters:
    """Invocations by function and outcome, handler durations, refused requests."""

    def __init__(self, pod_directory: Path | None) -> None:
        if pod_directory is not None:
            # prometheus_client reads the directory from the environment when it makes a
            # value; the value class is chosen once per process, before the metrics exist.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(pod_directory)
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
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
        if pod_directory is None:
            for metric in (self._invocations, self._durations, self._rejected):
                self._registry.register(metric)
        else:
            MultiProcessCollector(self._registry, path=str(pod_directory))  # type: ignore[no-untyped-call]

    def add(self, tally: Tally) -> None:
        """Count what `tally` holds: one increment per labelled value, not per event."""
        for (function, outcome), count in tally.invocations.items():
            self._invocations.labels(function, outcome).inc(count)
        for function, durations in tally.durations.items():
            # A Histogram observes one value at a time; its values (a sum and a count per
            # bucket, not cumulative) take the tally's whole counts.
            histogram = self._durations.labels(function)
            histogram._sum.inc(durations.total)
            for bucket, count in zip(histogram._buckets, durations.counts, strict=True):
                if count:
                    bucket.inc(count)
        for status, count in tally.rejected.items():
            self._rejected.labels(str(status)).inc(count)

    def invocations(self, function: str, outcome: str) -> int:
        """This process's own count."""
        wanted = {"function": function, "outcome": outcome}
        for metric in self._invocations.collect():
            for sample in metric.samples:
                if sample.name == "govfn_invocations_total" and sample.labels == wanted:
                    return int(sample.value)
        return 0

    def render(self, figures: LiveFigures) -> str:
        """The counters (the pod's, with a pod directory), then `figures`."""
        return (generate_latest(self._registry) + generate_latest(_Live(figures))).decode()
