"""A serving worker's life: what starts when a worker starts, and what is handed over before
it exits. gunicorn's hooks (`govfn.cli.serve`) and govfn's own worker call these."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from govfn.app import GovfnApp

log = logging.getLogger("govfn.app")


def worker_started(
    app: GovfnApp, *, drain_on_sigterm: bool = True, pod_of_one: bool = False
) -> None:
    """In a new worker: start the background services (`assembly.Services`), and load the
    metrics library soon; with `drain_on_sigterm`, readiness turns false as soon as SIGTERM
    arrives (govfn's worker drains through its own handler). In a pod of one worker
    (`pod_of_one`) the library (~6 MB) loads at the first scrape instead: no other worker
    needs this one's counts published before it, and they are counted meanwhile."""
    app.services.start()
    if not pod_of_one:
        app.metrics.load_soon()  # off the path of the first answer
    if not drain_on_sigterm:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def drain(signum: int, frame: FrameType | None) -> None:
        app.state.begin_draining()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, drain)


def worker_stopping(app: GovfnApp, drain_timeout_s: float = 5.0) -> None:
    """In an exiting worker, after in-flight requests finished: hand kept Chronicle
    records over, send the outbox to the sink as far as it accepts them, and export the
    spans still queued."""
    app.state.begin_draining()
    if app.loop.started:
        try:
            app.loop.run(app.runtime.flush(), timeout=drain_timeout_s)
        except Exception:
            log.exception("chronicle flush at shutdown failed; records stay spooled")
    app.services.stop(drain_timeout_s)  # in the reverse order of their start
    if app.tracer is not None:
        try:
            app.tracer.shutdown()  # exports the spans still queued
        except Exception:
            log.exception("trace export at shutdown failed")
    app.loop.stop()
