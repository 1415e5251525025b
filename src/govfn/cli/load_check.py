"""`govfn send --repeat N --concurrency C`: a quick load check, not a benchmark.

C threads, each with its own keep-alive connection, send N events between them (each a new
event id) and time each answer; the summary gives the status counts, requests per second
and latency quantiles. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import http.client
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import click

from govfn.cli.target import Target, connection_error, post

QUANTILES = (0.5, 0.9, 0.99)


class Encoder(Protocol):
    """Each request's headers and body (`send.EventEncoder`: a new event id every call)."""

    def encode(self) -> tuple[dict[str, str], bytes]: ...


@dataclass
class Tally:
    """What the senders measured, guarded by one lock."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, latency_s: float | None, error: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if latency_s is not None:
                self.latencies_s.append(latency_s)
            if error is not None and self.first_error is None:
                self.first_error = error


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def run_load_check(
    target: Target, encoder: Encoder, repeat: int, concurrency: int, timeout: float
) -> int:
    """Send `repeat` events on `concurrency` connections, print the summary; the exit
    status is 0 when every answer was 2xx."""

    tally = Tally()
    remaining = iter(range(repeat))
    take = threading.Lock()
    progress = _Progress(repeat)

    def next_slot() -> bool:
        with take:
            return next(remaining, None) is not None

    def sender() -> None:
        connection = target.connect(timeout)
        try:
            while next_slot():
                headers, body = encoder.encode()
                started = time.perf_counter()
                try:
                    reply = post(connection, target, headers, body)
                except OSError as exc:
                    tally.add("connection error", None, connection_error(target, exc))
                    connection.close()  # a fresh connection for the next event
                except http.client.HTTPException as exc:
                    tally.add("bad answer", None, f"{type(exc).__name__}: {exc}")
                    connection.close()
                else:
                    latency = time.perf_counter() - started
                    error = None if 200 <= reply.status < 300 else _first_line(reply.body)
                    tally.add(str(reply.status), latency, error)
                progress.advance()
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [
        threading.Thread(target=sender, name=f"govfn-send-{n}", daemon=True)
        for n in range(min(concurrency, repeat))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    progress.close()
    summary(tally, repeat, concurrency, elapsed)
    ok = sum(n for status, n in tally.statuses.items() if status.startswith("2"))
    return 0 if ok == repeat else 1


def summary(tally: Tally, repeat: int, concurrency: int, elapsed_s: float) -> None:
    counts = ", ".join(f"{status}: {n}" for status, n in sorted(tally.statuses.items()))
    click.echo(f"{repeat} events on {concurrency} connection(s) in {elapsed_s:.3f} s")
    click.echo(f"statuses: {counts}")
    answered = len(tally.latencies_s)  # connection errors are not throughput
    click.echo(
        f"throughput: {answered / elapsed_s:.1f} req/s" if elapsed_s > 0 else "throughput: -"
    )
    if tally.latencies_s:
        ordered = sorted(tally.latencies_s)
        shown = "  ".join(f"p{round(q * 100)} {quantile(ordered, q) * 1000:.2f}" for q in QUANTILES)
        click.echo(f"latency ms: {shown}  max {ordered[-1] * 1000:.2f}")
    if tally.first_error is not None:
        click.echo(f"first failure: {tally.first_error}", err=True)


def _first_line(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0][:200] if text else "(empty body)"


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int) -> None:
        self._lock = threading.Lock()
        self._bar = (
            click.progressbar(length=total, label="sending", file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )
        if self._bar is not None:
            self._bar.__enter__()

    def advance(self) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
